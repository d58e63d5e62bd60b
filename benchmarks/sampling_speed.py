"""Sampling speed: seconds for 64 images with our DPM-Solver++-20, DDIM-50 and DDPM-1000 samplers, against
diffusers' DPMSolverMultistepScheduler, DDIMScheduler and DDPMScheduler driving a UNet2DModel of the same
blocks (the default network's, self-attention on both sides or on neither), in the same process; each
sampler's timings are appended to ``--results`` as a record.

    .venv/bin/python benchmarks/sampling_speed.py              # needs: pip install -e '.[bench]'
    .venv/bin/python benchmarks/sampling_speed.py --skip_ddpm  # DDIM only (DDPM-1000 takes minutes on a CPU)

Speed does not depend on the weights, so untrained models of the default size are timed; each side
runs in fp32 and under bf16 autocast and the faster is reported.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from pathlib import Path

import harness  # benchmarks/ is on the path when a script in it runs
import torch
from rich.console import Console
from rich.table import Table

import core


def ours(
    model: core.UNet, schedule: core.NoiseSchedule, x_T: torch.Tensor, sampler: str, steps: int | None, bf16: bool
) -> float:
    start = time.perf_counter()
    with core.autocast(x_T.device, bf16):
        core.last_step(core.sample(model, schedule, x_T, sampler, steps, generator=torch.Generator().manual_seed(0)))
    return time.perf_counter() - start


@torch.no_grad()
def theirs(unet, scheduler, x_T: torch.Tensor, steps: int, bf16: bool) -> float:
    scheduler.set_timesteps(steps)
    x = x_T.clone()
    start = time.perf_counter()
    with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=bf16):
        for t in scheduler.timesteps:
            x = scheduler.step(unet(x, t).sample.float(), t, x).prev_sample
    return time.perf_counter() - start


def median(timed: Callable[..., float], repeats: int, *args) -> float:
    """The median of ``repeats`` calls of ``timed(*args)``, each of which times only its sampling loop."""
    return statistics.median(timed(*args) for _ in range(repeats))


def main() -> None:
    from diffusers import DDIMScheduler, DDPMScheduler, DPMSolverMultistepScheduler

    parser = harness.parser(__doc__, Path("outputs/records/sampling_speed.jsonl"))
    parser.set_defaults(num_images=64)
    parser.add_argument("--skip_ddpm", action="store_true", help="leave out DDPM-1000 (minutes on a CPU)")
    parser.add_argument("--repeats", type=int, default=3, help="report the median of this many timings")
    args = parser.parse_args()
    harness.setup(args)
    config = core.TrainConfig()
    model = core.build_model(config, (1, 28, 28)).eval()
    schedule = core.NoiseSchedule.create(config.schedule, config.timesteps)
    blocks = (config.base_channels, config.channel_mults, config.num_res_blocks, config.attention)
    unet = harness.diffusers_unet((1, 28, 28), *blocks).eval()
    x_T = torch.randn(args.num_images, 1, 28, 28)
    runs = [
        ("DPM-Solver++-20", "dpm++", 20, DPMSolverMultistepScheduler(num_train_timesteps=1000)),
        ("DDIM-50", "ddim", 50, DDIMScheduler(num_train_timesteps=1000)),
    ]
    if not args.skip_ddpm:
        runs.append(("DDPM-1000", "ddpm", None, DDPMScheduler(num_train_timesteps=1000)))

    for bf16 in (False, True):  # build every kernel once (oneDNN's bf16 primitives) before timing
        for _ in range(2):
            ours(model, schedule, x_T, "ddim", 2, bf16)
            theirs(unet, DDIMScheduler(num_train_timesteps=1000), x_T, 2, bf16)
    table = Table(title=f"seconds for {args.num_images} MNIST-size images, {torch.get_num_threads()} CPU threads")
    for column in ("sampler", "ours fp32", "ours bf16", "diffusers fp32", "diffusers bf16", "speed-up (best of each)"):
        table.add_column(column, justify="right")
    for name, sampler, steps, scheduler in runs:
        mine = {bf16: median(ours, args.repeats, model, schedule, x_T, sampler, steps, bf16) for bf16 in (False, True)}
        other = {
            bf16: median(theirs, args.repeats, unet, scheduler, x_T, steps or 1000, bf16) for bf16 in (False, True)
        }
        figures = {"ours_fp32": mine[False], "ours_bf16": mine[True], "diffusers_fp32": other[False]}
        figures.update(diffusers_bf16=other[True], speed_up=min(other.values()) / min(mine.values()))
        row = {"sampler": name, "config": {**vars(args), "attention": config.attention}}
        harness.record(args.results, {**row, "figures": {k: round(v, 3) for k, v in figures.items()}})
        table.add_row(
            name,
            f"{mine[False]:.2f}",
            f"{mine[True]:.2f}",
            f"{other[False]:.2f}",
            f"{other[True]:.2f}",
            f"{min(other.values()) / min(mine.values()):.2f}x",
        )
    Console(width=160).print(table)
    Console(width=160).print(
        f"parameters: ours {core.count_parameters(model):,}, diffusers {sum(p.numel() for p in unet.parameters()):,}"
    )


if __name__ == "__main__":
    main()
