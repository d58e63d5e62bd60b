"""Compiling the network for long sampling runs: when it pays, and a fallback when it cannot be done.

``torch.compile`` (TorchDynamo traces the network, inductor writes fused C++ loops for it) runs a call of
the default network on 64 images 1.7-1.8x faster on a 2-core CPU: it turns each GroupNorm, the SiLU after
it and autocast's cast to bf16 for the next convolution into one pass over memory instead of three
(docs/speed.md). Compiling costs time: under a minute the first time, a few seconds once the cache on disk
holds the graph. So ``auto`` compiles long runs, DDPM's 1,000 steps on 16 images or more, once this machine
has compiled the network (``ddpm-tui compile`` ahead, as ``make run`` does on set-up, or ``--compile on`` the
first time), and a run long enough to pay for the first compile too in any case. The cache lives in the
user's cache folder: "once" means once per machine.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import sys
from pathlib import Path

import torch
from torch import nn

COMPILE_MODES: tuple[str, ...] = ("auto", "on", "off")
# auto compiles a run of at least this many image-calls (network calls x images) once this machine has compiled
# the network before (its cache then loads in seconds): DDPM's 1,000 calls on 16 images. A call saves about
# 0.45 ms an image on 2 cores (63 against 34 ms for 64 images), so the seconds of loading pay for themselves.
AUTO_MIN_IMAGE_CALLS = 16_000
# ... and without a cached compile, only a run this long: the first compile makes Phase 3 (DDPM's 1,000 calls on
# 64 images) slower, 91 s against 79 s eager (docs/phase3-speed.md), and pays from about 100,000 image-calls;
# twice that leaves room for a slower compiler.
AUTO_MIN_IMAGE_CALLS_COLD = 200_000
CACHED_LIST = "ddpm-tui-networks.json"


def compile_cache_dir() -> Path:
    """Where inductor keeps its compiled graphs: ``$TORCHINDUCTOR_CACHE_DIR`` when set, otherwise
    ``ddpm-tui/compiled`` in the user's cache folder (``$XDG_CACHE_HOME`` or ``~/.cache``), which outlives
    a reboot, unlike inductor's own default under /tmp."""
    if "TORCHINDUCTOR_CACHE_DIR" in os.environ:
        return Path(os.environ["TORCHINDUCTOR_CACHE_DIR"])
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "ddpm-tui" / "compiled"


def network_key(network: nn.Module) -> str:
    """A name for what a compile depends on: the network's layers and shapes (its ``repr``, not its weights,
    which the compiled code takes as inputs) and the torch version."""
    return hashlib.sha256(f"{torch.__version__}\n{network!r}".encode()).hexdigest()[:16]


def _cached_keys() -> list[str]:
    try:
        keys = json.loads((compile_cache_dir() / CACHED_LIST).read_text())
    except (OSError, json.JSONDecodeError):
        return []
    return keys if isinstance(keys, list) else []


def is_cached(network: nn.Module) -> bool:
    """Whether this machine has compiled a network like ``network`` before, so its cache loads in seconds."""
    return network_key(network) in _cached_keys()


def _remember(network: nn.Module) -> None:
    """Add ``network`` to the list of compiled networks beside the cache (replaced whole, never half-written)."""
    folder = compile_cache_dir()
    keys = sorted({*_cached_keys(), network_key(network)})
    with contextlib.suppress(OSError):  # a read-only cache folder only costs the next run its shortcut
        folder.mkdir(parents=True, exist_ok=True)
        temporary = folder / f".{CACHED_LIST}.{os.getpid()}"
        temporary.write_text(json.dumps(keys))
        os.replace(temporary, folder / CACHED_LIST)


def check_compile_mode(mode: str) -> None:
    """``ValueError`` unless ``mode`` is one of :data:`COMPILE_MODES`."""
    if mode not in COMPILE_MODES:
        raise ValueError(f"unknown compile mode {mode!r}; choose one of {', '.join(COMPILE_MODES)}")


def compile_pays(device: torch.device | str, calls: int, images: int, mode: str = "auto", cached: bool = True) -> bool:
    """Whether to compile the network for ``calls`` network calls on ``images`` images: always for ``"on"``,
    never for ``"off"``. ``"auto"`` compiles on the CPU, when a C++ compiler is installed (inductor needs one),
    a run of ``calls * images`` of at least :data:`AUTO_MIN_IMAGE_CALLS` if the network is ``cached`` (see
    :func:`is_cached`), and of :data:`AUTO_MIN_IMAGE_CALLS_COLD` if not. GPUs stay eager under ``auto``: there
    a call is already short, and these figures were measured on CPUs. ``ValueError`` for an unknown mode."""
    check_compile_mode(mode)
    if mode != "auto":
        return mode == "on"
    has_compiler = shutil.which(os.environ.get("CXX", "clang++" if sys.platform == "darwin" else "g++")) is not None
    enough = calls * images >= (AUTO_MIN_IMAGE_CALLS if cached else AUTO_MIN_IMAGE_CALLS_COLD)
    return torch.device(device).type == "cpu" and has_compiler and enough


def should_compile(network: nn.Module, device: torch.device | str, calls: int, images: int, mode: str) -> bool:
    """Whether a run of ``calls`` network calls on ``images`` images compiles ``network``: as
    :func:`compile_pays` says for a network like it cached or not, and under ``"auto"`` also every run of a
    network this process has already compiled, which costs nothing more (the app's next sample, eval's
    next batch)."""
    done = getattr(network, "_compiled", None)
    if mode == "auto" and done is not None and done.ready:
        return True
    return compile_pays(device, calls, images, mode, is_cached(network))


class CompiledNetwork:
    """``network`` run through ``torch.compile``, with the eager network as the fallback: should compiling
    fail (no C++ compiler, an operator inductor cannot lower), the error's first line is kept in ``error``
    and every call, that one included, runs eagerly, so a run never fails for want of speed. The batch size
    is left free (``mark_dynamic``), so one compile serves every number of images. Attributes the samplers
    read (``num_classes``, ``null_class``) come from ``network``."""

    def __init__(self, network: nn.Module) -> None:
        os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", str(compile_cache_dir()))
        # inductor's C++ build looks for CUDA even for CPU code and warns when it is missing: not the learner's concern
        logging.getLogger("torch.utils.cpp_extension").setLevel(logging.ERROR)
        self.network = network
        self.fast = torch.compile(network, dynamic=False)
        self.error: str | None = None
        self.ready = False

    def __call__(self, *args: torch.Tensor) -> torch.Tensor:
        if self.error is None:
            for tensor in args:
                torch._dynamo.maybe_mark_dynamic(tensor, 0)
            try:
                out = self.fast(*args)
            except Exception as err:  # any failure to compile; the eager call below re-raises a real bug
                self.error = (str(err).strip().splitlines() or [type(err).__name__])[0]
            else:
                if not self.ready:
                    self.ready = True
                    _remember(self.network)
                return out
        return self.network(*args)

    def __getattr__(self, name: str):
        return getattr(self.network, name)


def compile_error(network: nn.Module) -> str | None:
    """Why compiling ``network`` failed in this process (its calls then ran eagerly), or None."""
    done = getattr(network, "_compiled", None)
    return None if done is None else done.error


def compiled(network: nn.Module) -> CompiledNetwork:
    """The one :class:`CompiledNetwork` of ``network`` in this process (kept on the network itself), so that
    batch after batch and screen after screen reuse its compiled graphs instead of tracing them again."""
    if getattr(network, "_compiled", None) is None:
        network._compiled = CompiledNetwork(network)
    return network._compiled
