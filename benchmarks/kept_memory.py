"""What keeping freed tensor memory in the process (``core.memory``) saves: steps timed with it and with the C
library's own policy, each in processes of its own, in turn.

    .venv/bin/python benchmarks/kept_memory.py                  # needs: pip install -e '.[bench]'
    .venv/bin/python benchmarks/kept_memory.py --workloads train-128 --rounds 5

A process's allocator keeps its policy for life, so every measurement is a fresh process (``--child``) that
makes the trainer of one of :data:`WORKLOADS`, runs ``--warmup`` steps, then times ``--steps`` more and counts
their minor page faults (pages the OS mapped and zeroed on first touch). ``kept`` runs as every ddpm-tui
process does; ``system`` first replaces ``keep_freed_memory`` with a no-op where the core calls it. The two run
in turn for ``--rounds`` rounds, the order swapped each round, so both see the same drift of a shared
machine's speed. One record per workload goes to ``docs/records/speed/kept_memory.jsonl``: each policy's
median ms per step and page faults per step, and their ratio.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import harness  # benchmarks/ is on the path when a script in it runs
import torch
from torch import nn

import core

RESULTS = harness.RECORDS / "speed" / "kept_memory.jsonl"
POLICIES = ("system", "kept")
# name: (what a step is, batch or images); the default network, as `ddpm-tui train` and `sample` run it.
WORKLOADS: dict[str, tuple[str, int]] = {
    "train-32": ("train", 32),
    "train-128": ("train", 128),
    "sample-64": ("sample", 64),
}


def trainer_step(kind: str, size: int, trainer: core.Trainer) -> tuple[nn.Module, Callable[[], object]]:
    """(the network the step runs, the step): a training step at batch ``size``, or one sampling call of the EMA
    network on ``size`` images under the autocast a run uses."""
    if kind == "train":
        x0 = trainer.images_at(torch.arange(size))
        return trainer.model, lambda: trainer.train_step(x0)
    network = trainer.ema.model.eval()
    model = core.noise_predictor(network, trainer.schedule, trainer.config.prediction)
    x, t = torch.randn(size, *trainer.data.image_shape), torch.full((size,), 500)

    @torch.no_grad()
    def call() -> torch.Tensor:
        with core.autocast(trainer.device, trainer.bf16):
            return model(x, t)

    return network, call


def in_turn_arguments(parser: argparse.ArgumentParser, what: str) -> None:
    """The flags of a benchmark that times two ways (``what``) of running :data:`WORKLOADS` in turn in one process:
    ``--models``, ``--workloads``, ``--repeats`` and ``--steps``."""
    parser.add_argument("--models", nargs="+", choices=core.MODEL_PRESETS, default=["small"], help="presets")
    parser.add_argument("--workloads", nargs="+", choices=WORKLOADS, default=list(WORKLOADS))
    parser.add_argument("--repeats", type=int, default=15, help=f"timings of each {what}, taken in turn")
    parser.add_argument("--steps", type=int, default=3, help="steps or calls per timing")


def child(workload: str, policy: str, steps: int, warmup: int) -> None:
    """One measurement in this process: prints ms and page faults per step as JSON."""
    if policy == "system":  # the C library's own policy: the core's calls become no-ops
        core.device.keep_freed_memory = core.jobs.keep_freed_memory = lambda: False
    with tempfile.TemporaryDirectory() as folder:
        kind, size = WORKLOADS[workload]  # on the default network and recipe
        trainer = core.Trainer(core.TrainConfig(output_dir=folder, batch_size=size, guide_at=0.0))
        _, step = trainer_step(kind, size, trainer)
        for _ in range(warmup):
            step()
        faults, start = resource.getrusage(resource.RUSAGE_SELF).ru_minflt, time.perf_counter()
        for _ in range(steps):
            step()
        seconds = time.perf_counter() - start
        faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults
    print(json.dumps({"ms": 1000 * seconds / steps, "faults": faults / steps}))


def measure(workload: str, args: argparse.Namespace) -> dict[str, dict[str, list[float]]]:
    """Every round's ms and faults per step of each policy, from fresh processes run in turn."""
    results: dict[str, dict[str, list[float]]] = {p: {"ms": [], "faults": []} for p in POLICIES}
    for round_ in range(args.rounds):
        for policy in POLICIES if round_ % 2 == 0 else POLICIES[::-1]:
            command = [sys.executable, __file__, "--child", workload, policy, "--steps", str(args.steps)]
            command += ["--warmup", str(args.warmup)]
            run = subprocess.run(command, capture_output=True, text=True, check=True)
            figures = json.loads(run.stdout.strip().splitlines()[-1])
            for key in ("ms", "faults"):
                results[policy][key].append(figures[key])
    return results


def main() -> None:
    parser = harness.parser(__doc__)
    parser.add_argument("--workloads", nargs="+", choices=WORKLOADS, default=list(WORKLOADS))
    parser.add_argument("--rounds", type=int, default=4, help="rounds running each policy once, in turn")
    parser.add_argument("--steps", type=int, default=10, help="steps timed in each process")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps first")
    parser.add_argument("--child", nargs=2, metavar=("WORKLOAD", "POLICY"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child, args.steps, args.warmup)
        return
    env = harness.environment(harness.setup(args))
    for workload in args.workloads:
        results = measure(workload, args)
        figures = {p: {k: round(statistics.median(v), 1) for k, v in results[p].items()} for p in POLICIES}
        figures["speedup"] = round(figures["system"]["ms"] / figures["kept"]["ms"], 2)
        kind, size = WORKLOADS[workload]
        config = {"kind": kind, "size": size, "steps": args.steps, "rounds": args.rounds}
        row = {"part": "kept_memory", "workload": workload, "config": config, "figures": figures}
        harness.record(Path(RESULTS), row, env)


if __name__ == "__main__":
    main()
