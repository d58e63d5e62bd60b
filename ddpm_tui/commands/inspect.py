"""``ddpm-tui inspect``: inside a trained network: why it predicts noise, why it needs t, what its skips carry."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

import core

from ..console import console, progress_bar, table
from ..flags import add_flag, bounded, positive_int

NAME = "inspect"
HELP = "look inside a trained network: noise vs image error over t, a wrong t, cut skip connections"
COMPUTES = True  # a job that shares the cores (core.jobs), with --threads
SWEEP_POINTS = 100


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_flag(parser, "checkpoint", type=Path, required=True, help="e.g. outputs/model_final.pt")
    add_flag(
        parser,
        "t",
        type=bounded(int, 0, "must be a timestep, 0 or more"),
        nargs="+",
        default=list(core.INSPECT_TIMESTEPS),
        help="the timesteps to look at",
    )
    add_flag(parser, "num_images", type=positive_int, default=64, help="held-out images averaged over")
    add_flag(parser, "seed", type=int, default=0, help="seed of the images and the noise")
    add_flag(parser, "output", type=Path, default=Path("outputs/inspect.png"), help="the figure")
    add_flag(parser, "json", action="store_true", help="print the errors at each t as one JSON object")
    add_flag(parser, "device", choices=core.DEVICES, default="auto")


def measure(
    loaded: core.LoadedModel, x0: torch.Tensor, args: argparse.Namespace, generator: torch.Generator
) -> tuple[core.ErrorProfile, Path]:
    """The errors at the requested t, and the figure: the first image's pictures at each t, the errors
    over 50 values of t, and its noise error against every t the network could be told."""
    model, schedule, T = loaded.model, loaded.schedule, loaded.schedule.timesteps
    chart_t = core.profile_timesteps(T)
    with progress_bar() as progress:
        task = progress.add_task("errors over t", total=len(chart_t) + len(args.t), info="", visible=not args.json)
        at_t = core.error_profile(model, schedule, x0, args.t, generator)
        progress.update(task, completed=len(args.t))
        over_t = core.error_profile(
            model, schedule, x0, chart_t, generator, lambda done, _: progress.update(task, completed=done + len(args.t))
        )
    eps = torch.randn(x0[:1].shape, generator=generator).to(x0.device)
    looks = [core.predict(model, schedule, x0[:1], t, eps) for t in args.t]
    sweep_t = core.profile_timesteps(T, SWEEP_POINTS)
    sweeps = {look.t: (sweep_t, core.time_sweep(model, schedule, look.x_t, look.eps, sweep_t)) for look in looks}
    figure = core.plot_inspection(
        torch.stack([core.panels(look) for look in looks]).cpu(),
        core.PANELS,
        [f"t = {t}" for t in args.t],
        {
            "MSE(ε_hat, ε)": over_t.mse_eps,
            "MSE(x0_hat, x_0)": over_t.mse_x0,
            "MSE(ε_hat, ε), told t + T/2": over_t.mse_eps_wrong_t,
            "MSE(ε_hat, ε), skips cut": over_t.mse_eps_no_skips,
            "t": over_t.t,
        },
        sweeps,
        args.output,
    )
    return at_t, figure


def run(args: argparse.Namespace) -> int:
    """Measure the network at each requested t on held-out images; print a table (or JSON), draw the figure."""
    device = core.resolve_device(args.device)
    loaded = core.load_model(args.checkpoint, device)
    T = loaded.schedule.timesteps
    outside = [t for t in args.t if t >= T]
    if outside:
        raise ValueError(f"--t {outside[0]} is outside this model's 0..{T - 1}")
    core.check_writable(args.output.parent)
    data = core.run_data(loaded.config, "test")
    generator = torch.Generator().manual_seed(args.seed)
    x0 = core.pick_images(data, args.num_images, generator).to(device)
    schedule = loaded.schedule
    core.configure_for_speed(device)
    with core.autocast(device, core.use_bf16(device)):
        at_t, figure = measure(loaded, x0, args, generator)

    if args.json:
        print(json.dumps(at_t.as_dict()))
        return 0
    conditional = " (conditional: asked with the null class, no label)" if loaded.config.conditional else ""
    console.print(f"[bold]Model:[/] {args.checkpoint}{conditional}; {len(x0)} held-out {data.name} images")
    rows = table(
        "t",
        "ᾱ_t",
        "noise MSE",
        "image MSE",
        "told t",
        "noise MSE, told it",
        "noise MSE, skips cut",
        title="noise MSE(ε_hat, ε), what the loss sees; image MSE(x0_hat, x_0), what the image sees",
    )
    for i, t in enumerate(at_t.t):
        rows.add_row(
            str(t),
            f"{schedule.alpha_bars[t].item():.4f}",
            f"{at_t.mse_eps[i]:.4f}",
            f"{at_t.mse_x0[i]:.4f}",
            str(core.wrong_time(t, T)),
            f"{at_t.mse_eps_wrong_t[i]:.4f}",
            f"{at_t.mse_eps_no_skips[i]:.4f}",
        )
    console.print(rows)
    console.print(f"Saved the figure to [bold]{figure}[/]")
    return 0
