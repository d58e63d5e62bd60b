"""Why the samplers run under ``torch.no_grad()`` and not ``torch.inference_mode()``: milliseconds per DDPM
step of the default network, 64 images, bf16 autocast, both ways, timed in alternation in one process.

Under bf16 autocast every convolution and linear layer needs its fp32 weight as bf16. Autocast keeps
those copies for as long as its block lasts, but not under inference mode, where it casts every weight
again at every call: the default network's 48 layers at each of Phase 3's 1,000 calls.

    .venv/bin/python benchmarks/autocast_cache.py
    .venv/bin/python benchmarks/autocast_cache.py --checkpoint outputs/model_final.pt --repeats 9

Speed does not depend on the weights, so an untrained network of the default size is timed unless a
checkpoint is named. Both ways must give the same images bit for bit, which the script checks.
"""

from __future__ import annotations

import contextlib
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import harness  # benchmarks/ is on the path when a script in it runs
import torch
from rich.console import Console
from rich.table import Table

import core

GradMode = Callable[[], contextlib.AbstractContextManager]
GRAD_MODES: dict[str, GradMode] = {
    "inference_mode": torch.inference_mode,
    "no_grad (the samplers')": torch.no_grad,
}


def ddpm_steps(
    model: torch.nn.Module, schedule: core.NoiseSchedule, x_T: torch.Tensor, steps: int, mode: GradMode
) -> torch.Tensor:
    """The first ``steps`` of DDPM from ``x_T`` inside one autocast block (as ``ddpm-tui sample`` runs them),
    under the grad ``mode``; returns the last x_t."""
    with mode(), core.autocast(x_T.device, True):
        run = core.sample(model, schedule, x_T, "ddpm", generator=torch.Generator().manual_seed(0))
        for step in run:
            if step.index + 1 == steps:
                return step.x.float()
    raise AssertionError("fewer steps than asked for")


def main() -> None:
    parser = harness.parser(__doc__, Path("outputs/records/autocast_cache.jsonl"))
    parser.set_defaults(num_images=64)
    parser.add_argument("--checkpoint", type=Path, help="time this model (default: an untrained default network)")
    parser.add_argument("--steps", type=int, default=40, help="DDPM steps per timing")
    parser.add_argument("--repeats", type=int, default=7, help="report the median of this many timings")
    args = parser.parse_args()
    harness.setup(args)
    if args.checkpoint is not None:
        loaded = core.load_model(args.checkpoint)
        model, schedule = loaded.model.eval(), loaded.schedule
    else:
        config = core.TrainConfig()
        model = core.build_model(config, (1, 28, 28)).eval()
        schedule = core.NoiseSchedule.create(config.schedule, config.timesteps)
    x_T = torch.randn(args.num_images, 1, 28, 28)

    identical = torch.equal(*(ddpm_steps(model, schedule, x_T, args.steps, mode) for mode in GRAD_MODES.values()))
    timings: dict[str, list[float]] = {name: [] for name in GRAD_MODES}
    for _ in range(args.repeats):
        for name, mode in GRAD_MODES.items():
            start = time.perf_counter()
            ddpm_steps(model, schedule, x_T, args.steps, mode)
            timings[name].append((time.perf_counter() - start) / args.steps * 1000)

    table = Table(title=f"ms per DDPM step, {args.num_images} images, bf16, {torch.get_num_threads()} CPU threads")
    for column in ("grad mode", "median", "all timings", "speed-up"):
        table.add_column(column, justify="right")
    baseline = statistics.median(timings["inference_mode"])
    for name, values in timings.items():
        middle = statistics.median(values)
        table.add_row(name, f"{middle:.1f}", " ".join(f"{v:.0f}" for v in values), f"{baseline / middle:.2f}x")
    console = Console(width=120)
    console.print(table)
    console.print(f"same images bit for bit: {identical}")
    figures = {f"ms_per_step_{name.split()[0]}": round(statistics.median(v), 2) for name, v in timings.items()}
    harness.record(args.results, {"config": vars(args), "figures": {**figures, "identical": identical}})


if __name__ == "__main__":
    main()
