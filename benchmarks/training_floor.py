"""How much faster than diffusers a training step at equal blocks could be: each side's convolutions, timed.

    .venv/bin/python benchmarks/training_floor.py                   # needs: pip install -e '.[bench]'
    .venv/bin/python benchmarks/training_floor.py --steps 20 --repeats 10

Both sides train the same blocks (ours with Ho et al.'s decoder, ``--decoder full``; diffusers' ``UNet2DModel``
from ``harness.diffusers_unet``, no self-attention on either) on the same batch of 32 under bf16 autocast, as
``benchmarks/train_throughput.py --diffusers`` does. For each: the median step over ``--repeats`` rounds that
time the two in turn, and, under PyTorch's profiler, the share of the step its convolutions take (forward and
backward: oneDNN's ``mkldnn_convolution`` and ``convolution_backward``, self time). The same convolutions run
on both sides, so a step can be at most ``diffusers' step / our convolutions`` times faster than diffusers'
without changing the network's arithmetic: the ceiling that fusing GroupNorm, SiLU and copies can approach.

One record per side goes to ``docs/records/speed/training_floor.jsonl``.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import harness  # benchmarks/ is on the path when a script in it runs
import torch
from torch.profiler import ProfilerActivity, profile
from train_throughput import diffusers_step

import core

RESULTS = harness.RECORDS / "speed" / "training_floor.jsonl"
CONVOLUTIONS = ("aten::mkldnn_convolution", "aten::convolution_backward")


def convolution_share(step, steps: int) -> float:
    """The share of ``steps`` profiled steps' self CPU time that :data:`CONVOLUTIONS` take."""
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(steps):
            step()
    events = [e for e in prof.key_averages() if not e.key.startswith("ProfilerStep")]
    total = sum(e.self_cpu_time_total for e in events)
    return sum(e.self_cpu_time_total for e in events if e.key in CONVOLUTIONS) / total


def main() -> None:
    parser = harness.parser(__doc__)
    parser.add_argument("--steps", type=int, default=10, help="steps per timing and per profile")
    parser.add_argument("--repeats", type=int, default=5, help="rounds timing both sides in turn")
    args = parser.parse_args()
    env = harness.environment(harness.setup(args))
    with tempfile.TemporaryDirectory() as folder:
        config = core.TrainConfig(output_dir=folder, guide_at=0.0, decoder="full", attention="none")
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
        row = {"part": "training_floor", "side": name, "config": {"batch_size": config.batch_size, "decoder": "full"}}
        harness.record(Path(RESULTS), {**row, "figures": figures}, env)


if __name__ == "__main__":
    main()
