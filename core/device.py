"""Choosing the device and the fast numeric settings for it."""

from __future__ import annotations

import contextlib
import os

import torch

from . import jobs
from .memory import keep_freed_memory

DEVICES: tuple[str, ...] = ("auto", "cpu", "cuda", "mps")
PRECISIONS: tuple[str, ...] = ("auto", "fp32", "bf16")


class DeviceError(RuntimeError):
    """The requested device is not available on this machine."""


def resolve_device(name: str = "auto") -> torch.device:
    """``auto`` picks CUDA, then Apple's MPS, then the CPU; a named device must exist."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise DeviceError("--device cuda was asked for, but no CUDA GPU is available; use --device cpu")
    if name == "mps" and not torch.backends.mps.is_available():
        raise DeviceError("--device mps was asked for, but Apple's MPS is not available; use --device cpu")
    if name not in DEVICES:
        raise DeviceError(f"unknown device {name!r}; choose one of {', '.join(DEVICES)}")
    return torch.device(name)


def cpu_supports_bf16() -> bool:
    """True when oneDNN has native bf16 kernels on this CPU (AVX-512 BF16 or AMX)."""
    return bool(torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported())


def use_bf16(device: torch.device, precision: str = "auto") -> bool:
    """Whether to train under bf16 autocast: asked for, or ``auto`` on a CPU or GPU with native bf16."""
    if precision != "auto":
        return precision == "bf16"
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    return device.type == "cpu" and cpu_supports_bf16()


def autocast(device: torch.device, enabled: bool) -> contextlib.AbstractContextManager:
    """bf16 autocast on ``device`` when ``enabled``: matrix work in bf16, reductions and the loss in fp32."""
    if not enabled:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=torch.bfloat16)


def configure_for_speed(device: torch.device) -> None:
    """TF32 matrix multiplies on CUDA; on the CPU, freed tensors' memory kept for the next step's
    (:mod:`core.memory`) and one compute thread per core this process may use: its share among the live jobs
    when it is one (:mod:`core.jobs`), or of torchrun's ``LOCAL_WORLD_SIZE`` processes on this machine."""
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        torch.backends.cudnn.benchmark = True
    elif device.type == "cpu":
        keep_freed_memory()
        if jobs.tick() is None and hasattr(os, "sched_getaffinity"):
            sharing = int(os.environ.get("LOCAL_WORLD_SIZE", "1"))
            torch.set_num_threads(max(1, len(os.sched_getaffinity(0)) // sharing))


def fused_adamw(device: torch.device) -> bool | None:
    """Whether AdamW updates all parameters in one fused kernel on ``device`` (the CPU and CUDA have one):
    one pass over the weights instead of about ten small tensor operations per parameter, the same
    update to rounding. None leaves the choice to PyTorch elsewhere."""
    return True if device.type in ("cpu", "cuda") else None


def device_label(device: torch.device, bf16: bool) -> str:
    """A short label such as ``cpu (bf16, 2 threads)`` or ``cuda:NVIDIA H100 (bf16)``."""
    precision = "bf16" if bf16 else "fp32"
    if device.type == "cuda":
        return f"cuda:{torch.cuda.get_device_name(device)} ({precision})"
    if device.type == "cpu":
        return f"cpu ({precision}, {torch.get_num_threads()} threads)"
    return f"{device.type} ({precision})"
