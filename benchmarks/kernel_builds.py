"""The GroupNorm-SiLU kernel of another commit against the work tree's: both built, then timed in turn in one process.

    .venv/bin/python benchmarks/kernel_builds.py --against 7f64bfa
    .venv/bin/python benchmarks/kernel_builds.py --against 7f64bfa --models small base --repeats 20

A change to ``core/kernels/group_norm_silu.c`` worth a few percent of a training step is lost in the noise of whole
runs timed one after the other; timed in one process, the two builds in turn over the same steps, it shows. The
kernel's source at ``--against`` (``git show``) and the work tree's are compiled with the core's flags into a
temporary folder, and the work tree's network calls one build or the other (its Python side serves both while
their C functions keep the same arguments). For each of ``--models`` and each of ``kept_memory.py``'s workloads
(a training step at batches of 32 and 128, a sampling call on 64 images): the median milliseconds of each build
over ``--repeats`` rounds, ``--steps`` steps or calls per timing, and their ratio. One record per model and
workload goes to ``docs/records/speed/kernel_builds.jsonl``.
"""

from __future__ import annotations

import argparse
import ctypes
import tempfile
from pathlib import Path

import harness  # benchmarks/ is on the path when a script in it runs
from kept_memory import WORKLOADS, in_turn_arguments, trainer_step  # training at 32 and 128, a call on 64

import core
from core import fused_norm

RESULTS = harness.RECORDS / "speed" / "kernel_builds.jsonl"
SOURCE = "core/kernels/group_norm_silu.c"


def build(name: str, source: str, folder: Path) -> ctypes.CDLL:
    """The kernel compiled from the C text ``source`` as the core compiles its own; exits where it cannot be."""
    path = folder / f"{name}.c"
    path.write_text(source)
    library = folder / f"{name}.so"
    loaded = fused_norm._load(library) if fused_norm._build(library, path) else None
    if loaded is None:
        raise SystemExit(f"the kernel of {name} did not build here: it needs a C compiler")
    return loaded


def measure(model: str, name: str, builds: dict[str, ctypes.CDLL], args: argparse.Namespace, env: dict) -> None:
    """Time workload ``name`` of :data:`WORKLOADS` for the preset ``model`` with each build in turn; record it."""
    kind, size = WORKLOADS[name]
    with tempfile.TemporaryDirectory() as folder:
        overrides = core.resolve_overrides({"batch_size": size if kind == "train" else 32}, model)
        trainer = core.Trainer(core.TrainConfig(output_dir=folder, guide_at=0.0, **overrides))
        _, step = trainer_step(kind, size, trainer)

        def timed(build: str):
            def run() -> None:
                fused_norm.kernel = lambda: builds[build]  # what GroupNormSiLU calls, looked up at each call
                for _ in range(args.steps):
                    step()

            return run

        seconds = harness.alternating_medians({build: timed(build) for build in builds}, args.repeats, warmup=2)
    ms = {build: round(1000 * seconds[build] / args.steps, 2) for build in builds}
    figures = {"against_ms": ms["against"], "work_tree_ms": ms["work_tree"]}
    figures["speedup"] = round(figures["against_ms"] / figures["work_tree_ms"], 3)
    config = {"model": model, "kind": kind, "size": size, "steps": args.steps, "repeats": args.repeats}
    row = {"part": "kernel_builds", "against": args.against, "workload": name, "config": config}
    harness.record(Path(RESULTS), {**row, "figures": figures}, env)


def main() -> None:
    parser = harness.parser(__doc__)
    parser.add_argument("--against", required=True, help="the commit whose kernel source is timed against the tree's")
    in_turn_arguments(parser, "build")
    args = parser.parse_args()
    env = harness.environment(harness.setup(args))
    against = harness.git("show", f"{args.against}:{SOURCE}")
    if not against:
        raise SystemExit(f"no kernel source at {args.against}: give a commit of this repository that has {SOURCE}")
    with tempfile.TemporaryDirectory() as folder:
        sources = {"against": against, "work_tree": (harness.ROOT / SOURCE).read_text()}
        builds = {name: build(name, source, Path(folder)) for name, source in sources.items()}
        for model in args.models:
            for name in args.workloads:
                measure(model, name, builds, args, env)


if __name__ == "__main__":
    main()
