"""Tests for fmnist.data.augment (batched on-device augmentation)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf

from fmnist.data.augment import Augment
from fmnist.errors import ConfigError

CONF = Path(__file__).resolve().parents[1] / "conf" / "augment"
MODES = ["none", "standard", "strong", "mixup", "cutmix"]
ALL_ARGS = {"crop_padding", "flip", "erasing", "erasing_area", "mixup_alpha", "cutmix_alpha", "num_classes"}


def load(name: str) -> Augment:
    return instantiate(OmegaConf.load(CONF / f"{name}.yaml"))


def batch(b: int = 64, c: int = 1, h: int = 28, w: int = 28, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(b, c, h, w, generator=g)
    y = torch.randint(0, 10, (b,), generator=g)
    return x, y


def devices() -> list[str]:
    out = ["cpu"]
    if torch.cuda.is_available():
        out.append("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        out.append("mps")
    return out


# ----------------------------------------------------------------------------- configs
def test_every_conf_instantiates_with_every_argument():
    assert sorted(p.stem for p in CONF.glob("*.yaml")) == sorted(MODES)
    for name in MODES:
        cfg = OmegaConf.load(CONF / f"{name}.yaml")
        assert cfg._target_ == "fmnist.data.augment.Augment"
        assert set(cfg.keys()) - {"_target_"} == ALL_ARGS, name
        aug = instantiate(cfg)
        assert isinstance(aug, Augment)
        assert aug.erasing_area == (0.02, 0.25)
    assert load("none").is_identity
    assert not any(load(name).is_identity for name in MODES if name != "none")
    for kwargs in ({"crop_padding": 1}, {"flip": True}, {"flip": "alternating"}, {"erasing": 0.5},
                   {"mixup_alpha": 0.2}, {"cutmix_alpha": 1.0}):
        assert not Augment(**kwargs).is_identity, kwargs
    std = load("standard")
    assert (std.crop_padding, std.flip, std.erasing, std.soft_targets) == (4, True, 0.0, False)
    strong = load("strong")
    assert (strong.crop_padding, strong.flip, strong.erasing) == (4, True, 0.5)
    assert load("mixup").mixup_alpha == 0.2 and load("mixup").soft_targets
    assert load("cutmix").cutmix_alpha == 1.0 and load("cutmix").soft_targets


def test_cli_style_override():
    cfg = OmegaConf.load(CONF / "standard.yaml")
    cfg.merge_with_dotlist(["erasing=0.25", "erasing_area=[0.1,0.2]"])
    aug = instantiate(cfg)
    assert aug.erasing == 0.25 and aug.erasing_area == (0.1, 0.2)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"crop_padding": -1}, "augment.crop_padding must be an integer >= 0, got -1"),
        ({"crop_padding": 1.5}, "augment.crop_padding must be an integer >= 0, got 1.5"),
        ({"erasing": 1.5}, "augment.erasing is a probability and must be in [0, 1], got 1.5"),
        ({"erasing": True}, "augment.erasing must be a number, got True"),
        ({"erasing": "often"}, "augment.erasing must be a number, got 'often'"),
        ({"erasing_area": (0.3, 0.2)}, "augment.erasing_area must satisfy 0 < min <= max <= 1, got [0.3, 0.2]"),
        ({"erasing_area": (0.0, 0.2)}, "augment.erasing_area must satisfy 0 < min <= max <= 1, got [0.0, 0.2]"),
        ({"erasing_area": (0.1,)}, "augment.erasing_area must be a pair [min, max], got [0.1]"),
        ({"erasing_area": 0.1}, "augment.erasing_area must be a pair [min, max], got 0.1"),
        ({"erasing_area": ("a", 0.2)}, "augment.erasing_area must hold two numbers, got ['a', 0.2]"),
        ({"mixup_alpha": -0.1}, "augment.mixup_alpha must be >= 0 (0 = off), got -0.1"),
        ({"cutmix_alpha": -1}, "augment.cutmix_alpha must be >= 0 (0 = off), got -1.0"),
        ({"num_classes": 0}, "augment.num_classes must be an integer >= 1, got 0"),
        ({"flip": "yes"}, "augment.flip must be true, false or alternating, got 'yes'"),
    ],
)
def test_bad_arguments_raise_config_error(kwargs, message):
    with pytest.raises(ConfigError) as info:
        Augment(**kwargs)
    assert str(info.value) == message


# ----------------------------------------------------------------------------- general contract
@pytest.mark.parametrize("name", MODES)
@pytest.mark.parametrize("device", devices())
def test_shape_dtype_device_range(name, device):
    aug = load(name)
    x, y = batch(32)
    x, y = x.to(device), y.to(device)
    x_before = x.clone()
    out, t = aug(x, y)
    assert out.shape == x.shape and out.dtype == x.dtype and out.device == x.device
    assert float(out.min()) >= 0.0 and float(out.max()) <= 1.0
    assert torch.equal(x, x_before), "input must not be modified in place"
    assert t.device == x.device
    if aug.soft_targets:
        assert t.shape == (32, 10) and t.dtype == torch.float32
        torch.testing.assert_close(t.sum(1), torch.ones(32, device=device))
    else:
        assert t.dtype == torch.int64 and torch.equal(t, y)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float64])
def test_other_float_dtypes(dtype):
    aug = Augment(crop_padding=2, flip=True, erasing=1.0, cutmix_alpha=1.0)
    x, y = batch(8)
    out, t = aug(x.to(dtype), y)
    assert out.dtype == dtype and t.dtype == torch.float32


@pytest.mark.parametrize("kwargs", [{"crop_padding": 2}, {"flip": True}, {"erasing": 1.0}, {"mixup_alpha": 1.0},
                                    {"cutmix_alpha": 1.0}], ids=["crop", "flip", "erasing", "mixup", "cutmix"])
def test_a_stage_on_its_own_never_modifies_its_input(kwargs):
    """The presets put the crop first, which copies; each stage must also leave the caller's tensor alone when it is
    the first (or only) one to run."""
    aug = Augment(**kwargs)
    torch.manual_seed(12)
    x, y = batch(16)
    before = x.clone()
    out, _ = aug(x, y)
    assert not torch.equal(out, before), "the stage did nothing: the test would prove nothing"
    assert torch.equal(x, before)


def test_only_alternating_flips_draw_from_the_global_rng_when_built():
    """The alternating-flip salt is drawn only when that flip is on: building any other augmentation leaves the
    training RNG stream, and so the runs of every other configuration, as they were."""
    torch.manual_seed(0)
    expected = torch.rand(4)
    for kwargs in ({}, {"flip": True}, {"crop_padding": 4, "erasing": 0.5, "mixup_alpha": 0.2, "cutmix_alpha": 1.0}):
        torch.manual_seed(0)
        Augment(**kwargs)
        assert torch.equal(torch.rand(4), expected), kwargs
    torch.manual_seed(0)
    Augment(flip="alternating")
    assert not torch.equal(torch.rand(4), expected)


def test_none_is_identity():
    aug = load("none")
    x, y = batch(16)
    out, t = aug(x, y)
    assert torch.equal(out, x) and torch.equal(t, y)


@pytest.mark.parametrize("name", MODES)
def test_deterministic_under_manual_seed(name):
    aug = load(name)
    x, y = batch(32)
    torch.manual_seed(123)
    a, ta = aug(x, y)
    torch.manual_seed(123)
    b, tb = aug(x, y)
    assert torch.equal(a, b) and torch.equal(ta, tb)
    if name != "none":
        c, _ = aug(x, y)  # the RNG advanced: a different draw
        assert not torch.equal(a, c)


@pytest.mark.parametrize("name", MODES)
def test_rng_state_restore_is_exact(name):
    aug = load(name)
    x, y = batch(32)
    torch.manual_seed(5)
    aug(x, y)
    state = torch.get_rng_state()
    a, ta = aug(x, y)
    torch.set_rng_state(state)
    b, tb = aug(x, y)
    assert torch.equal(a, b) and torch.equal(ta, tb)


def test_resumed_epoch_stream_matches_the_uninterrupted_one():
    """As the trainer resumes: seed, build the augmentation (alternating flips draw their salt), restore the
    checkpoint's RNG states; epoch 2's batches are then those of the run that was never interrupted."""
    import numpy as np

    from fmnist.data.loader import DeviceSplit, train_batches
    from fmnist.train.seeding import rng_state, seed_everything, set_rng_state

    split = DeviceSplit("train", np.arange(96), torch.randint(0, 256, (96, 1, 28, 28), dtype=torch.uint8),
                        torch.arange(96) % 10)
    kwargs = dict(crop_padding=2, flip="alternating", erasing=0.5, mixup_alpha=0.2, cutmix_alpha=1.0)

    def epoch(aug: Augment, number: int) -> list[torch.Tensor]:
        return [t for x, targets, _ in train_batches(split, 32, aug, epoch=number) for t in (x, targets)]

    seed_everything(3)
    aug = Augment(**kwargs)
    epoch(aug, 1)
    state = rng_state()
    whole = epoch(aug, 2)
    seed_everything(3)
    resumed = Augment(**kwargs)
    set_rng_state(state)
    assert all(torch.equal(a, b) for a, b in zip(whole, epoch(resumed, 2), strict=True))


def test_rejects_bad_inputs():
    aug = load("standard")
    x, y = batch(4)
    with pytest.raises(ValueError, match=r"Augment expects images of shape \[B, C, H, W\], got \(1, 28, 28\)"):
        aug(x[0], y)
    with pytest.raises(TypeError, match=r"Augment expects float images in \[0, 1\], got dtype torch.uint8"):
        aug((x * 255).to(torch.uint8), y)
    with pytest.raises(ValueError, match=r"labels must have shape \[4\], got \(3,\)"):
        aug(x, y[:3])


def test_empty_batch():
    for name in MODES:
        aug = load(name)
        out, t = aug(torch.rand(0, 1, 28, 28), torch.zeros(0, dtype=torch.int64))
        assert out.shape == (0, 1, 28, 28)
        assert t.shape == ((0, 10) if aug.soft_targets else (0,))


# ----------------------------------------------------------------------------- crop / flip
def test_standard_changes_images_with_per_sample_offsets():
    aug = load("standard")
    torch.manual_seed(0)
    x = torch.zeros(64, 1, 28, 28)
    x[:, :, 10:18, 6:14] = 1.0  # asymmetric bright square: both shift and flip are visible
    out, _ = aug(x, torch.zeros(64, dtype=torch.int64))
    assert not torch.equal(out, x)
    boxes = set()
    for img in out[:, 0]:
        rows = img.sum(1).nonzero().flatten()
        cols = img.sum(0).nonzero().flatten()
        boxes.add((int(rows[0]), int(cols[0])))
    assert len(boxes) > 10, "every image must get its own random offset"


@pytest.mark.parametrize("pad", [1, 2, 4])
def test_crop_moves_single_pixel_by_at_most_padding(pad):
    aug = Augment(crop_padding=pad)
    torch.manual_seed(1)
    n = 2048
    x = torch.zeros(n, 1, 28, 28)
    x[:, :, 13, 14] = 1.0
    out, _ = aug(x, torch.zeros(n, dtype=torch.int64))
    flat = out.flatten(1)
    assert torch.equal(flat.sum(1), torch.ones(n)), "a pixel this central never leaves the frame"
    assert torch.equal((flat != 0).sum(1), torch.ones(n, dtype=torch.int64))
    pos = flat.argmax(1)
    dy, dx = pos // 28 - 13, pos % 28 - 14
    assert int(dy.abs().max()) <= pad and int(dx.abs().max()) <= pad
    shifts = set(zip(dy.tolist(), dx.tolist()))
    assert len(shifts) == (2 * pad + 1) ** 2, "all shifts in [-p, p]^2 occur"


def test_crop_fills_with_zero_and_keeps_content():
    aug = Augment(crop_padding=4)
    torch.manual_seed(2)
    x = torch.ones(32, 1, 28, 28)
    out, _ = aug(x, torch.zeros(32, dtype=torch.int64))
    vals = out.unique()
    assert set(vals.tolist()) <= {0.0, 1.0}
    ones = out.sum(dim=(1, 2, 3))
    assert bool((ones >= 24 * 24).all())  # a shift of at most 4 px keeps >= 24x24 of the content


def test_crop_multichannel_moves_channels_together():
    aug = Augment(crop_padding=3)
    torch.manual_seed(3)
    x = torch.rand(16, 3, 20, 24)
    out, _ = aug(x, torch.zeros(16, dtype=torch.int64))
    assert out.shape == x.shape
    for i in range(16):
        # find the shift that reproduces channel 0 and check it reproduces all channels
        found = False
        for dy in range(-3, 4):
            for dx in range(-3, 4):
                shifted = torch.zeros_like(x[i])
                ys, yd = (slice(0, 20 - dy), slice(dy, 20)) if dy >= 0 else (slice(-dy, 20), slice(0, 20 + dy))
                xs, xd = (slice(0, 24 - dx), slice(dx, 24)) if dx >= 0 else (slice(-dx, 24), slice(0, 24 + dx))
                shifted[:, yd, xd] = x[i][:, ys, xs]
                if torch.equal(shifted, out[i]):
                    found = True
        assert found, f"sample {i} is not a pure translation of its input"


def test_flip_is_exact_mirror():
    aug = Augment(flip=True)
    torch.manual_seed(4)
    x, y = batch(128)
    out, t = aug(x, y)
    assert torch.equal(t, y)
    flipped = kept = 0
    for i in range(128):
        if torch.equal(out[i], x[i]):
            kept += 1
        else:
            assert torch.equal(out[i], x[i].flip(-1))
            flipped += 1
    assert 30 < flipped < 98 and flipped + kept == 128  # p = 0.5


def test_flip_mirrors_each_image_with_probability_one_half():
    """4096 one-row images [0, 1] (mirrored: [1, 0]): 2048 flips expected, standard deviation 32."""
    aug = Augment(flip=True)
    torch.manual_seed(10)
    n = 4096
    x = torch.tensor([0.0, 1.0]).view(1, 1, 1, 2).repeat(n, 1, 1, 1)
    out, _ = aug(x, torch.zeros(n, dtype=torch.int64))
    flipped = int((out[:, 0, 0, 0] == 1.0).sum())
    assert abs(flipped - n / 2) < 5 * 32


def test_alternating_flip_mirrors_each_image_in_every_other_epoch():
    """airbench's alternating flips: a random half of the images in one epoch, exactly the other half in
    the next, the same half again two epochs later; the half depends on the image's index, not its batch."""
    torch.manual_seed(0)
    aug = Augment(flip="alternating")
    x, y = batch(256)
    index = torch.randperm(10_000)[:256]

    def flipped(epoch: int, order: torch.Tensor) -> torch.Tensor:
        out, _ = aug(x[order], y[order], index=index[order], epoch=epoch)
        mirrored = torch.tensor([torch.equal(out[j], x[i].flip(-1)) for j, i in enumerate(order.tolist())])
        kept = torch.tensor([torch.equal(out[j], x[i]) for j, i in enumerate(order.tolist())])
        assert bool((mirrored | kept).all())
        result = torch.empty(256, dtype=torch.bool)
        result[order] = mirrored
        return result

    e1, e2, e3 = flipped(1, torch.randperm(256)), flipped(2, torch.randperm(256)), flipped(3, torch.arange(256))
    assert 90 < int(e1.sum()) < 166  # about half
    assert torch.equal(e2, ~e1) and torch.equal(e3, e1)
    other_run = Augment(flip="alternating")  # another salt: another half
    assert not torch.equal(other_run.flip_mask(index, 1), aug.flip_mask(index, 1))


def test_alternating_flip_half_is_random_and_independent_between_runs():
    """The flipped half looks random: neighbouring indices agree half the time (not an alternating pattern),
    and two runs (two salts) share half their flipped images, not a correlated or complementary set."""
    torch.manual_seed(0)
    index = torch.arange(54_000)
    masks = [Augment(flip="alternating").flip_mask(index, 1) for _ in range(4)]
    for m in masks:
        assert 0.49 < float(m.float().mean()) < 0.51
        assert 0.48 < float((m[1:] == m[:-1]).float().mean()) < 0.52
    for other in masks[1:]:
        assert 0.48 < float((other == masks[0]).float().mean()) < 0.52


def test_alternating_flip_needs_index_and_epoch():
    aug = Augment(flip="alternating")
    x, y = batch(8)
    with pytest.raises(ValueError, match="needs each image's training index and the epoch"):
        aug(x, y)
    with pytest.raises(ValueError, match="index must have shape"):
        aug(x, y, index=torch.arange(7), epoch=1)
    with pytest.raises(ConfigError, match="augment.flip must be true, false or alternating"):
        Augment(flip="sideways")


def test_train_batches_pass_index_and_epoch_to_the_augmentation():
    """Through the trainer's batch stream, every image is mirrored in exactly one of two epochs."""
    import numpy as np

    from fmnist.data.loader import DeviceSplit, train_batches

    n = 96
    images = torch.randint(0, 256, (n, 1, 28, 28), dtype=torch.uint8)
    labels = torch.arange(n)  # the label identifies the image
    split = DeviceSplit("train", np.arange(n), images, labels)
    aug = Augment(flip="alternating")
    seen = {}
    for epoch in (1, 2):
        for x, _, y in train_batches(split, 32, aug, epoch=epoch):
            for img, label in zip(x, y.tolist()):
                seen.setdefault(label, []).append(img)
    for label, (a, b) in seen.items():
        assert torch.allclose(a, b.flip(-1)) and not torch.allclose(a, b), label


# ----------------------------------------------------------------------------- erasing
@pytest.mark.parametrize("area", [(0.02, 0.25), (0.1, 0.1), (0.3, 0.6)])
def test_erasing_rectangle_within_area_bounds(area):
    h = w = 28
    aug = Augment(erasing=1.0, erasing_area=area)
    torch.manual_seed(6)
    n = 256
    x = torch.zeros(n, 1, h, w)
    out, _ = aug(x, torch.zeros(n, dtype=torch.int64))
    filled = out[:, 0] != 0  # noise is > 0 almost surely
    rows, cols = filled.any(2), filled.any(1)  # [n, H], [n, W]
    eh, ew = rows.sum(1), cols.sum(1)
    assert bool((eh > 0).all()), "erasing=1.0 erases every image"
    # exactly one filled rectangle: the filled pixels are the product of its row and column spans
    assert torch.equal(filled, rows[:, :, None] & cols[:, None, :])
    assert bool((rows.int().diff(dim=1).abs().sum(1) <= 2).all()), "contiguous rows"
    assert bool((cols.int().diff(dim=1).abs().sum(1) <= 2).all()), "contiguous cols"
    got = (eh * ew).float()
    # rounding each side to a whole pixel moves the area by at most ~0.5 * (eh + ew) + 0.25
    slack = 0.5 * (eh + ew).float() + 0.25
    assert bool((got >= area[0] * h * w - slack).all()) and bool((got <= area[1] * h * w + slack).all())
    ratio = eh.float() / ew.float()
    assert float(ratio.min()) >= 0.3 / 2 and float(ratio.max()) <= 3.3 * 2  # log-uniform in [0.3, 3.3] +- rounding
    if area[1] > area[0]:  # the areas spread over the range
        frac = got / (h * w)
        assert float(frac.min()) < area[0] + 0.25 * (area[1] - area[0])
        assert float(frac.max()) > area[1] - 0.25 * (area[1] - area[0])
    assert float(out.max()) <= 1.0


def test_erasing_probability_and_noise_fill():
    aug = Augment(erasing=0.5)
    torch.manual_seed(7)
    n = 400
    x = torch.full((n, 1, 28, 28), 2.0)  # out-of-range marker so erased pixels are identifiable
    out, _ = aug(x, torch.zeros(n, dtype=torch.int64))
    erased = (out != 2.0).flatten(1).any(1)
    assert 150 < int(erased.sum()) < 250
    noise = out[out != 2.0]
    assert float(noise.min()) >= 0.0 and float(noise.max()) < 1.0
    assert float(noise.std()) > 0.2  # uniform noise, not a constant fill (std of U(0,1) = 0.289)


def test_erasing_position_is_uniform_and_the_aspect_ratio_log_uniform_independently_of_the_area():
    """Zhong et al.: the rectangle lies anywhere it fits, top and left drawn independently (each of the h - eh + 1
    rows it can start in equally likely, so it touches the top and the bottom edge with the same probability
    1 / (h - eh + 1)); the aspect ratio eh / ew is log-uniform in [0.3, 3.3] (> 1 with p = log 3.3 / log 11 = 0.498)
    whatever the area. The default areas (up to a quarter of the image) fit at every ratio of that range."""
    h = w = 28
    aug = Augment(erasing=1.0)
    torch.manual_seed(8)
    n = 2000
    out, _ = aug(torch.zeros(n, 1, h, w), torch.zeros(n, dtype=torch.int64))
    filled = out[:, 0] != 0
    rows, cols = filled.any(2), filled.any(1)
    eh, ew = rows.sum(1), cols.sum(1)
    top, left = rows.int().argmax(1), cols.int().argmax(1)
    above, below, before, after = top, h - (top + eh), left, w - (left + ew)  # the margins around the rectangle
    for margin, side in ((above, eh), (below, eh), (before, ew), (after, ew)):
        p = 1.0 / (h - side.double() + 1)  # the chance of touching this edge
        expected, sd = float(p.sum()), float((p * (1 - p)).sum().sqrt())
        assert abs(int((margin == 0).sum()) - expected) < 5 * sd
    for upper in (above < below, above > below):  # the two axes independent: all four quadrants equally often
        for leftish in (before < after, before > after):
            assert int((upper & leftish).sum()) > n / 5  # ~n/4 less the ties (centred rectangles)
    ratio = eh.double() / ew.double()
    small = (eh * ew) < (eh * ew).median()
    for subset in (torch.ones(n, dtype=torch.bool), small, ~small):
        tall, wide = float((ratio[subset] > 1).double().mean()), float((ratio[subset] < 1).double().mean())
        assert 0.35 < tall < 0.6 and 0.35 < wide < 0.6
    assert float(ratio.max()) > 2.5 and float(ratio.min()) < 1 / 2.5


def test_strong_erases_after_cropping_and_flipping():
    """Every stage that is on runs: the strong preset crops, flips and erases half of the images."""
    aug = load("strong")
    torch.manual_seed(7)
    n = 400
    out, _ = aug(torch.zeros(n, 1, 28, 28), torch.zeros(n, dtype=torch.int64))
    erased = out.flatten(1).any(1)  # the crop's zero fill and a flip keep a black image black
    assert 150 < int(erased.sum()) < 250


# ----------------------------------------------------------------------------- mixup / cutmix
def test_mixup_matches_lambda():
    n = 16
    aug = Augment(mixup_alpha=0.4, num_classes=n)
    y = torch.arange(n)  # unique labels: the partner can be read off the targets
    x = (torch.arange(n, dtype=torch.float32) / n).view(n, 1, 1, 1).expand(n, 1, 28, 28).contiguous()
    seen_mixed = False
    for seed in range(5):
        torch.manual_seed(seed)
        out, t = aug(x, y)
        torch.testing.assert_close(t.sum(1), torch.ones(n))
        # λ is one number per batch: every row has λ at its own label (or 1 if paired with itself)
        own = t[torch.arange(n), y]
        paired = own < 1 - 1e-6
        if not paired.any():
            continue
        lams = own[paired]
        lam = float(lams[0])
        torch.testing.assert_close(lams, torch.full_like(lams, lam))
        for j in range(n):
            nz = (t[j] > 0).nonzero().flatten().tolist()
            k = next((c for c in nz if c != j), j)  # partner index == partner label
            if k != j:
                assert float(t[j, k]) == pytest.approx(1 - lam, abs=1e-6)
                seen_mixed = True
            expected = lam * x[j] + (1 - lam) * x[k] if k != j else x[j]
            torch.testing.assert_close(out[j], expected, atol=1e-6, rtol=0)
        ks = [next((c for c in (t[j] > 0).nonzero().flatten().tolist() if c != j), j) for j in range(n)]
        assert sorted(ks) == list(range(n)), "partners form a permutation"
    assert seen_mixed


def test_cutmix_matches_box_area():
    aug = Augment(cutmix_alpha=1.0)
    for seed in range(10):
        torch.manual_seed(seed)
        n = 32
        x = (torch.arange(n, dtype=torch.float32) / n).view(n, 1, 1, 1).expand(n, 1, 28, 28).contiguous()
        y = torch.arange(n) % 10
        out, t = aug(x, y)
        torch.testing.assert_close(t.sum(1), torch.ones(n))
        # with constant images, the pasted box is where out differs from x (identical to x where perm[i] == i)
        diff = (out != x)[:, 0]
        changed = diff.flatten(1).any(1)
        if not changed.any():
            # empty box (λ = 1) or identity perm: targets are then one-hot of y
            continue
        i = int(changed.nonzero()[0])
        box = diff[i]
        nz = box.nonzero()
        y0, x0 = nz.min(0).values.tolist()
        y1, x1 = nz.max(0).values.tolist()
        assert int(box.sum()) == (y1 - y0 + 1) * (x1 - x0 + 1), "one rectangle"
        lam = 1 - (y1 - y0 + 1) * (x1 - x0 + 1) / (28 * 28)
        # same box for every changed sample (one box per batch)
        for j in changed.nonzero().flatten().tolist():
            assert torch.equal(diff[j], box)
            k = int(round(float(out[j, 0, y0, x0]) * n))  # the partner index
            if int(y[k]) != int(y[j]):
                assert float(t[j, y[j]]) == pytest.approx(lam, abs=1e-6)
                assert float(t[j, y[k]]) == pytest.approx(1 - lam, abs=1e-6)


def test_cutmix_box_centre_is_uniform_over_the_image_and_the_box_clipped_at_its_border():
    """Yun et al.: the centre is drawn over the whole image, so clipped boxes reach each of the four edges."""
    aug = Augment(cutmix_alpha=1.0)
    torch.manual_seed(13)
    x = torch.stack([torch.zeros(1, 28, 28), torch.ones(1, 28, 28)])
    boxes = 0
    edges = torch.zeros(4)
    for _ in range(300):
        out, _ = aug(x, torch.tensor([0, 1]))
        box = out[0, 0] != 0  # empty when the two images were not swapped or the box is
        if box.any():
            rows, cols = box.any(1).nonzero(), box.any(0).nonzero()
            edges += torch.tensor([rows.min() == 0, rows.max() == 27, cols.min() == 0, cols.max() == 27])
            boxes += 1
    assert boxes > 100 and bool((edges > boxes / 8).all()), (boxes, edges)


def test_mixup_or_cutmix_when_both_on():
    aug = Augment(mixup_alpha=1.0, cutmix_alpha=1.0)
    torch.manual_seed(9)
    x = torch.rand(16, 1, 28, 28)
    y = torch.arange(16) % 10
    kinds = set()
    for _ in range(40):
        out, t = aug(x, y)
        torch.testing.assert_close(t.sum(1), torch.ones(16))
        if torch.equal(out, x):
            continue
        # cutmix leaves some pixels of every image untouched; mixup (λ < 1) changes almost all
        frac_same = float((out == x).float().mean())
        kinds.add("cutmix" if frac_same > 0.05 else "mixup")
    assert kinds == {"cutmix", "mixup"}
