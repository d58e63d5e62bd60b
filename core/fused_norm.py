r"""GroupNorm and the SiLU after it as one CPU kernel for channels-last (NHWC) bf16 activations.

On a CPU with bf16 matrix units, oneDNN's convolutions compute in NHWC order, and PyTorch copies every NCHW
input, and every output's gradient, into that order and back: a tenth of a training step. A network kept in
channels-last order skips the copies, but PyTorch's CPU GroupNorm is several times slower in that order. The
kernel in ``kernels/group_norm_silu.c`` normalises in NHWC order with one running sum per channel, adds a
residual block's time embedding while it sums, applies :math:`\mathrm{SiLU}(z) = z\,\sigma(z)` in the pass
that normalises, and adds the gradient of the block's residual connection in the pass that writes the input's
gradient (:func:`group_norm_silu_and_input`): with it a training step of the default network is 1.4-1.5x
faster and an eager call on 64 images 1.6-1.9x (docs/speed.md).

It is built with the system's C compiler the first time a process asks for it, once per machine and CPU, into
the compile cache (:func:`core.files.compile_cache_dir`). Without a compiler, or on a GPU, or for fp32 or
NCHW tensors, :func:`group_norm_silu` computes the same thing with PyTorch's own operators.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import hashlib
import os
import platform
import shutil
import subprocess
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from .files import compile_cache_dir

SOURCE = Path(__file__).parent / "kernels" / "group_norm_silu.c"
# Tried in turn: vectorised for this CPU with OpenMP threads, in its widest vectors (gcc keeps to 256 bits on
# CPUs with 512-bit ones unless asked: the SiLU pass then took 1.3-1.5x as long, a sampling call 1.06x), then
# without that request (a compiler without the flag), then for any CPU of its kind, then without OpenMP (Apple's
# clang has none: one thread).
FLAG_SETS: tuple[tuple[str, ...], ...] = (
    ("-O3", "-march=native", "-mprefer-vector-width=512", "-ffast-math", "-fopenmp", "-shared", "-fPIC", "-lm"),
    ("-O3", "-march=native", "-ffast-math", "-fopenmp", "-shared", "-fPIC", "-lm"),
    ("-O3", "-ffast-math", "-fopenmp", "-shared", "-fPIC", "-lm"),
    ("-O3", "-ffast-math", "-shared", "-fPIC", "-lm"),
)
_enabled = True


def set_enabled(enabled: bool) -> None:
    """Turn the kernel on or off for this process (off: PyTorch's operators, as on a machine without it)."""
    global _enabled
    _enabled = enabled


def cpu_signature() -> str:
    """What a ``-march=native`` build depends on: the CPU's feature flags on Linux, its name elsewhere."""
    try:
        flags = next(line for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("flags"))
    except (OSError, StopIteration):
        flags = platform.processor()
    return f"{platform.machine()}|{flags}"


def _build(path: Path, source: Path = SOURCE) -> bool:
    """Compile ``source`` (the kernel's, or another version of it) into the shared library ``path`` with the first
    of :data:`FLAG_SETS` that builds; written whole or not at all."""
    compiler = shutil.which(os.environ.get("CC", "cc"))
    if compiler is None:
        return False
    temporary = path.with_name(f".{os.getpid()}.{path.name}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        for flags in FLAG_SETS:
            command = [compiler, str(source), "-o", str(temporary), *flags]
            if subprocess.run(command, capture_output=True, timeout=120).returncode == 0:
                os.replace(temporary, path)
                return True
        return False
    except (OSError, subprocess.SubprocessError):
        return False
    finally:
        with contextlib.suppress(OSError):
            temporary.unlink(missing_ok=True)


def library_path() -> Path:
    """Where the kernel's build lies in the compile cache: named for its source, this CPU and the flags tried, so
    that a change to any of them builds it afresh."""
    key = hashlib.sha256(SOURCE.read_bytes() + f"{cpu_signature()}|{FLAG_SETS}".encode()).hexdigest()[:16]
    return compile_cache_dir() / f"group_norm_silu-{key}.so"


def _load(path: Path) -> ctypes.CDLL | None:
    """The kernel built at ``path``, its two functions' argument types declared, or None where it cannot load."""
    try:
        library = ctypes.CDLL(str(path))
    except OSError:
        return None
    p, n, flag = ctypes.c_void_p, ctypes.c_int64, ctypes.c_int
    library.group_norm_silu_forward.argtypes = [p] * 7 + [n] * 4 + [ctypes.c_float, flag, flag]
    library.group_norm_silu_backward.argtypes = [p] * 12 + [n] * 4 + [flag, flag]
    return library


@functools.cache
def kernel() -> ctypes.CDLL | None:
    """The built kernel (building it on first use), or None where it cannot be built or loaded."""
    path = library_path()
    if not path.exists() and not _build(path):
        return None
    return _load(path)


def channels_last_pays(device: torch.device, bf16: bool) -> bool:
    """Whether a network trained on ``device`` (under bf16 autocast or not) should keep its weights in
    channels-last order: on a CPU in bf16, where the kernel is available."""
    return bf16 and _serves(device)


def serves_eager_calls(device: torch.device | str) -> bool:
    """Whether an eager call of the network on ``device`` under the autocast now in force runs channels-last with
    the kernel: on a CPU under bf16 autocast, where the kernel builds. There an eager call is as fast as the
    compiled package (:mod:`core.compiling`), so ``--compile auto`` stays eager (docs/speed.md)."""
    bf16 = torch.is_autocast_enabled("cpu") and torch.get_autocast_dtype("cpu") == torch.bfloat16
    return channels_last_pays(torch.device(device), bf16)


def _serves(device: torch.device) -> bool:
    """Whether the kernel runs on ``device``: a CPU, the kernel switched on and built."""
    return _enabled and device.type == "cpu" and kernel() is not None


def _pointer(t: torch.Tensor | None) -> int | None:
    """A tensor's address for the kernel, or None (NULL) for a missing optional one."""
    return None if t is None else t.data_ptr()


class GroupNormSiLU(torch.autograd.Function):
    r""":math:`y = \mathrm{SiLU}(\mathrm{GN}(x + s))` (or without the SiLU) for a channels-last bf16 CPU ``x``, fp32
    ``weight`` and ``bias`` and an optional per-image, per-channel ``shift`` :math:`s` of shape (B, C), by the
    kernel; the equations of both passes are in ``kernels/group_norm_silu.c``. With ``passes_input`` it returns
    (y, x), x for the input's other use (a residual connection), whose gradient the backward pass adds to the
    one it computes for x."""

    @staticmethod
    def forward(ctx, x, weight, bias, shift, groups: int, eps: float, silu: bool, passes_input: bool):  # type: ignore[override]
        b, c, h, w = x.shape
        gamma, beta = weight.detach().float().contiguous(), bias.detach().float().contiguous()
        s = None if shift is None else shift.detach().float().contiguous()
        y = torch.empty_like(x, memory_format=torch.channels_last)
        mean, rstd = (x.new_empty(b, groups, dtype=torch.float32) for _ in range(2))
        pointers = [_pointer(t) for t in (x, y, gamma, beta, s, mean, rstd)]
        kernel().group_norm_silu_forward(*pointers, b, h * w, c, groups, eps, silu, torch.get_num_threads())
        ctx.save_for_backward(x, gamma, beta, s, mean, rstd)
        ctx.groups, ctx.silu, ctx.shift_dtype = groups, silu, None if shift is None else shift.dtype
        return (y, x.view_as(x)) if passes_input else y

    @staticmethod
    def backward(ctx, dy: torch.Tensor, dp: torch.Tensor | None = None):  # type: ignore[override]
        x, gamma, beta, s, mean, rstd = ctx.saved_tensors
        b, c, h, w = x.shape
        dy = dy.to(torch.bfloat16).contiguous(memory_format=torch.channels_last)  # autograd never passes None here
        if dp is not None:  # the residual use's gradient, with passes_input
            dp = dp.to(torch.bfloat16).contiguous(memory_format=torch.channels_last)
        dx = torch.empty_like(x, memory_format=torch.channels_last)
        dgamma, dbeta = (x.new_empty(b, c, dtype=torch.float32) for _ in range(2))
        dshift = None if s is None else torch.empty_like(s)
        pointers = [_pointer(t) for t in (x, dy, dp, dx, gamma, beta, s, mean, rstd, dgamma, dbeta, dshift)]
        kernel().group_norm_silu_backward(*pointers, b, h * w, c, ctx.groups, ctx.silu, torch.get_num_threads())
        dshift = None if dshift is None else dshift.to(ctx.shift_dtype)
        return dx, dgamma.sum(0), dbeta.sum(0), dshift, None, None, None, None


def _kernel_takes(x: torch.Tensor) -> bool:
    """Whether ``x`` is an activation the kernel serves in channels-last order: bf16 images on the CPU, outside
    a compiled or exported graph, on a machine where the kernel builds."""
    return x.dtype == torch.bfloat16 and x.dim() == 4 and not torch.compiler.is_compiling() and _serves(x.device)


def to_channels_last(x: torch.Tensor) -> torch.Tensor:
    """``x`` in channels-last order where the kernel serves it, so that every layer after it runs in that order
    (the first convolution's output: the network's weights may be in either order); otherwise ``x`` itself."""
    return x.contiguous(memory_format=torch.channels_last) if _kernel_takes(x) else x


class _ChannelsLastGradient(torch.autograd.Function):
    """The identity, whose backward hands on its gradient in channels-last order."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        return x

    @staticmethod
    def backward(ctx, dy: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        return dy.contiguous(memory_format=torch.channels_last)


def channels_last_gradient(x: torch.Tensor) -> torch.Tensor:
    """``x``, whose gradient reaches the layers before it in channels-last order where the kernel serves ``x``.

    A concatenation's backward hands each input a slice of its gradient: in channels-last order the slice's
    pixels lie ``C_total`` values apart, and PyTorch's nearest-upsampling backward is 4-5x slower on such a
    strided gradient than on a contiguous copy of it (docs/speed.md)."""
    return _ChannelsLastGradient.apply(x) if x.requires_grad and _kernel_takes(x) else x


def _kernel_normalises(norm: nn.GroupNorm, x: torch.Tensor) -> bool:
    """Whether the kernel computes ``norm`` of ``x``: a GroupNorm with weights, ``x`` as :func:`_kernel_takes` it."""
    return norm.weight is not None and x.is_contiguous(memory_format=torch.channels_last) and _kernel_takes(x)


def group_norm_silu(
    norm: nn.GroupNorm, x: torch.Tensor, silu: bool = True, shift: torch.Tensor | None = None
) -> torch.Tensor:
    r""":math:`\mathrm{SiLU}(\mathrm{GN}(x + s))` (``silu``) or :math:`\mathrm{GN}(x + s)`, with ``shift`` :math:`s`
    (B, C) added to every pixel of its image's channel (none: :math:`s = 0`): by the kernel for a channels-last bf16
    CPU tensor outside a compiled graph, otherwise by ``norm`` and ``F.silu``."""
    if _kernel_normalises(norm, x):
        return GroupNormSiLU.apply(x, norm.weight, norm.bias, shift, norm.num_groups, norm.eps, silu, False)
    y = norm(x if shift is None else x + shift[:, :, None, None])
    return F.silu(y) if silu else y


def group_norm_silu_and_input(
    norm: nn.GroupNorm, x: torch.Tensor, silu: bool = True
) -> tuple[torch.Tensor, torch.Tensor]:
    r"""(:math:`\mathrm{SiLU}(\mathrm{GN}(x))` or :math:`\mathrm{GN}(x)`, x), the second for a residual connection's
    other use of x.

    x's gradient is the sum of the gradients of both uses. Where the kernel normalises x, its backward pass adds
    the second use's gradient into the one it writes, instead of autograd adding them in a pass of its own over
    the whole tensor; elsewhere the second is x itself."""
    if _kernel_normalises(norm, x):
        return GroupNormSiLU.apply(x, norm.weight, norm.bias, None, norm.num_groups, norm.eps, silu, True)
    return group_norm_silu(norm, x, silu), x
