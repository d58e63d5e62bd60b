"""``ddpm-tui visualize``: images dissolving into noise (the forward process), and the schedule's numbers."""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

import core

from ..console import console, table
from ..flags import add_flag, bounded

NAME = "visualize"
HELP = "show images dissolving into noise (the forward process)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_flag(
        parser,
        "num_images",
        type=bounded(int, 1, "must be a positive integer"),
        default=8,
        help=f"images (rows) to show, at most {core.MAX_FORWARD_ROWS}",
    )
    add_flag(parser, "dataset", choices=core.DATASETS, default="mnist")
    add_flag(
        parser,
        "timesteps",
        type=bounded(int, 2, "must be at least 2"),
        default=1000,
        help="T, the number of diffusion steps",
    )
    add_flag(
        parser,
        "schedule",
        choices=core.SCHEDULES,
        default=core.TrainConfig().schedule,
        help="the noise schedule (default: the one training uses)",
    )
    add_flag(parser, "output", type=Path, default=Path("outputs/forward_diffusion.png"))
    add_flag(parser, "seed", type=int, default=0)


def run(args: argparse.Namespace) -> int:
    """Forward diffusion: a grid of images at increasing t, the schedule's plot and its numbers."""
    schedule = core.NoiseSchedule.create(args.schedule, args.timesteps)
    data = core.load_dataset(args.dataset, "train")
    x0, noise = core.forward_examples(data, args.num_images, torch.Generator().manual_seed(args.seed))
    steps = core.display_timesteps(args.timesteps)
    rows = torch.stack([schedule.q_sample(x0, torch.full((len(x0),), t), noise) for t in steps], dim=1)
    alpha_bars = [schedule.alpha_bars[t].item() for t in steps]
    grid_path = core.plot_forward_grid(rows, steps, alpha_bars, args.output)
    plot_path = core.plot_schedule(
        schedule.betas.numpy(), schedule.alpha_bars.numpy(), schedule.name, args.output.parent / "noise_schedule.png"
    )

    t_table = table(
        "t",
        "beta_t",
        "alpha_bar_t",
        "signal scale sqrt(alpha_bar_t)",
        "noise scale sqrt(1-alpha_bar_t)",
        title=f"{schedule.name} schedule, T = {args.timesteps}: x_t = signal * x_0 + noise * eps",
    )
    for t in steps:
        t_table.add_row(
            str(t),
            f"{schedule.betas[t]:.5f}",
            f"{schedule.alpha_bars[t]:.4f}",
            f"{schedule.sqrt_alpha_bars[t]:.4f}",
            f"{schedule.sqrt_one_minus_alpha_bars[t]:.4f}",
        )
    console.print(t_table)
    console.print(f"{len(x0)} {args.dataset} images from the {data.source}")
    console.print(f"Saved the forward process to [bold]{grid_path}[/] and the schedule to [bold]{plot_path}[/]")
    return 0
