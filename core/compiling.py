"""Compiling the network for sampling: ahead of time, once per machine, with a fallback when it cannot be done.

AOTInductor (``torch.export`` traces the U-Net, inductor writes fused C++ loops for it and builds them into a
shared library, packed in a ``.pt2`` file) runs a call of the default network on 64 images about 1.9x faster than
eager on a 2-core CPU: it turns each GroupNorm, the SiLU after it and autocast's cast to bf16 for the next
convolution into one pass over memory instead of three (docs/speed.md). Building a package takes under a minute;
loading one takes milliseconds. A package holds the network's layers, not its weights (they are loaded into it), so
one package serves every checkpoint of the same architecture, and the default network can be compiled before it
is trained: ``ddpm-tui compile``, as ``make run`` does on set-up. Once this machine has a network's package,
``auto`` runs every sampling run of it compiled but the shortest; without one, it builds one only for a run long
enough to pay for it. Packages live in the user's cache folder: "once" means once per machine.

The 1.9x is against eager calls in NCHW order. Where :mod:`core.fused_norm`'s GroupNorm kernel serves eager bf16
calls on a CPU, they run channels-last and are as fast as the package (0.93-0.97x of eager, docs/speed.md), so
``auto`` stays eager there and ``ddpm-tui compile`` builds nothing; ``--compile on`` still runs the package.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import sys
from pathlib import Path

import torch
from torch import nn

from .files import compile_cache_dir
from .fused_norm import serves_eager_calls
from .objective import NoiseFromVelocity

COMPILE_MODES: tuple[str, ...] = ("auto", "on", "off")
# auto runs a network compiled when this machine has its package and the run has at least this many image-calls
# (network calls x images): a process loads a package once, in milliseconds, and a run loads its weights into it in
# about 2 ms, while a call saves about 0.4 ms an image. So even 5 calls on 4 images ran 1.7x faster (33 against
# 57 ms), and a trainer's preview (10 calls on 64 images) 1.6x (0.43 against 0.68 s); only a call or two on a few
# images stays eager.
AUTO_MIN_IMAGE_CALLS = 20
# ... and builds a missing package only for a run this long: building takes 40-50 s on 2 cores, which a run
# repays from about 100,000 image-calls (Phase 3, DDPM's 1,000 calls on 64 images, does not); twice that leaves
# room for a slower compiler.
AUTO_MIN_IMAGE_CALLS_COLD = 200_000
# The smallest batch a package takes: the export leaves the batch size free from two images on (one it would
# fix), so one package serves every number of images; a call on one image runs eagerly.
MIN_BATCH = 2
PACKAGE_SUFFIX = ".pt2"


def _unet(network: nn.Module) -> nn.Module:
    """The network a package compiles: the U-Net itself, without the v-to-noise wrapper around it, whose few
    operations on the schedule run as they are."""
    return network.network if isinstance(network, NoiseFromVelocity) else network


def network_key(network: nn.Module) -> str:
    """A name for what a package depends on: the U-Net's layers and shapes (its ``repr``, not its weights,
    which are loaded into the package) and the torch version."""
    return hashlib.sha256(f"{torch.__version__}\n{_unet(network)!r}".encode()).hexdigest()[:16]


def package_path(key: str, args: tuple[torch.Tensor, ...]) -> Path:
    """The package of the network of :func:`network_key` ``key`` for calls like ``args`` (their dtypes and sizes
    but the batch's) under the autocast now in force (a bf16 package differs from an fp32 one)."""
    autocast = torch.get_autocast_dtype("cpu") if torch.is_autocast_enabled("cpu") else None
    signature = f"{autocast}|" + ";".join(f"{arg.dtype}{tuple(arg.shape[1:])}" for arg in args)
    calls = hashlib.sha256(signature.encode()).hexdigest()[:8]
    return compile_cache_dir() / f"{key}-{calls}{PACKAGE_SUFFIX}"


def is_cached(network: nn.Module) -> bool:
    """Whether this machine has a package of a network like ``network`` (for some precision and labels)."""
    return any(compile_cache_dir().glob(f"{network_key(network)}-*{PACKAGE_SUFFIX}"))


def check_compile_mode(mode: str) -> None:
    """``ValueError`` unless ``mode`` is one of :data:`COMPILE_MODES`."""
    if mode not in COMPILE_MODES:
        raise ValueError(f"unknown compile mode {mode!r}; choose one of {', '.join(COMPILE_MODES)}")


def compile_pays(device: torch.device | str, calls: int, images: int, mode: str = "auto", cached: bool = True) -> bool:
    """Whether to run ``calls`` network calls on ``images`` images compiled: always for ``"on"``, never for
    ``"off"``. ``"auto"`` does on the CPU a run of ``calls * images`` of at least :data:`AUTO_MIN_IMAGE_CALLS`
    if the network's package is ``cached`` (see :func:`is_cached`), and of :data:`AUTO_MIN_IMAGE_CALLS_COLD`
    if not and a C++ compiler is installed (building needs one). GPUs stay eager under ``auto``: there a call
    is already short, and these figures were measured on CPUs. So do CPU calls under bf16 autocast where the
    GroupNorm kernel serves them (:func:`core.fused_norm.serves_eager_calls`): there eager channels-last calls are
    as fast as the package. ``ValueError`` for an unknown mode."""
    check_compile_mode(mode)
    if mode != "auto":
        return mode == "on"
    if torch.device(device).type != "cpu" or serves_eager_calls(device):
        return False
    if cached:
        return calls * images >= AUTO_MIN_IMAGE_CALLS
    has_compiler = shutil.which(os.environ.get("CXX", "clang++" if sys.platform == "darwin" else "g++")) is not None
    return has_compiler and calls * images >= AUTO_MIN_IMAGE_CALLS_COLD


def should_compile(network: nn.Module, device: torch.device | str, calls: int, images: int, mode: str) -> bool:
    """Whether a run of ``calls`` network calls on ``images`` images runs ``network`` compiled: as
    :func:`compile_pays` says for a network like it with a package on this machine or without."""
    return compile_pays(device, calls, images, mode, is_cached(network))


def build_package(network: nn.Module, args: tuple[torch.Tensor, ...], path: Path) -> None:
    """Export ``network`` (a U-Net) for calls like ``args`` with the batch size left free, and build its package
    at ``path`` under the autocast in force: written whole or not at all. Raises whatever stops the build (no C++
    compiler, an operator inductor cannot lower)."""
    import torch._inductor  # seconds to import: only where a package is built

    # inductor's C++ build looks for CUDA even for CPU code and warns when it is missing: not the learner's concern
    logging.getLogger("torch.utils.cpp_extension").setLevel(logging.ERROR)
    batch = torch.export.Dim("batch", min=MIN_BATCH)
    program = torch.export.export(network, args, dynamic_shapes=tuple({0: batch} for _ in args), strict=False)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{os.getpid()}.{path.name}")
    try:
        torch._inductor.aoti_compile_and_package(program, package_path=str(temporary))
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def load_package(path: Path) -> torch._C._aoti.AOTIModelPackageLoader:
    """The compiled network in the package at ``path``, without its weights (see :meth:`CompiledNetwork.weigh`).
    PyTorch's own loader, as ``torch._inductor.aoti_load_package`` uses it, without importing inductor."""
    return torch._C._aoti.AOTIModelPackageLoader(str(path), "model", False, 1, -1)


class CompiledNetwork:
    """``network`` run through its AOTInductor package, with the eager network as the fallback: calls on the CPU
    of two images or more run the package of their kind (loaded once; built first when ``may_build`` and
    missing), every other call runs eagerly, and should building or loading fail (no C++ compiler, an operator
    inductor cannot lower), the error's first line is kept in ``error`` and every call from then on runs eagerly,
    so a run never fails for want of speed. Attributes the samplers read (``num_classes``, ``null_class``) come
    from ``network``."""

    def __init__(self, network: nn.Module) -> None:
        os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", str(compile_cache_dir()))
        self.network, self.unet, self.key = network, _unet(network), network_key(network)
        self.may_build, self.stale = False, True
        self.error: str | None = None
        self.runners: dict[Path, torch._C._aoti.AOTIModelPackageLoader] = {}
        self.absent: set[Path] = set()  # packages this run found missing and may not build: looked up once a run
        wrapped = self.network is not self.unet
        self.predict = NoiseFromVelocity(self._run_unet, network.schedule) if wrapped else self._run_unet

    def __call__(self, *args: torch.Tensor) -> torch.Tensor:
        return self.predict(*args)

    def __getattr__(self, name: str):
        if name.startswith("__") or "network" not in self.__dict__:
            raise AttributeError(name)
        return getattr(self.network, name)

    def __deepcopy__(self, memo: dict) -> None:
        """A copy of the network (the trainer's EMA and guide snapshots) is another network: it compiles on its
        own, and loaded packages are not copied."""
        return None

    def _run_unet(self, *args: torch.Tensor) -> torch.Tensor:
        runner = self._runner(args)
        if runner is None:
            return self.unet(*args)
        return runner.run(list(args))[0]

    def _runner(self, args: tuple[torch.Tensor, ...]) -> torch._C._aoti.AOTIModelPackageLoader | None:
        """The loaded package for calls like ``args`` with this network's current weights, or None to run
        eagerly."""
        if self.error is not None or args[0].device.type != "cpu" or args[0].shape[0] < MIN_BATCH:
            return None
        path = package_path(self.key, args)
        if path in self.absent:
            return None
        if path not in self.runners:
            if not (self.may_build or path.exists()):
                self.absent.add(path)
                return None
            try:
                if not path.exists():
                    build_package(self.unet, args, path)
                self.runners[path], self.stale = load_package(path), True
            except Exception as err:  # any failure to build or load; the eager call re-raises a real bug
                self.error = (str(err).strip().splitlines() or [type(err).__name__])[0]
                return None
        if self.stale:
            self.weigh()
        return self.runners[path]

    def renew(self, may_build: bool) -> None:
        """Start a new run: its weights are loaded at its first call, and missing packages looked up again (or
        built, if ``may_build``)."""
        self.may_build |= may_build
        self.stale = True
        self.absent.clear()

    def weigh(self) -> None:
        """Load the network's current weights into every package loaded (copied: a trainer's preview network
        changes between epochs, and :func:`compiled` marks them stale at every run)."""
        state = {**dict(self.unet.named_parameters()), **dict(self.unet.named_buffers())}
        for runner in self.runners.values():
            runner.load_constants({name: state[name].detach() for name in runner.get_constant_fqns()}, False, True)
        self.stale = False


def compile_error(network: nn.Module) -> str | None:
    """Why compiling ``network`` failed in this process (its calls then ran eagerly), or None."""
    done = getattr(network, "_compiled", None)
    return None if done is None else done.error


def compiled(network: nn.Module, may_build: bool = False) -> CompiledNetwork:
    """The one :class:`CompiledNetwork` of ``network`` in this process (kept on the network itself), so that
    batch after batch and screen after screen reuse its loaded packages; ``may_build`` lets it build a missing
    one. Its weights are loaded afresh at its next call."""
    if getattr(network, "_compiled", None) is None:
        network._compiled = CompiledNetwork(network)
    network._compiled.renew(may_build)
    return network._compiled
