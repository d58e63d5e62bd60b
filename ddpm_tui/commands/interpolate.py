"""``ddpm-tui interpolate``: rows of images between two noise vectors, on the sphere or on a line."""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import torch

import core

from ..console import console, fail
from ..flags import add_flag, bounded, positive_int

NAME = "interpolate"
HELP = "images between two noise vectors (or two inverted images): slerp against lerp"
COMPUTES = True  # a job that shares the cores (core.jobs), with --threads
METHODS = {"slerp": core.slerp, "lerp": core.lerp}
STEPS = core.DEFAULT_STEPS["ddim"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_flag(parser, "checkpoint", type=Path, required=True, help="e.g. outputs/model_final.pt")
    add_flag(parser, "pairs", type=positive_int, default=8, help="rows: pairs of end points (default 8)")
    add_flag(parser, "frames", type=bounded(int, 2, "must be 2 or more"), default=8, help="images per row")
    add_flag(parser, "method", choices=tuple(METHODS), default="slerp", help="on the sphere, or the straight line")
    add_flag(parser, "images", type=Path, help="interpolate between these PNGs, inverted (pairs in name order)")
    add_flag(parser, "from_class", type=int, help="conditional models: the first end point's class")
    add_flag(parser, "to_class", type=int, help="conditional models: the last end point's class")
    add_flag(
        parser, "guidance_scale", type=float, help=f"for conditional models (default {core.default_guidance_text()})"
    )
    add_flag(parser, "steps", type=positive_int, help="deterministic DDIM steps (default 50, or T if fewer)")
    add_flag(parser, "seed", type=int, default=0)
    add_flag(parser, "export_dir", type=Path, help="also write pair{i:03d}_frame{j:02d}.png here")
    add_flag(parser, "output", type=Path, default=Path("outputs/interpolation.png"), help="the grid")
    add_flag(parser, "json", action="store_true", help="print the mid-point norms as one JSON object")
    add_flag(parser, "device", choices=core.DEVICES, default="auto")


def end_points(loaded: core.LoadedModel, args: argparse.Namespace, times: list[int], device) -> torch.Tensor:
    """(pairs, 2, C, H, W) noise: fresh draws, or the inverted ``--images`` taken two by two."""
    if args.images is None:
        generator = torch.Generator().manual_seed(args.seed)
        return torch.randn(args.pairs, 2, *loaded.image_shape, generator=generator).to(device)
    images, _ = core.images_to_edit(loaded.image_shape, args.images, count=2 * args.pairs)
    if len(images) < 2:
        fail(f"--images {args.images}: interpolating needs at least two images")
    pairs = len(images) // 2
    x_T = core.last_step(core.invert(loaded.model, loaded.schedule, images[: 2 * pairs].to(device), times)).x
    return x_T.reshape(pairs, 2, *loaded.image_shape)


def class_weights(loaded: core.LoadedModel, args: argparse.Namespace, count: int) -> torch.Tensor | None:
    """With ``--from_class``/``--to_class``, (pairs x frames, K + 1) weights that morph the first class's
    label embedding into the second's along each row; None without them (a conditional model then draws
    unconditionally, with its null label)."""
    if args.from_class is None and args.to_class is None:
        return None
    classes = loaded.model.num_classes
    if not classes:
        fail("--from_class and --to_class need a class-conditional model (train one with --conditional)")
    first = args.from_class if args.from_class is not None else args.to_class
    last = args.to_class if args.to_class is not None else first
    for label in (first, last):
        if not 0 <= label < classes:
            fail(f"class {label} is out of range: this model knows classes 0-{classes - 1}")
    weights = torch.linspace(0, 1, args.frames)[:, None]
    one_hot = torch.eye(classes + 1)
    return ((1 - weights) * one_hot[first] + weights * one_hot[last]).repeat(count // args.frames, 1)


def run(args: argparse.Namespace) -> int:
    """Decode rows of noise between two end points; report the mid-point noise norm of each method."""
    device = core.resolve_device(args.device)
    loaded = core.load_model(args.checkpoint, device)
    times = core.sampler_timesteps(loaded.schedule, "ddim", args.steps or min(STEPS, loaded.schedule.timesteps))
    core.configure_for_speed(device)
    with core.autocast(device, core.use_bf16(device)):
        ends = end_points(loaded, args, times, device)
        weights = torch.linspace(0, 1, args.frames).tolist()
        noise = torch.stack([METHODS[args.method](ends[:, 0], ends[:, 1], w) for w in weights], 1).flatten(0, 1)
        labels = class_weights(loaded, args, len(noise))
        scale = core.default_guidance(loaded.config.dataset) if args.guidance_scale is None else args.guidance_scale
        model = loaded.model if labels is None else core.guided(
            loaded.model, labels.to(device), scale, loaded.model.null_class
        )  # fmt: skip
        images = core.last_step(core.sample(model, loaded.schedule, noise, "ddim", times=times)).x.cpu()
    root_d = math.sqrt(ends[0, 0].numel())
    middle = {name: f(ends[:, 0], ends[:, 1], 0.5).flatten(1).norm(dim=1).mean().item() for name, f in METHODS.items()}
    figures = {"method": args.method, "pairs": len(ends), "frames": args.frames, "sqrt_d": root_d}
    figures.update({f"midpoint_norm_{name}": norm for name, norm in middle.items()})
    grid = core.save_grid(images, args.output, nrow=args.frames)
    if args.export_dir is not None:
        names = [f"pair{i:03d}_frame{j:02d}.png" for i in range(len(ends)) for j in range(args.frames)]
        core.export_images(images, args.export_dir, names)
    if args.json:
        print(json.dumps(figures))
        return 0
    console.print(
        f"{len(ends)} rows of {args.frames} images ({args.method}) -> [bold]{grid}[/]. The mid-point noise has "
        f"norm {middle['slerp']:.1f} on the sphere (slerp) and {middle['lerp']:.1f} on the line (lerp); "
        f"Gaussian noise of {ends[0, 0].numel()} pixels has norm about sqrt(d) = {root_d:.1f}."
    )
    return 0
