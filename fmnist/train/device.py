"""Device and precision choice: `device=auto` means cuda > mps > cpu; `precision=auto` means bf16 on CUDA."""

from __future__ import annotations

import contextlib
import warnings

import torch

from fmnist.errors import ConfigError


def resolve_device(name: str | None) -> torch.device:
    """Turn a config value (auto, cpu, cuda, cuda:1, mps) into an available torch.device."""
    if name is None:  # device=null (str() would make it 'none')
        raise ConfigError("device=null is not a device name (use auto, cpu, cuda, cuda:N or mps)")
    name = str(name).strip().lower()
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except (RuntimeError, ValueError) as exc:
        raise ConfigError(f"device={name!r} is not a device name (use auto, cpu, cuda, cuda:N or mps)") from exc
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(f"device={name!r} requested but CUDA is not available on this machine")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ConfigError(
                f"device={name!r} does not exist: this machine has {torch.cuda.device_count()} CUDA device(s)"
            )
    elif device.type == "mps":
        if not (getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()):
            raise ConfigError(f"device={name!r} requested but MPS is not available on this machine")
        if device.index not in (None, 0):
            raise ConfigError(f"device={name!r} does not exist: a Mac has one MPS device (mps or mps:0)")
    elif device.type != "cpu":
        raise ConfigError(f"device={name!r} is not supported (use auto, cpu, cuda, cuda:N or mps)")
    return device


def resolve_channels_last(setting: bool | str, device: torch.device) -> bool:
    """`auto` turns channels_last on for CUDA and for a CPU with oneDNN (mkldnn), where its convolutions are
    faster (1.3-1.5x per epoch for every model on the 2-core x86 development machine); off on MPS."""
    if setting == "auto":
        return device.type == "cuda" or (device.type == "cpu" and torch.backends.mkldnn.is_available())
    return bool(setting)


def resolve_precision(precision: str, device: torch.device) -> str:
    """`auto` becomes bf16 on CUDA and fp32 elsewhere; explicit choices are checked against the device."""
    if precision == "auto":
        return "bf16" if device.type == "cuda" else "fp32"
    if precision == "fp16" and device.type == "cpu":
        raise ConfigError("trainer.precision=fp16 needs a GPU; use fp32 or bf16 on CPU")
    if precision in _DTYPES and device.type == "mps" and (refusal := _mps_precision_refusal(device, precision)):
        raise ConfigError(f"trainer.precision={precision} on MPS: {refusal}; use trainer.precision=fp32 (or a "
                          "newer torch or macOS)")
    return precision


def _mps_precision_refusal(device: torch.device, precision: str) -> str | None:
    """Why a run in `precision` cannot train on `device` (MPS), asked of torch and the device itself: autocast, a
    convolution in that dtype, and (fp16, which trains with a GradScaler: fmnist/train/run.py) the scaler."""
    dtype = _DTYPES[precision]
    return (autocast_refusal("mps", dtype) or dtype_refusal(device, dtype)
            or (grad_scaler_refusal(device) if precision == "fp16" else None))


_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def autocast_refusal(device_type: str, dtype: torch.dtype) -> str | None:
    """Why this torch cannot autocast `device_type` to `dtype`, else None. Torch answers when the context is made:
    torch < 2.5 has no MPS autocast (RuntimeError: pytorch#88415, added by pytorch#99272), and its first MPS
    autocast took float16 alone (pytorch#139190: a warning, and autocast off, so that the run would train in fp32
    while its summary says bf16)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            context = torch.autocast(device_type=device_type, dtype=dtype)
        except (RuntimeError, TypeError, ValueError) as exc:
            return str(exc)
    if getattr(context, "_enabled", True):
        return None
    return " ".join(str(caught[0].message).split()) if caught else "autocast is off for this dtype"


def dtype_refusal(device: torch.device, dtype: torch.dtype) -> str | None:
    """Why a convolution in `dtype` fails on `device`, else None: MPS has bfloat16 from macOS 14 on only
    (pytorch#119641; before, 'TypeError: MPS BFloat16 is only supported on MacOS 14 or newer' at the first batch)."""
    try:
        x = torch.ones(1, 1, 3, 3, device=device, dtype=dtype)
        torch.nn.functional.conv2d(x, x)
    except (RuntimeError, TypeError) as exc:
        return _one_line(exc)
    return None


def _one_line(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {' '.join(str(exc).split())}"


def grad_scaler_refusal(device: torch.device) -> str | None:
    """Why torch's GradScaler cannot unscale gradients on `device`, else None: tried on one parameter. On MPS, torch
    2.5's GradScaler went through float64, which MPS lacks (pytorch#142397: a TypeError at the first step)."""
    try:
        param = torch.zeros(1, device=device, requires_grad=True)
        optimizer = torch.optim.SGD([param], lr=0.0)
        scaler = torch.amp.GradScaler(device.type)
        scaler.scale(param.sum()).backward()
        scaler.unscale_(optimizer)
    except (RuntimeError, TypeError) as exc:
        return _one_line(exc)
    return None


def check_compile(mode: str | None, device: torch.device) -> None:
    """A ConfigError when trainer.compile=`mode` cannot train on `device`. Asked on MPS only (compile_failure):
    torch's inductor had no MPS backend before 2.8 (pytorch#125254, 'Device mps not supported'), and the run died
    with a traceback at its first step."""
    if mode and device.type == "mps" and (exc := compile_failure(mode, device)) is not None:
        said = " ".join([line.strip() for line in str(exc).splitlines() if line.strip()][:2])
        raise ConfigError(f"trainer.compile={mode} on MPS: torch.compile fails there ({type(exc).__name__}: {said}); "
                          "set trainer.compile=null (or use a newer torch)") from exc


def compile_failure(mode: str, device: torch.device) -> Exception | None:
    """What torch.compile in `mode` raises for one tiny forward and backward on `device`, else None."""
    weight = torch.ones(2, device=device, requires_grad=True)
    step = torch.compile(lambda x: (x * weight).relu().sum(), mode=None if mode == "default" else mode)
    try:
        step(torch.ones(2, device=device)).backward()
    except Exception as exc:
        return exc
    return None


def autocast(device: torch.device, precision: str) -> contextlib.AbstractContextManager:
    """The autocast context for a resolved precision (a no-op for fp32)."""
    if precision == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=_DTYPES[precision])


def device_name(device: torch.device) -> str:
    """A human-readable name of the device (GPU model, or the CPU)."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    if device.type == "mps":
        return "Apple MPS"
    return _cpu_model()


def _cpu_model() -> str:
    import platform

    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "cpu"
