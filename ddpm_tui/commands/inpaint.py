"""``ddpm-tui inpaint``: fill a masked region of each image so that it fits the pixels around it."""

from __future__ import annotations

import argparse
import json
import time

import torch

import core

from ..console import console
from ..flags import add_edit_flags, add_flag, held_out_images, non_negative_float, positive_int

NAME = "inpaint"
HELP = "fill the masked part of images, the reverse process told the known pixels (RePaint)"
COMPUTES = True  # a job that shares the cores (core.jobs), with --threads
DEFAULT_STEPS, DEFAULT_RESAMPLE, DEFAULT_GUIDANCE = core.INPAINT_STEPS, core.INPAINT_RESAMPLE, core.INPAINT_GUIDANCE


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_edit_flags(parser, "outputs/inpaint")
    add_flag(
        parser,
        "mask",
        default="bottom",
        help=f"what to fill: {', '.join(core.MASKS)}, or a PNG of the images' size, white where to fill",
    )
    add_flag(parser, "steps", type=positive_int, help=f"denoising steps (default {DEFAULT_STEPS}, or T if fewer)")
    add_flag(
        parser,
        "resample",
        type=positive_int,
        default=DEFAULT_RESAMPLE,
        help=f"RePaint's jumps back per step: 1 is plain replacement (default {DEFAULT_RESAMPLE})",
    )
    add_flag(
        parser,
        "guidance",
        type=non_negative_float,
        default=DEFAULT_GUIDANCE,
        help="reconstruction guidance w: pull each step's clean-image estimate towards the known pixels by the "
        f"gradient of its error there (Ho et al. 2022); 0: replacement alone (default {DEFAULT_GUIDANCE:g})",
    )
    add_flag(
        parser,
        "autoguidance",
        type=non_negative_float,
        help="w of the run's early self as guide, as sampling uses it (default: the dataset's; 1: none)",
    )
    add_flag(parser, "json", action="store_true", help="print the figures as one JSON object")


def fill(loaded: core.LoadedModel, images: torch.Tensor, mask: torch.Tensor, args: argparse.Namespace) -> torch.Tensor:
    T = loaded.schedule.timesteps
    times = core.ddim_timesteps(T, args.steps or min(DEFAULT_STEPS, T))
    generator = torch.Generator(images.device).manual_seed(args.seed)
    dataset = loaded.config.dataset
    model, _ = core.edit_predictor(loaded.model, loaded.schedule, loaded.guide, args.autoguidance, dataset)
    run = core.inpaint(
        model, loaded.schedule, images, mask.to(images.device), times, args.resample, generator, guidance=args.guidance
    )
    return core.last_step(run).x.float().clamp(-1, 1)


def kept_class(dataset: str, originals: torch.Tensor, filled: torch.Tensor) -> float | None:
    """The share of filled images the scoring classifier gives the class it gives their original (None where
    the dataset has no classifier)."""
    if dataset not in core.SCORED_DATASETS:
        return None
    classifier = core.load_classifier(dataset)
    wanted = classifier.features_and_probabilities(originals)[1].argmax(1)
    return (classifier.features_and_probabilities(filled)[1].argmax(1) == wanted).float().mean().item()


def run(args: argparse.Namespace) -> int:
    """Inpaint the images, write each result under its input's name, and say how many kept their class."""
    device = core.resolve_device(args.device)
    loaded = core.load_model(args.checkpoint, device)
    if args.steps is not None and args.steps > loaded.schedule.timesteps:
        raise ValueError(f"--steps {args.steps} is more than the model's T = {loaded.schedule.timesteps}")
    generator = torch.Generator().manual_seed(args.seed)
    held_out = None if args.images else held_out_images(loaded.config, args.dataset)
    images, names = core.images_to_edit(loaded.image_shape, args.images, held_out, args.num_images, generator)
    mask = core.load_mask(args.mask, loaded.image_shape)
    core.check_writable(args.export_dir)
    core.configure_for_speed(device)
    start = time.perf_counter()
    with core.autocast(device, core.use_bf16(device)):
        filled = fill(loaded, images.to(device), mask, args).cpu()
    seconds = time.perf_counter() - start
    core.export_images(filled, args.export_dir, names)
    holed = torch.where(mask > 0.5, torch.zeros_like(images), images)
    grid = core.save_grid(
        torch.stack([holed, filled, images], 1).flatten(0, 1)[:24], args.export_dir / "inpaint.png", 3
    )
    steps = args.steps or min(DEFAULT_STEPS, loaded.schedule.timesteps)
    figures = {"mask": args.mask, "resample": args.resample, "guidance": args.guidance, "steps": steps}
    figures["num_images"] = len(images)
    figures.update(kept_class=kept_class(loaded.config.dataset, images, filled), seconds=seconds)
    if args.json:
        print(json.dumps(figures))
        return 0
    kept = figures["kept_class"]
    console.print(
        f"Filled the {args.mask} of {len(images)} images in {seconds:.1f}s ({steps} steps, {args.resample} "
        f"passes each) -> {args.export_dir}/ (input names); the first 8 with their hole and original: {grid}"
        + ("" if kept is None else f". The classifier gives {kept:.1%} of them their original's class.")
    )
    return 0
