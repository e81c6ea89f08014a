"""Bad configuration: every case stops before training with a clear one-line message naming the key.

Cases already covered in tests/test_train.py (not repeated here): trainer.epochs=0, trainer.batch_size=0,
data.val_fraction=1.0, trainer.precision=fp8, a `_target_` outside the allow-list, the CLI's one-line
error for trainer.epochs=0, an unknown key (trainer.epoch=3) on the command line, device=cuda:3."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from runs import compose_train, run_train_cli

from fmnist.errors import ConfigError, DataError
from fmnist.train.run import train

ROOT = Path(__file__).resolve().parents[1]
TINY = ["model.width=4", "trainer.epochs=1", "logger=none", "data.val_fraction=0.1"]


def compose_cfg(data_dir: Path, *overrides: str):
    return compose_train(data_dir, *TINY, *overrides)


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return run_train_cli(*args, timeout=300)


@pytest.mark.parametrize(("override", "message"), [
    ("trainer.epochs=???", "missing required value(s): trainer.epochs"),
    ("data.dir=???", "missing required value(s): data.dir"),
    ("trainer.epochs=-2", "trainer.epochs=-2 is invalid: must be an integer >= 1"),
    ("trainer.epochs=2.5", "trainer.epochs=2.5 is invalid"),
    ("trainer.batch_size=-8", "trainer.batch_size=-8 is invalid"),
    ("trainer.eval_batch_size=0", "trainer.eval_batch_size=0 is invalid"),
    ("data.val_fraction=1.5", "data.val_fraction=1.5 is invalid: must be in [0, 1)"),
    ("data.val_fraction=-0.1", "data.val_fraction=-0.1 is invalid"),
    ("data.subset=0", "data.subset=0 is invalid"),
    ("optimizer.lr=-1", "optimizer.lr must be >= 0, got -1"),  # torch's "Invalid learning rate", after the data
    ("optimizer.lr=nan", "optimizer.lr must be >= 0, got nan"),
    ("optimizer.weight_decay=-0.1", "optimizer.weight_decay must be >= 0, got -0.1"),
    ("device=tpu", "device='tpu'"),
    ("device=null", "device=null is not a device name (use auto, cpu, cuda, cuda:N or mps)"),  # not 'none'
    ("device=mps", "device='mps' requested but MPS is not available"),
    ("trainer=fast", "trainer='fast' is invalid: trainer is a section of the config, not a value"),
    ("~trainer.epochs", "required key(s) trainer.epochs removed (with ~?)"),
    ("~seed", "required key(s) seed removed (with ~?)"),
    ("~logger", "required key(s) logger removed (with ~?)"),
])
def test_bad_value_is_refused_and_recorded(tmp_path: Path, override: str, message: str) -> None:
    cfg = compose_cfg(tmp_path / "no-data-needed", override)
    with pytest.raises(ConfigError) as info:
        train(cfg, tmp_path / "r")
    assert message in str(info.value) and "\n" not in str(info.value)
    summary = json.loads((tmp_path / "r" / "summary.json").read_text())
    assert summary["status"] == "failed" and message in summary["error"]  # a sweep's report shows why


def test_precision_and_device_names_are_checked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each refusal of fmnist/train/device.py with its own message; the GPU counts are the machine's, stubbed."""
    import torch

    from fmnist.train.device import resolve_device

    with pytest.raises(ConfigError, match=r"^trainer.precision=fp16 needs a GPU; use fp32 or bf16 on CPU$"):
        train(compose_cfg(tmp_path / "no-data-needed", "device=cpu", "trainer.precision=fp16"), tmp_path / "r")
    with pytest.raises(ConfigError, match=r"^device='meta' is not supported \(use auto, cpu, cuda, cuda:N or mps\)$"):
        resolve_device("meta")
    with pytest.raises(ConfigError, match=r"^device='tpu' is not a device name \(use auto, cpu, cuda, cuda:N or"):
        resolve_device("tpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ConfigError, match=r"^device='cuda:3' requested but CUDA is not available on this machine$"):
        resolve_device("cuda:3")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    with pytest.raises(ConfigError, match=r"^device='cuda:3' does not exist: this machine has 2 CUDA device\(s\)$"):
        resolve_device("cuda:3")
    assert resolve_device("CUDA:1") == torch.device("cuda", 1)


@pytest.mark.parametrize(("overrides", "message"), [
    (["trainer.cuda_graphs=yes"], "trainer.cuda_graphs='yes' is invalid: choose auto, true or false"),
    (["trainer.cuda_graphs=true", "trainer.compile=default"],
     "trainer.cuda_graphs=True is invalid: cannot be combined with trainer.compile"),
    (["trainer.cuda_graphs=true", "device=cpu"], "trainer.cuda_graphs=true needs a CUDA device; this run is on cpu"),
])
def test_cuda_graphs_misuse_is_refused(tmp_path: Path, overrides: list[str], message: str) -> None:
    with pytest.raises(ConfigError) as info:
        train(compose_cfg(tmp_path / "no-data-needed", *overrides), tmp_path / "r")
    assert message in str(info.value) and "\n" not in str(info.value)


def test_subset_larger_than_the_dataset(make_resplit, tmp_path: Path) -> None:
    data = make_resplit(n_train=200, n_test=50)
    with pytest.raises(DataError, match=r"subset size 500 is larger than the \d+ available training examples"):
        train(compose_cfg(data.path, "data.subset=500"), tmp_path / "r")


def test_unknown_config_group_option_names_the_choices(tmp_path: Path) -> None:
    proc = run_cli("model=resnet1000", f"hydra.run.dir={tmp_path / 'r'}")
    assert proc.returncode == 1
    assert "Could not find 'model/resnet1000'" in proc.stderr and "resnet18" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_missing_value_on_the_command_line_is_one_line(tmp_path: Path) -> None:
    proc = run_cli("trainer.epochs=???", f"hydra.run.dir={tmp_path / 'r'}", "logger=none")
    assert proc.returncode == 1
    out = proc.stdout + proc.stderr
    assert "error: missing required value(s): trainer.epochs" in out and "Traceback" not in out


@pytest.mark.parametrize("multirun", [False, True])
def test_unwritable_output_folder_is_one_line(tmp_path: Path, multirun: bool) -> None:
    (tmp_path / "a-file").write_text("")
    where = tmp_path / "a-file" / "out"
    key = "hydra.sweep.dir" if multirun else "hydra.run.dir"
    proc = run_cli(*(["-m"] if multirun else []), f"{key}={where}", "logger=none")
    assert proc.returncode == 1
    assert f"error: cannot write the output folder {where}: Not a directory" in proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr


def test_precision_auto_is_bf16_on_cuda_and_autocast_runs_in_the_chosen_dtype() -> None:
    import contextlib

    import torch

    from fmnist.train.device import autocast, resolve_precision

    cpu, cuda, mps = torch.device("cpu"), torch.device("cuda", 0), torch.device("mps")
    assert [resolve_precision("auto", d) for d in (cpu, cuda, mps)] == ["fp32", "bf16", "fp32"]
    assert resolve_precision("fp16", cuda) == "fp16" and resolve_precision("bf16", cpu) == "bf16"
    assert isinstance(autocast(cpu, "fp32"), contextlib.nullcontext)
    for precision, dtype in (("bf16", torch.bfloat16), ("fp16", torch.float16)):
        with autocast(cpu, precision):
            assert torch.is_autocast_enabled("cpu") and torch.get_autocast_dtype("cpu") == dtype


class _Torch25MpsAutocast:
    """torch.autocast as torch 2.5 and 2.6 make it for MPS: float16 only; another dtype warns and turns it off."""

    def __init__(self, device_type: str, dtype) -> None:
        import warnings

        import torch

        self._enabled = dtype == torch.float16
        if not self._enabled:
            warnings.warn("In MPS autocast, but the target dtype is not supported. Disabling autocast.\n"
                          "MPS Autocast only supports dtype of torch.float16 currently.")


def _torch24_autocast(device_type: str, dtype) -> None:
    """torch.autocast as torch 2.3 and 2.4 (which pyproject.toml allows) make it for MPS: no MPS autocast at all."""
    raise RuntimeError(f"User specified an unsupported autocast device_type '{device_type}'")


def test_precision_on_mps_is_refused_where_torch_cannot_autocast_it(monkeypatch: pytest.MonkeyPatch) -> None:
    """bf16 or fp16 on MPS with a torch that cannot autocast it there: one line before training, not a traceback at
    the first batch (torch < 2.5) nor a run that trains in fp32 while its summary says bf16 (torch 2.5, 2.6)."""
    import torch

    from fmnist.train import device
    from fmnist.train.device import resolve_precision

    mps = torch.device("mps")
    monkeypatch.setattr(device, "grad_scaler_refusal", lambda dev: None)  # no MPS tensors here; tested below
    monkeypatch.setattr(device, "dtype_refusal", lambda dev, dtype: None)
    assert resolve_precision("bf16", mps) == "bf16" and resolve_precision("fp16", mps) == "fp16"  # this torch: both
    monkeypatch.setattr(torch, "autocast", _Torch25MpsAutocast)
    assert resolve_precision("fp16", mps) == "fp16" and resolve_precision("auto", mps) == "fp32"
    with pytest.raises(ConfigError, match=r"^trainer.precision=bf16 on MPS: In MPS autocast, but the target dtype is "
                                          r"not supported. Disabling autocast. MPS Autocast only supports dtype of "
                                          r"torch.float16 currently.; use trainer.precision=fp32 \(or a newer "
                                          r"torch or macOS\)$"):
        resolve_precision("bf16", mps)
    monkeypatch.setattr(torch, "autocast", _torch24_autocast)
    with pytest.raises(ConfigError, match=r"^trainer.precision=fp16 on MPS: User specified an unsupported autocast "
                                          r"device_type 'mps'; use trainer.precision=fp32"):
        resolve_precision("fp16", mps)
    assert resolve_precision("bf16", torch.device("cpu")) == "bf16"  # CPU and CUDA: as before, not asked


def test_fp16_on_mps_is_refused_where_the_grad_scaler_cannot_unscale_there(monkeypatch: pytest.MonkeyPatch) -> None:
    """fp16 trains with a GradScaler: where it fails on MPS (torch 2.5), one line before training, not a TypeError
    traceback at the first step. The scaler is tried for real (on the CPU here, where it works)."""
    import torch

    from fmnist.train import device
    from fmnist.train.device import grad_scaler_refusal, resolve_precision

    class Torch25MpsGradScaler(torch.amp.GradScaler):
        """torch 2.5's GradScaler on MPS: unscale_ goes through float64, which MPS lacks (pytorch#142397)."""

        def unscale_(self, optimizer) -> None:
            raise TypeError("Cannot convert a MPS Tensor to float64 dtype as the MPS framework doesn't support "
                            "float64. Please use float32 instead.")

    cpu = torch.device("cpu")
    assert grad_scaler_refusal(cpu) is None
    monkeypatch.setattr(torch.amp, "GradScaler", Torch25MpsGradScaler)
    assert grad_scaler_refusal(cpu) == ("TypeError: Cannot convert a MPS Tensor to float64 dtype as the MPS framework "
                                        "doesn't support float64. Please use float32 instead.")
    monkeypatch.setattr(device, "grad_scaler_refusal", lambda dev: "TypeError: no float64" if dev.type == "mps"
                        else None)
    monkeypatch.setattr(device, "dtype_refusal", lambda dev, dtype: None)
    with pytest.raises(ConfigError, match=r"^trainer.precision=fp16 on MPS: TypeError: no float64; use "
                                          r"trainer.precision=fp32"):
        resolve_precision("fp16", torch.device("mps"))
    assert resolve_precision("bf16", torch.device("mps")) == "bf16"  # bf16 trains without a scaler


def test_bf16_on_an_mps_without_bfloat16_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    """MPS has bfloat16 from macOS 14 on: before, bf16 is one line before training, not a TypeError traceback at
    the first batch. The convolution is tried for real (on the CPU here, where both dtypes work)."""
    import torch

    from fmnist.train import device
    from fmnist.train.device import dtype_refusal, resolve_precision

    assert dtype_refusal(torch.device("cpu"), torch.bfloat16) is None
    real_conv = torch.nn.functional.conv2d

    def macos13_conv(x, w, *args, **kwargs):
        if x.dtype == torch.bfloat16:
            raise TypeError("BFloat16 is not supported on MPS")
        return real_conv(x, w, *args, **kwargs)

    monkeypatch.setattr(torch.nn.functional, "conv2d", macos13_conv)
    assert dtype_refusal(torch.device("cpu"), torch.bfloat16) == "TypeError: BFloat16 is not supported on MPS"
    monkeypatch.setattr(device, "dtype_refusal", lambda dev, dtype: dtype_refusal(torch.device("cpu"), dtype))
    monkeypatch.setattr(device, "grad_scaler_refusal", lambda dev: None)
    with pytest.raises(ConfigError, match=r"^trainer.precision=bf16 on MPS: TypeError: BFloat16 is not supported on "
                                          r"MPS; use trainer.precision=fp32 \(or a newer torch or macOS\)$"):
        resolve_precision("bf16", torch.device("mps"))
    assert resolve_precision("fp16", torch.device("mps")) == "fp16"


def test_compile_on_mps_is_refused_where_torch_cannot_compile_there(monkeypatch: pytest.MonkeyPatch) -> None:
    """trainer.compile on MPS with a torch whose inductor has no MPS backend (before 2.8): one line before training,
    not a traceback at the first step. Asked of torch.compile itself (faked here: no Apple GPU); CPU and CUDA are
    not asked."""
    import torch

    from fmnist.train import device
    from fmnist.train.device import check_compile, compile_failure

    def torch23_compile(fn, mode=None):
        def compiled(*args):
            raise RuntimeError("backend='inductor' raised:\nAssertionError: Device mps not supported\n\n"
                               "Set TORCH_LOGS=\"+dynamo\" and TORCHDYNAMO_VERBOSE=1 for more information")
        return compiled

    monkeypatch.setattr(torch, "compile", torch23_compile)
    failure = compile_failure("default", torch.device("cpu"))
    assert isinstance(failure, RuntimeError) and "Device mps not supported" in str(failure)
    monkeypatch.setattr(device, "compile_failure", lambda mode, dev: failure)
    with pytest.raises(ConfigError, match=r"^trainer.compile=default on MPS: torch.compile fails there \(RuntimeError: "
                                          r"backend='inductor' raised: AssertionError: Device mps not supported\); set "
                                          r"trainer.compile=null \(or use a newer torch\)$"):
        check_compile("default", torch.device("mps"))
    check_compile(None, torch.device("mps"))
    check_compile("default", torch.device("cpu"))  # not asked
    monkeypatch.setattr(device, "compile_failure", lambda mode, dev: None)
    check_compile("reduce-overhead", torch.device("mps"))


def test_the_mps_checks_answer_whatever_torch_raises(monkeypatch: pytest.MonkeyPatch) -> None:
    """A torch that refuses the autocast dtype with a TypeError, or GradScaler's device as it is made: the checks say
    so (one line from resolve_precision), they do not raise themselves."""
    import torch

    from fmnist.train.device import autocast_refusal, grad_scaler_refusal

    def refuse(*args, **kwargs):
        raise TypeError("MPS BFloat16 is only supported on MacOS 14 or newer")

    monkeypatch.setattr(torch, "autocast", refuse)
    assert autocast_refusal("mps", torch.bfloat16) == "MPS BFloat16 is only supported on MacOS 14 or newer"
    monkeypatch.setattr(torch.amp, "GradScaler", refuse)
    assert grad_scaler_refusal(torch.device("cpu")) == "TypeError: MPS BFloat16 is only supported on MacOS 14 or newer"


def test_an_mps_device_other_than_the_first_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    from fmnist.train.device import resolve_device

    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)  # a Mac, faked
    assert resolve_device("mps") == torch.device("mps") and resolve_device("mps:0") == torch.device("mps", 0)
    with pytest.raises(ConfigError, match=r"^device='mps:1' does not exist: a Mac has one MPS device"):
        resolve_device("mps:1")


def test_channels_last_auto_follows_the_device(monkeypatch: pytest.MonkeyPatch) -> None:
    """auto: on for CUDA and for a CPU with oneDNN (faster convolutions there), off on MPS; explicit values win."""
    import torch

    from fmnist.train.device import resolve_channels_last

    cpu, cuda, mps = torch.device("cpu"), torch.device("cuda", 0), torch.device("mps")
    monkeypatch.setattr(torch.backends.mkldnn, "is_available", lambda: True)
    assert resolve_channels_last("auto", cpu) and resolve_channels_last("auto", cuda)
    assert not resolve_channels_last("auto", mps)
    monkeypatch.setattr(torch.backends.mkldnn, "is_available", lambda: False)
    assert not resolve_channels_last("auto", cpu) and resolve_channels_last("auto", cuda)
    assert resolve_channels_last(True, cpu) and resolve_channels_last(True, mps)
    assert not resolve_channels_last(False, cuda)


@pytest.mark.parametrize(("argv", "message"), [
    (["-m", "+experiment=stage2_skip", "--cfg", "job"], "error: --cfg / --info cannot be combined with -m"),
    (["norm=null"], "error: norm=null is not an option of the norm group: choose one of batchnorm, groupnorm, "
                    "layernorm, none (norm=none turns normalisation off)"),
    (["model=5"], "error: model=5 is not an option of the model group: choose one of plain18, "),
    (["norm=NULL"], "error: norm=NULL is not an option of the norm group"),  # Hydra reads NULL as null too
    (["=3"], "error: =3 has no key: write key=value"),
    (["-m", "name=study/a,b"], "error: name=study/a,b: name is part of the output folder's name and cannot contain "
                               "'/'; choose where runs go with hydra.run.dir=..."),  # not outputs/<date>/<time>_study/a
    (["data.dir=~/data/FashionMNIST-Resplit"],  # the shell leaves this ~ as it is: Hydra's lexer error
     "error: data.dir=~/data/FashionMNIST-Resplit: Hydra cannot read this path unquoted; quote it, inside the "
     "shell's quotes: \"data.dir='~/data/FashionMNIST-Resplit'\""),
    (["data.dir=/data/a,b"],  # without -m Hydra answers in five lines ("Ambiguous value ...")
     "error: data.dir=/data/a,b: Hydra reads the ',' as separating several values; for one path quote it, inside the "
     "shell's quotes: \"data.dir='/data/a,b'\"; to sweep over them, add -m"),
    (["-m", "seed=0,1", "data.dir=/home/josé/it's"], "error: data.dir=/home/josé/it's: Hydra cannot read this "
                                                     "path unquoted; quote it, inside the shell's quotes: "
                                                     "\"data.dir='/home/josé/it\\'s'\""),
    (["name=café"],  # not a path, but the same lexer error from Hydra, in five lines
     "error: name=café: Hydra cannot read this value unquoted; quote it, inside the shell's quotes: \"name='café'\""),
    (["-m", "name=café,thé"], "error: name=café,thé: Hydra cannot read this value unquoted; quote it, inside the "
                              "shell's quotes: \"name='café','thé'\""),  # each value: still a sweep over both
    # a key only some of the swept options have: Hydra's error named neither the option nor a fix that works
    (["-m", "model=resnet9,vgg11", "model.skip=false"], "error: model.skip=false: model=vgg11 has no key skip; set "
                                                        "it in a sweep of its own for the model options that have it "
                                                        "(resnet9)"),
    (["-m", "model=glob(*)", "model.skip=false"], "error: model.skip=false: model=vgg11 has no key skip; set it in a "
                                                  "sweep of its own for the model options that have it (plain18, "),
    (["-m", "optimizer=choice(sgd,adam)", "optimizer.momentum=0"], "error: optimizer.momentum=0: optimizer=adam has "
                                                                    "no key momentum"),
    (["model=vgg11", "model.skip=false"], "error: model.skip=false: model=vgg11 has no key skip; python train.py "
                                          "model=vgg11 --cfg job shows its keys"),
])
def test_command_lines_hydra_answers_with_a_traceback_are_one_line(argv: list[str], message: str) -> None:
    """Checked in train.py before Hydra parses anything (Hydra raises ValueError with a stack trace for these)."""
    from fmnist.train.entry import argument_error

    assert argument_error(argv).startswith(message)
    # train.py runs the check: one line, exit status 1, nothing written
    if argv in (["norm=null"], ["-m", "model=resnet9,vgg11", "model.skip=false"]):
        proc = run_cli(*argv)
        assert proc.returncode == 1 and (proc.stdout + proc.stderr).strip() == argument_error(argv)


def test_ordinary_command_lines_pass_the_argument_check() -> None:
    from fmnist.train.entry import argument_error

    for argv in (["norm=none", "--cfg", "job"], ["-m", "seed=0,1", "model.width=16"], ["+experiment=fast"],
                 ["data.dir='~/data'"], ["-m", "data.dir=/a/x,/b/y"], ["hydra.run.dir=/tmp/my run"],
                 ["hydra/launcher=gpu_pool", "hydra.launcher.jobs_per_gpu=4"], ["~trainer.early_stop_patience"],
                 ["name=my-run_2"], ["-m", "model=resnet9,resnet18", "model.skip=false"],
                 ["-m", "model=resnet9,vgg11", "model.width=8"], ["-m", "model=resnet9,vgg11", "++model.skip=false"],
                 ["-m", "model=glob(*,exclude=vgg*)", "model.skip=false"], ["model.skip=false"]):
        assert argument_error(argv) is None, argv
