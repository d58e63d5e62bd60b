"""How much faster than diffusers a training step at equal blocks could be: each side's convolutions, timed.

    .venv/bin/python benchmarks/training_floor.py                   # needs: pip install -e '.[bench]'
    .venv/bin/python benchmarks/training_floor.py --steps 20 --repeats 10
    .venv/bin/python benchmarks/training_floor.py --setups small-128 base-32 --steps 5 --repeats 3

Both sides train the same blocks (ours with Ho et al.'s decoder, ``--decoder full``; diffusers' ``UNet2DModel``
from ``harness.diffusers_unet``) on the same batch under bf16 autocast, as ``benchmarks/train_throughput.py
--diffusers`` does. Each of ``--setups`` is a model preset and a batch size (:data:`SETUPS`): the default
network's blocks without self-attention on either side at batches of 32 and 128, and ``base`` with
self-attention at the lowest resolution on both. For each: the median step over ``--repeats`` rounds that
time the two in turn, and, under PyTorch's profiler, the share of the step its convolutions take (forward and
backward: oneDNN's ``mkldnn_convolution`` and ``convolution_backward``, self time). The same convolutions run
on both sides, so a step can be at most ``diffusers' step / our convolutions`` times faster than diffusers'
without changing the network's arithmetic: the ceiling that fusing GroupNorm, SiLU and copies can approach.

One record per side goes to ``docs/records/speed/training_floor.jsonl``.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path
from typing import Any

import harness  # benchmarks/ is on the path when a script in it runs
import torch
from torch.profiler import ProfilerActivity, profile
from train_throughput import diffusers_step

import core

RESULTS = harness.RECORDS / "speed" / "training_floor.jsonl"
CONVOLUTIONS = ("aten::mkldnn_convolution", "aten::convolution_backward")
# name: (model preset, batch size); every one with Ho et al.'s decoder, the one diffusers' UNet2DModel has.
SETUPS: dict[str, tuple[str, int]] = {"small-32": ("small", 32), "small-128": ("small", 128), "base-32": ("base", 32)}


def convolution_share(step, steps: int) -> float:
    """The share of ``steps`` profiled steps' self CPU time that :data:`CONVOLUTIONS` take."""
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(steps):
            step()
    events = [e for e in prof.key_averages() if not e.key.startswith("ProfilerStep")]
    total = sum(e.self_cpu_time_total for e in events)
    return sum(e.self_cpu_time_total for e in events if e.key in CONVOLUTIONS) / total


def measure(setup: str, args: argparse.Namespace, env: dict[str, Any]) -> None:
    """Time ours and diffusers' steps of ``setup`` in turn, profile each, and record both sides."""
    model, batch_size = SETUPS[setup]
    with tempfile.TemporaryDirectory() as folder:
        overrides = core.resolve_overrides({"decoder": "full", "batch_size": batch_size}, model)
        config = core.TrainConfig(output_dir=folder, guide_at=0.0, **overrides)
        trainer = core.Trainer(config)  # our step: Muon and AdamW, the EMA update included
        x0 = trainer.images_at(torch.arange(config.batch_size))
        sides = {"ours": lambda: trainer.train_step(x0), "diffusers": diffusers_step(config, "bf16", x0)[0]}
        steps = {name: lambda s=step: [s() for _ in range(args.steps)] for name, step in sides.items()}
        seconds = harness.alternating_medians(steps, args.repeats, warmup=1)
        shares = {name: convolution_share(step, args.steps) for name, step in sides.items()}
    step_ms = {name: 1000 * seconds[name] / args.steps for name in sides}
    for name in sides:
        figures = {
            "step_ms": round(step_ms[name], 1),
            "convolution_share": round(shares[name], 3),
            "convolution_ms": round(step_ms[name] * shares[name], 1),
            "images_per_s": round(config.batch_size * 1000 / step_ms[name], 1),
        }
        if name == "ours":
            figures["ceiling_over_diffusers"] = round(step_ms["diffusers"] / figures["convolution_ms"], 2)
            figures["now_over_diffusers"] = round(step_ms["diffusers"] / step_ms["ours"], 2)
        settings = {"batch_size": batch_size, "decoder": "full", "model": model, "attention": config.attention}
        row = {"part": "training_floor", "side": name, "setup": setup, "config": settings}
        harness.record(Path(RESULTS), {**row, "figures": figures}, env)


def main() -> None:
    parser = harness.parser(__doc__)
    parser.add_argument("--steps", type=int, default=10, help="steps per timing and per profile")
    parser.add_argument("--repeats", type=int, default=5, help="rounds timing both sides in turn")
    parser.add_argument("--setups", nargs="+", choices=SETUPS, default=["small-32"], help="networks and batches")
    args = parser.parse_args()
    env = harness.environment(harness.setup(args))
    for setup in args.setups:
        measure(setup, args, env)


if __name__ == "__main__":
    main()
