"""Model zoo tests: every conf/model yaml × norms × activations, composed through Hydra."""

from __future__ import annotations

import inspect
import math
import operator
from pathlib import Path

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from hydra import compose, initialize_config_dir
from hydra.utils import get_class, instantiate
from omegaconf import OmegaConf

from fmnist.errors import ConfigError
from fmnist.models import (
    VGG,
    BasicBlock,
    Bottleneck,
    PreActBasicBlock,
    PreActBottleneck,
    ResNet,
    ResNet9,
    ZeroPadShortcut,
    count_flops,
    count_parameters,
    model_summary,
)
from fmnist.models.layers import groupnorm, init_weights
from fmnist.models.resnet9 import Residual

CONF = Path(__file__).resolve().parents[1] / "conf"
MODELS = sorted(p.stem for p in (CONF / "model").glob("*.yaml"))
NORMS = sorted(p.stem for p in (CONF / "norm").glob("*.yaml"))
ACTIVATIONS = sorted(p.stem for p in (CONF / "activation").glob("*.yaml"))
TINY = 8  # width used for forward/backward tests
COMBOS = [("batchnorm", "relu"), ("groupnorm", "gelu"), ("none", "leaky_relu")]

ACT_TYPES = (nn.ReLU, nn.LeakyReLU, nn.ELU, nn.GELU, nn.SiLU)
# nonlinearities per model (stem/prep + per block / per conv)
EXPECTED_ACTS = {
    "resnet18": 1 + 8 * 2,
    "plain18": 1 + 8 * 2,
    "preact_resnet18": 8 * 2 + 1,
    "resnet34": 1 + 16 * 2,
    "resnet50": 1 + 16 * 3,
    "resnet9": 8,
    "vgg11": 8,
}


def test_expected_options_exist():
    assert set(MODELS) == set(EXPECTED_ACTS)
    assert set(NORMS) == {"batchnorm", "groupnorm", "layernorm", "none"}
    assert set(ACTIVATIONS) == {"relu", "leaky_relu", "elu", "gelu", "silu"}


# --------------------------------------------------------------------------- helpers


@pytest.fixture(scope="module")
def primary_dir(tmp_path_factory) -> Path:
    """A tiny primary config whose defaults pick model/norm/activation from the repo's conf/."""
    d = tmp_path_factory.mktemp("primary")
    (d / "config.yaml").write_text(
        "defaults:\n  - model: resnet18\n  - norm: batchnorm\n  - activation: relu\n  - _self_\n"
        f"hydra:\n  searchpath:\n    - file://{CONF}\n"
    )
    return d


@pytest.fixture
def build(primary_dir):
    def _build(model: str, norm: str = "batchnorm", activation: str = "relu", overrides=(), meta=False):
        with initialize_config_dir(config_dir=str(primary_dir), version_base=None):
            cfg = compose("config", overrides=[f"model={model}", f"norm={norm}", f"activation={activation}", *overrides])
        norm_f = instantiate(cfg.norm)
        act_f = instantiate(cfg.activation)
        if meta:
            with torch.device("meta"):
                return instantiate(cfg.model, norm=norm_f, activation=act_f)
        return instantiate(cfg.model, norm=norm_f, activation=act_f)

    return _build


def activation_modules(model: nn.Module) -> list[nn.Module]:
    return [m for _, m in model.named_modules(remove_duplicate=False) if isinstance(m, ACT_TYPES)]


def check_forward_backward(model: nn.Module, batch: int = 4) -> None:
    torch.manual_seed(0)
    model.train()
    acts = activation_modules(model)
    assert acts, "model has no activation modules"
    assert len({id(m) for m in acts}) == len(acts), "an activation module is reused"
    calls = {id(m): 0 for m in acts}
    handles = [m.register_forward_hook(lambda mod, i, o: calls.__setitem__(id(mod), calls[id(mod)] + 1)) for m in acts]
    x = torch.randn(batch, 1, 28, 28)
    y = torch.arange(batch) % 10
    out = model(x)
    for h in handles:
        h.remove()
    assert out.shape == (batch, 10)
    assert torch.isfinite(out).all()
    assert all(c == 1 for c in calls.values()), "every activation module must run exactly once"
    F.cross_entropy(out, y).backward()
    for name, p in model.named_parameters():
        assert p.grad is not None, f"{name}: no gradient"
        assert torch.isfinite(p.grad).all(), f"{name}: non-finite gradient"
        assert p.grad.abs().sum() > 0, f"{name}: zero gradient"


def count_adds(model: nn.Module) -> int:
    gm = torch.fx.symbolic_trace(model)
    return sum(
        1
        for n in gm.graph.nodes
        if (n.op == "call_function" and n.target in (operator.add, operator.iadd, torch.add))
        or (n.op == "call_method" and n.target in ("add", "add_"))
    )


def shortcut_params(model: nn.Module) -> int:
    return sum(
        p.numel() for name, m in model.named_modules() if name.endswith("shortcut") for p in m.parameters()
    )


# --------------------------------------------------------------------------- every yaml


@pytest.mark.parametrize("norm,activation", COMBOS)
@pytest.mark.parametrize("model_name", MODELS)
def test_forward_backward(build, model_name, norm, activation):
    model = build(model_name, norm, activation, overrides=[f"model.width={TINY}"])
    check_forward_backward(model)
    assert len(activation_modules(model)) == EXPECTED_ACTS[model_name]


@pytest.mark.parametrize("norm", NORMS)
def test_every_norm(build, norm):
    model = build("preact_resnet18", norm, "relu", overrides=[f"model.width={TINY}"])
    check_forward_backward(model)
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    bn = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    gn = [m for m in model.modules() if isinstance(m, nn.GroupNorm)]
    if norm == "batchnorm":
        assert bn and not gn
    elif norm == "groupnorm":
        assert gn and not bn
        assert all(m.num_groups == torch.gcd(torch.tensor(32), torch.tensor(m.num_channels)).item() for m in gn)
    elif norm == "layernorm":
        assert gn and not bn and all(m.num_groups == 1 for m in gn)
    else:
        assert not bn and not gn
    # convs carry a bias exactly when there is no norm
    assert all((c.bias is not None) == (norm == "none") for c in convs)


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_every_activation(build, activation):
    model = build("resnet9", "batchnorm", activation, overrides=[f"model.width={TINY}"])
    check_forward_backward(model)
    cls = get_class(OmegaConf.load(CONF / "activation" / f"{activation}.yaml")._target_)
    acts = activation_modules(model)
    assert all(type(m) is cls for m in acts)
    if activation == "leaky_relu":
        assert all(m.negative_slope == 0.01 for m in acts)


@pytest.mark.parametrize("model_name", MODELS)
def test_yaml_lists_every_knob(model_name):
    node = OmegaConf.load(CONF / "model" / f"{model_name}.yaml")
    cls = get_class(node._target_)
    knobs = set(inspect.signature(cls.__init__).parameters) - {"self", "norm", "activation"}
    assert set(node.keys()) - {"_target_"} == knobs


# --------------------------------------------------------------------------- parameter counts


def test_exact_parameter_counts(build):
    assert count_parameters(build("resnet18", meta=True)) == 11_172_810
    assert count_parameters(build("resnet50", meta=True)) == 23_519_690
    assert count_parameters(build("resnet34", meta=True)) == 21_280_970


def test_plain_vs_residual_twins(build):
    res, plain = build("resnet18", meta=True), build("plain18", meta=True)
    proj = shortcut_params(res)
    # 1x1 conv + BatchNorm (weight, bias) at the three stage transitions 64->128->256->512
    assert proj == sum(c * 2 * c + 2 * (2 * c) for c in (64, 128, 256)) == 173_824
    assert count_parameters(res) - count_parameters(plain) == proj > 0
    assert shortcut_params(plain) == 0
    assert not any(n.endswith("shortcut") for n, _ in plain.named_modules())
    # every plain parameter exists, with the same shape, in the residual twin
    rp = dict(res.named_parameters())
    assert all(n in rp and rp[n].shape == p.shape for n, p in plain.named_parameters())
    # model.skip=false from the command line gives the same plain net
    assert count_parameters(build("resnet18", overrides=["model.skip=false"], meta=True)) == count_parameters(plain)

    r9, p9 = build("resnet9", meta=True), build("resnet9", overrides=["model.skip=false"], meta=True)
    assert count_parameters(r9) - count_parameters(p9) == shortcut_params(r9) == 0


def test_skip_false_removes_additions(build):
    res = build("resnet18", overrides=[f"model.width={TINY}"])
    plain = build("plain18", overrides=[f"model.width={TINY}"])
    assert count_adds(res) == 8 and count_adds(plain) == 0
    r9 = build("resnet9", overrides=[f"model.width={TINY}"])
    p9 = build("resnet9", overrides=[f"model.width={TINY}", "model.skip=false"])
    assert count_adds(r9) == 2 and count_adds(p9) == 0
    # same weights, different function
    p9.load_state_dict(r9.state_dict())
    plain.load_state_dict(res.state_dict(), strict=False)
    x = torch.randn(2, 1, 28, 28)
    with torch.no_grad():
        assert not torch.allclose(r9.eval()(x), p9.eval()(x))
        assert not torch.allclose(res.eval()(x), plain.eval()(x))


@pytest.mark.parametrize("block_cls", [BasicBlock, Bottleneck])
def test_zero_init_block_is_shortcut(block_cls):
    """With the last norm zeroed the branch vanishes: skip -> act(x), plain -> act(0) = 0."""
    ch = 16
    x = torch.randn(2, ch, 7, 7).abs()
    for skip in (True, False):
        b = block_cls(ch, ch // block_cls.expansion, 1, skip=skip)
        b.zero_init_branch()
        b.eval()
        with torch.no_grad():
            expected = x if skip else torch.zeros_like(x)
            assert torch.allclose(b(x), expected)


@pytest.mark.parametrize("block_cls", [BasicBlock, Bottleneck, PreActBasicBlock, PreActBottleneck])
def test_zero_init_branch_starts_as_shortcut_and_learns(block_cls):
    """A zero-initialised branch outputs 0 (the block is its shortcut) yet every branch layer gets a gradient
    within two steps: a pre-act block whose last norm is zeroed feeds ReLU exactly 0 and never learns."""
    ch = 16
    b = block_cls(ch, ch // block_cls.expansion, 1)
    b.zero_init_branch()
    x = torch.randn(4, ch, 7, 7)
    shortcut = x if block_cls._preact else F.relu(x)
    with torch.no_grad():
        assert torch.allclose(b.eval()(x), shortcut)
    opt = torch.optim.SGD(b.parameters(), lr=0.1)
    for _ in range(2):
        opt.zero_grad()
        b.train()(x).square().mean().backward()
        opt.step()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in b.parameters())


@pytest.mark.parametrize("block_cls", [PreActBasicBlock, PreActBottleneck])
def test_preact_projection_reads_the_preactivated_input(block_cls):
    """He et al. 2016: a pre-activation block's projection shortcut (stride 2, more channels) is applied to
    act(norm(x)), not to the raw x; with the branch zeroed the block is exactly that shortcut."""
    torch.manual_seed(0)
    b = block_cls(8, 16 // block_cls.expansion, 2)
    b.zero_init_branch()
    with torch.no_grad():
        b.bn1.running_mean.fill_(0.5)
    b.eval()
    x = torch.randn(2, 8, 8, 8)
    assert isinstance(b.shortcut, nn.Conv2d) and b.shortcut_on_preact
    with torch.no_grad():
        torch.testing.assert_close(b(x), b.shortcut(b.act1(b.bn1(x))))
        assert not torch.allclose(b(x), b.shortcut(x))


def test_zeropad_shortcut_subsamples_and_appends_zero_channels():
    x = torch.randn(2, 3, 6, 6)
    out = ZeroPadShortcut(3, 5, stride=2)(x)
    assert out.shape == (2, 5, 3, 3)
    assert torch.equal(out[:, :3], x[:, :, ::2, ::2]) and not out[:, 3:].any()


def test_zero_init_residual_option(build):
    model = build("resnet50", overrides=[f"model.width={TINY}", "model.zero_init_residual=true"])
    blocks = [m for m in model.modules() if isinstance(m, Bottleneck)]
    assert blocks and all(torch.count_nonzero(b.bn3.weight) == 0 for b in blocks)
    pre = build("preact_resnet18", overrides=[f"model.width={TINY}", "model.zero_init_residual=true"])
    blocks = [m for m in pre.modules() if isinstance(m, PreActBasicBlock)]
    assert blocks and all(torch.count_nonzero(b.conv2.weight) == 0 for b in blocks)
    assert all(torch.count_nonzero(b.bn2.weight) == b.bn2.weight.numel() for b in blocks)


def test_zeropad_shortcut(build):
    res = build("resnet18", overrides=["model.shortcut=zeropad"], meta=True)
    plain = build("plain18", meta=True)
    assert shortcut_params(res) == 0
    assert count_parameters(res) == count_parameters(plain)
    assert sum(isinstance(m, ZeroPadShortcut) for m in res.modules()) == 3
    for name, extra in [("resnet50", []), ("preact_resnet18", []), ("resnet50", ["model.preact=true"])]:
        model = build(name, overrides=[f"model.width={TINY}", "model.shortcut=zeropad", *extra])
        assert shortcut_params(model) == 0
        check_forward_backward(model)


def test_preact(build):
    model = build("preact_resnet18", overrides=[f"model.width={TINY}"])
    blocks = [b for stage in model.stages for b in stage]
    assert len(blocks) == 8 and all(isinstance(b, PreActBasicBlock) for b in blocks)
    assert isinstance(model.final[0], nn.BatchNorm2d) and isinstance(model.final[1], nn.ReLU)
    assert count_adds(model) == 8
    bottleneck = build("resnet50", overrides=[f"model.width={TINY}", "model.preact=true"])
    assert any(isinstance(m, PreActBottleneck) for m in bottleneck.modules())
    check_forward_backward(bottleneck)


def test_dropout_and_shapes(build):
    model = build("vgg11", overrides=[f"model.width={TINY}", "model.dropout=0.5"])
    assert any(isinstance(m, nn.Dropout) and m.p == 0.5 for m in model.modules())
    assert isinstance(model, VGG) and isinstance(build("resnet9", overrides=[f"model.width={TINY}"]), ResNet9)
    r = build("resnet18", overrides=[f"model.width={TINY}"])
    sizes = []
    hooks = [s.register_forward_hook(lambda m, i, o: sizes.append(o.shape[-1])) for s in r.stages]
    r(torch.randn(1, 1, 28, 28))
    for h in hooks:
        h.remove()
    assert sizes == [28, 14, 7, 4]


def test_defaults_without_hydra():
    model = ResNet([1, 1], width=4)
    assert model(torch.randn(2, 1, 28, 28)).shape == (2, 10)
    assert ResNet9(width=4)(torch.randn(2, 1, 28, 28)).shape == (2, 10)
    assert VGG(width=4)(torch.randn(2, 1, 28, 28)).shape == (2, 10)


def test_invalid_knobs_raise():
    with pytest.raises(ConfigError, match="model.block must be 'basic' or 'bottleneck', got 'wide'"):
        ResNet([2, 2], block="wide")
    with pytest.raises(ConfigError, match=r"model.shortcut must be one of .*, got 'option_c'"):
        ResNet([2, 2], shortcut="option_c")
    for depths in ([], [2, 0]):
        with pytest.raises(ConfigError, match=r"model.depths must be a non-empty list of positive ints, got \["):
            ResNet(depths)
    with pytest.raises(ConfigError, match="model.layers: expected an int or 'M', got 'X'"):
        VGG([8, "X"])
    with pytest.raises(ConfigError, match="model.layers must contain at least one conv"):
        VGG(["M"])
    for make in (lambda **kw: ResNet([1, 1], **kw), ResNet9, VGG):  # every model checks width and dropout
        with pytest.raises(ConfigError, match="model.width must be >= 1, got 0"):
            make(width=0)
        with pytest.raises(ConfigError, match=r"model.dropout must be in \[0, 1\), got 1.0"):
            make(width=4, dropout=1.0)
    assert groupnorm(48, groups=32).num_groups == 16
    assert groupnorm(8, groups=32).num_groups == 8


# --------------------------------------------------------------------------- summary


@pytest.mark.parametrize("name", MODELS)
def test_count_flops_matches_torch_flop_counter(build, name: str) -> None:
    """The layer hooks count what torch's FlopCounterMode counts (convs and matmuls, 2 FLOPs per multiply-add), for
    every model, with the skip projections, a classifier and the stride-2 stages of the deeper nets; a model
    computing a conv or matmul outside a Conv/Linear layer would be under-counted and fail here."""
    from torch.utils.flop_counter import FlopCounterMode

    model = build(name, overrides=[f"model.width={TINY}"]).eval()
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(torch.zeros(2, 1, 28, 28))
    assert count_flops(model, (2, 1, 28, 28)) == counter.get_total_flops() // 2 > 0
    with torch.device("meta"):  # the report's model table builds them there: shapes only, same counts
        on_meta = build(name, overrides=[f"model.width={TINY}"])
    assert count_flops(on_meta) == count_flops(model)


def test_count_flops_is_pure(build):
    model = build("resnet18", overrides=[f"model.width={TINY}"])
    model.train()
    model(torch.randn(4, 1, 28, 28))  # make running stats non-trivial
    before = {k: v.clone() for k, v in model.state_dict().items()}
    fired = []
    handle = model.stem.register_forward_hook(lambda *a: fired.append(1))
    flops = count_flops(model)
    summary = model_summary(model)
    handle.remove()
    assert flops > 0 and summary == {"params": count_parameters(model), "flops": flops}
    assert count_flops(model, (4, 1, 28, 28)) == flops  # per image
    assert model.training and not fired
    assert all(p.device.type == "cpu" for p in model.parameters())
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert len(model.stem._forward_hooks) == 0


# --------------------------------------------------------------------------- layouts the docstrings promise


def test_exact_parameter_counts_of_resnet9_and_vgg11(build):
    """From the layouts in the module docstrings, width 64, BatchNorm (weight + bias per channel), bias-free convs.
    ResNet-9: 3x3 convs 1->64, 64->128, 2 x 128->128, 128->256, 256->512, 2 x 512->512; norms over 64 + 3 x 128 + 256
    + 3 x 512 channels; a bias-free 512->10 classifier (Page)."""
    convs9 = 9 * (1 * 64 + 64 * 128 + 2 * 128 * 128 + 128 * 256 + 256 * 512 + 2 * 512 * 512)
    assert count_parameters(build("resnet9", meta=True)) == convs9 + 2 * (64 + 3 * 128 + 256 + 3 * 512) + 512 * 10
    # VGG11 config A: 1->64, 64->128, 128->256, 256->256, 256->512, 3 x 512->512; a 512->10 classifier with bias
    convs11 = 9 * (1 * 64 + 64 * 128 + 128 * 256 + 256 * 256 + 256 * 512 + 3 * 512 * 512)
    assert count_parameters(build("vgg11", meta=True)) == convs11 + 2 * (64 + 128 + 2 * 256 + 4 * 512) + 512 * 10 + 10


def test_resnet9_pools_before_its_residuals_takes_the_global_max_and_scales_the_logits(build):
    """Page's layout: the residuals run on the pooled 14x14 and 3x3 maps, a global max pool follows, and the
    bias-free classifier's logits are multiplied by logit_scale."""
    model = build("resnet9", "groupnorm", "gelu", overrides=[f"model.width={TINY}", "model.logit_scale=0.25"]).eval()
    sizes = []
    for m in model.modules():
        if isinstance(m, Residual):
            m.register_forward_pre_hook(lambda mod, args: sizes.append(args[0].shape[-1]))
    x = torch.randn(2, 1, 28, 28)
    with torch.no_grad():
        logits, features = model(x), model.forward_features(x)
        last = model.layer3(model.layer2(model.layer1(model.prep(x))))
    assert sizes == [14, 3] * 3 and last.shape[-2:] == (3, 3)  # three forward passes
    torch.testing.assert_close(features, last.amax(dim=(2, 3)))
    torch.testing.assert_close(logits, features @ model.fc.weight.T * 0.25)


@pytest.mark.parametrize("model_name", ["resnet18", "preact_resnet18"])
def test_resnet_features_are_the_global_average_of_the_last_map(build, model_name):
    """ResNets pool their last 4x4 map by its average (after the final norm + act of a pre-activation net, and
    nothing else: GELU is not idempotent, so an extra activation would show); logits = fc(features)."""
    model = build(model_name, "batchnorm", "gelu", overrides=[f"model.width={TINY}"]).eval()
    x = torch.randn(2, 1, 28, 28)
    with torch.no_grad():
        last = model.stages(model.stem(x))
        last = model.final(last) if model.preact else last
        features = model.forward_features(x)
        logits = model(x)
    torch.testing.assert_close(features, last.mean(dim=(2, 3)))
    torch.testing.assert_close(logits, model.fc(features))


def test_vgg_convs_are_followed_by_norm_then_activation_and_the_last_map_averaged():
    """(VGG11's last map is 1x1, where average and max pooling agree: a shorter layer list shows the pool.)"""
    model = VGG([8, "M", 16], width=64).eval()
    assert [type(m) for m in model.features] == [nn.Conv2d, nn.BatchNorm2d, nn.ReLU, nn.MaxPool2d,
                                                  nn.Conv2d, nn.BatchNorm2d, nn.ReLU]
    x = torch.randn(2, 1, 28, 28)
    with torch.no_grad():
        last, features, logits = model.features(x), model.forward_features(x), model(x)
    assert last.shape[-2:] == (14, 14)
    torch.testing.assert_close(features, last.mean(dim=(2, 3)))
    torch.testing.assert_close(logits, model.fc(features))


@pytest.mark.parametrize("model_name", MODELS)
def test_dropout_sits_before_the_classifier_of_every_model(build, model_name):
    model = build(model_name, overrides=[f"model.width={TINY}", "model.dropout=0.3"])
    assert isinstance(model.dropout, nn.Dropout) and model.dropout.p == 0.3
    assert not any(isinstance(m, nn.Dropout) for m in build(model_name, overrides=[f"model.width={TINY}"]).modules())


def test_zero_init_residual_leaves_a_plain_net_alone(build):
    """A plain net has no residual branch to start at zero: zeroing its blocks' last norms would make every block
    output act(0) = 0 and cut the signal, so model.zero_init_residual does nothing there."""
    plain = build("plain18", overrides=[f"model.width={TINY}", "model.zero_init_residual=true"])
    blocks = [m for m in plain.modules() if isinstance(m, BasicBlock)]
    assert blocks and all(torch.count_nonzero(b.bn2.weight) == b.bn2.weight.numel() for b in blocks)


def test_kaiming_init_uses_fan_out_and_zero_biases_and_default_init_changes_nothing():
    """init="kaiming": conv weights ~ N(0, 2 / fan_out), fan_out = out_channels x k x k (torchvision's ResNet), conv
    biases 0, norm weights 1 and biases 0. init="default" leaves torch's own initialisation as it was."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(16, 64, 3), nn.GroupNorm(4, 64))
    with torch.no_grad():
        model[1].weight.fill_(3.0)
        model[1].bias.fill_(2.0)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    init_weights(model, "default")
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    init_weights(model, "kaiming")
    conv, norm = model
    # 9216 draws: the sample std is within 1 % of sqrt(2 / 576) = 0.059 (fan_in would give 0.118)
    assert float(conv.weight.detach().std()) == pytest.approx(math.sqrt(2 / (64 * 9)), rel=0.03)
    assert not conv.bias.any() and torch.equal(norm.weight, torch.ones(64)) and not norm.bias.any()


@pytest.mark.parametrize("model_name", MODELS)
def test_model_init_option_reaches_the_convolutions(build, model_name):
    """torch's default conv init is uniform within 1 / sqrt(fan_in); kaiming-normal draws (fan_out) exceed that."""
    def beyond_default_bound(model: nn.Module) -> bool:
        convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
        return any(float(c.weight.detach().abs().max()) > 1 / math.sqrt(c.weight[0].numel()) for c in convs)

    assert not beyond_default_bound(build(model_name, overrides=[f"model.width={TINY}", "model.init=default"]))
    assert beyond_default_bound(build(model_name, overrides=[f"model.width={TINY}", "model.init=kaiming"]))


def test_norm_options_reach_every_norm_layer(build):
    bn = build("resnet9", "batchnorm", overrides=[f"model.width={TINY}", "norm.momentum=0.01", "norm.eps=0.001",
                                                   "norm.affine=false", "norm.track_running_stats=false"])
    norms = [m for m in bn.modules() if isinstance(m, nn.BatchNorm2d)]
    assert norms and all((m.momentum, m.eps, m.affine, m.track_running_stats) == (0.01, 0.001, False, False)
                         for m in norms)
    for name in ("groupnorm", "layernorm"):
        gn = build("resnet9", name, overrides=[f"model.width={TINY}", "norm.eps=0.001", "norm.affine=false"])
        norms = [m for m in gn.modules() if isinstance(m, nn.GroupNorm)]
        assert norms and all((m.eps, m.affine, m.weight) == (0.001, False, None) for m in norms)


def test_count_parameters_counts_trainable_parameters_only():
    model = nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 2))
    model[0].requires_grad_(False)
    assert count_parameters(model) == 4 * 2 + 2


def test_count_flops_keeps_the_models_own_hooks():
    """The analysis hooks are set aside while the copy is made, and are back (and fire) afterwards."""
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.Flatten(), nn.LazyLinear(3))
    model(torch.zeros(1, 1, 28, 28))
    fired = []
    model[0].register_forward_hook(lambda *args: fired.append("forward"))
    model[0].register_forward_pre_hook(lambda *args: fired.append("pre"))
    # conv: 2 x 26 x 26 outputs x 9 multiply-adds; linear: 3 outputs x 1352 inputs; 2 FLOPs per multiply-add
    assert count_flops(model) == 2 * (2 * 26 * 26 * 9 + 3 * 2 * 26 * 26) and not fired
    model(torch.zeros(1, 1, 28, 28))
    assert fired == ["pre", "forward"]
