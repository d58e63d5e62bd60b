"""``ddpm-tui invert``: encode real images to the noise the deterministic sampler turns back into them."""

from __future__ import annotations

import argparse
import json
import time

import torch

import core

from ..console import console, table
from ..flags import add_edit_flags, add_flag, held_out_images, positive_int

NAME = "invert"
HELP = "encode images to noise by the probability-flow ODE, and decode them back"
COMPUTES = True  # a job that shares the cores (core.jobs), with --threads


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_edit_flags(parser, "outputs/invert")
    add_flag(parser, "steps", type=positive_int, help="ODE steps each way (default 50, or T if fewer)")
    add_flag(parser, "sampler", choices=core.INVERSION_SOLVERS, default="ddim", help="the ODE solver")
    add_flag(parser, "json", action="store_true", help="print the figures as one JSON object")


def decode(loaded: core.LoadedModel, x_T: torch.Tensor, times: list[int], sampler: str) -> torch.Tensor:
    """The deterministic sampler from ``x_T`` along ``times``, unclipped (the inverse of the encoding)."""
    return core.last_step(core.sample(loaded.model, loaded.schedule, x_T, sampler, times=times, clip=False)).x


def measure(loaded: core.LoadedModel, images: torch.Tensor, args: argparse.Namespace) -> dict:
    """Encode, decode, and decode fresh noise too; the figures and the three batches."""
    steps = args.steps or min(core.DEFAULT_STEPS["ddim"], loaded.schedule.timesteps)
    times = core.sampler_timesteps(loaded.schedule, args.sampler, steps)
    start = time.perf_counter()
    x_T = core.last_step(core.invert(loaded.model, loaded.schedule, images, times, args.sampler)).x
    back = decode(loaded, x_T, times, args.sampler)
    fresh = torch.randn(images.shape, generator=torch.Generator().manual_seed(args.seed)).to(images.device)
    random = decode(loaded, fresh, times, args.sampler)
    return {
        "sampler": args.sampler,
        "steps": len(times),
        "num_images": len(images),
        "mse": core.pixel_mse(back, images),
        "random_mse": core.pixel_mse(random, images),
        "x_T_mean": x_T.mean().item(),
        "x_T_std": x_T.std().item(),
        "seconds": time.perf_counter() - start,
        "batches": {"original": images, "noise": (x_T / 3).clamp(-1, 1), "reconstruction": back.clamp(-1, 1)},
    }


def run(args: argparse.Namespace) -> int:
    """Invert held-out (or the learner's) images, reconstruct them, and report how close they came back."""
    device = core.resolve_device(args.device)
    loaded = core.load_model(args.checkpoint, device)
    generator = torch.Generator().manual_seed(args.seed)
    held_out = None if args.images else held_out_images(loaded.config, args.dataset)
    images, names = core.images_to_edit(loaded.image_shape, args.images, held_out, args.num_images, generator)
    core.check_writable(args.export_dir)
    core.configure_for_speed(device)
    with core.autocast(device, core.use_bf16(device)):
        result = measure(loaded, images.to(device), args)
    batches = result.pop("batches")
    for kind, batch in batches.items():
        core.export_images(batch.cpu(), args.export_dir / kind, names)
    rows = torch.stack([batches[k].cpu() for k in ("original", "noise", "reconstruction")], 1).flatten(0, 1)
    grid = core.save_grid(rows[: 3 * 8], args.export_dir / "invert.png", nrow=3)
    if args.json:
        print(json.dumps(result))
        return 0
    t = table(
        "figure", "value", title=f"{result['num_images']} images inverted by {args.sampler}, {result['steps']} steps"
    )
    t.add_row("reconstruction error (MSE, 0-1 pixels)", f"{result['mse']:.5f}")
    t.add_row("a random sample's error (what ignoring the input scores)", f"{result['random_mse']:.5f}")
    t.add_row(
        "x_T's mean and standard deviation (N(0, 1) noise: 0 and 1)",
        f"{result['x_T_mean']:.3f}, {result['x_T_std']:.3f}",
    )
    console.print(t)
    console.print(
        f"Reconstructed {result['random_mse'] / max(result['mse'], 1e-12):.0f}x closer than a random sample, "
        f"in {result['seconds']:.1f}s. Originals, their x_T (divided by 3) and reconstructions: "
        f"{args.export_dir}/original, noise, reconstruction; the first 8 side by side in {grid}"
    )
    return 0
