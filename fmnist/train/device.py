"""Device and precision choice: `device=auto` means cuda > mps > cpu; `precision=auto` means bf16 on CUDA."""

from __future__ import annotations

import contextlib

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
    return precision


def autocast(device: torch.device, precision: str) -> contextlib.AbstractContextManager:
    """The autocast context for a resolved precision (a no-op for fp32)."""
    if precision == "fp32":
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return torch.autocast(device_type=device.type, dtype=dtype)


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
