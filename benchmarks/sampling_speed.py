"""Sampling speed: seconds for 64 images with our DPM-Solver++-20, DDIM-50 and DDPM-1000 samplers, against
diffusers' DPMSolverMultistepScheduler, DDIMScheduler and DDPMScheduler driving a UNet2DModel of the same
blocks, in the same process; one record per sampler goes to ``docs/records/speed/sampling_speed.jsonl``.

    .venv/bin/python benchmarks/sampling_speed.py              # needs: pip install -e '.[bench]'
    .venv/bin/python benchmarks/sampling_speed.py --skip_ddpm  # DDIM only (DDPM-1000 takes minutes on a CPU)

Equal blocks means ours with Ho et al.'s full decoder (``ours``), since diffusers has no lean one, and
self-attention on both sides or on neither, as the default network has; the default network itself, with its
lean decoder, is timed too (``default``). Speed does not depend on the weights, so untrained networks are
timed; each runs in fp32 and under bf16 autocast and the faster is compared.
"""

from __future__ import annotations

import dataclasses
import statistics
import time
from collections.abc import Callable

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


RESULTS = harness.RECORDS / "speed" / "sampling_speed.jsonl"
PRECISIONS = ((False, "fp32"), (True, "bf16"))
SIDES = ("ours", "default", "diffusers")


def warm_up(networks: dict[str, core.UNet], schedule: core.NoiseSchedule, unet, x_T: torch.Tensor) -> None:
    """Build every kernel once (oneDNN's primitives for both precisions, the GroupNorm kernel) before timing."""
    from diffusers import DDIMScheduler

    for bf16, _ in PRECISIONS:
        for _ in range(2):
            for model in networks.values():
                ours(model, schedule, x_T, "ddim", 2, bf16)
            theirs(unet, DDIMScheduler(num_train_timesteps=1000), x_T, 2, bf16)


def best_seconds(figures: dict[str, float]) -> dict[str, float]:
    """Each side's seconds in its faster precision."""
    return {side: min(figures[f"{side}_fp32"], figures[f"{side}_bf16"]) for side in SIDES}


def time_sampler(run: tuple, networks: dict[str, core.UNet], schedule, unet, x_T, repeats: int) -> dict[str, float]:
    """Seconds of each network (and diffusers') in each precision for one of ``main``'s runs, and the speed-ups of
    the best precision of each side: diffusers' over ours at equal blocks, and over the default network."""
    _, sampler, steps, scheduler = run
    figures = {}
    for bf16, precision in PRECISIONS:
        for network, model in networks.items():
            figures[f"{network}_{precision}"] = median(ours, repeats, model, schedule, x_T, sampler, steps, bf16)
        figures[f"diffusers_{precision}"] = median(theirs, repeats, unet, scheduler, x_T, steps or 1000, bf16)
    best = best_seconds(figures)
    figures.update(speed_up=best["diffusers"] / best["ours"], default_speed_up=best["diffusers"] / best["default"])
    return {key: round(value, 3) for key, value in figures.items()}


def main() -> None:
    from diffusers import DDIMScheduler, DDPMScheduler, DPMSolverMultistepScheduler

    parser = harness.parser(__doc__, RESULTS)
    parser.set_defaults(num_images=64)
    parser.add_argument("--skip_ddpm", action="store_true", help="leave out DDPM-1000 (minutes on a CPU)")
    parser.add_argument("--repeats", type=int, default=3, help="report the median of this many timings")
    args = parser.parse_args()
    env = harness.environment(harness.setup(args))
    config = core.TrainConfig()
    decoders = {"ours": "full", "default": config.decoder}
    networks = {
        name: core.build_model(dataclasses.replace(config, decoder=decoder), (1, 28, 28)).eval()
        for name, decoder in decoders.items()
    }
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
    warm_up(networks, schedule, unet, x_T)
    table = Table(title=f"seconds for {args.num_images} MNIST-size images, {torch.get_num_threads()} CPU threads")
    for column in ("sampler", "ours, equal blocks", "diffusers", "speed-up", "the default network", "speed-up"):
        table.add_column(column, justify="right")
    for run in runs:
        figures = time_sampler(run, networks, schedule, unet, x_T, args.repeats)
        config_row = {"num_images": args.num_images, "attention": config.attention, "decoders": decoders}
        harness.record(args.results, {"part": "sampling_speed", "sampler": run[0], "config": config_row,
                                      "figures": figures}, env)  # fmt: skip
        best = best_seconds(figures)
        table.add_row(run[0], f"{best['ours']:.2f}", f"{best['diffusers']:.2f}", f"{figures['speed_up']:.2f}x",
                      f"{best['default']:.2f}", f"{figures['default_speed_up']:.2f}x")  # fmt: skip
    Console(width=160).print(table)


if __name__ == "__main__":
    main()
