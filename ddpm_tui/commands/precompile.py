"""``ddpm-tui compile``: prepare this machine's sampling once: compile a network where its package pays, or, where
the GroupNorm kernel serves eager calls as fast, build that kernel and nothing else."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import core

from ..console import console
from ..flags import add_flag

NAME = "compile"
HELP = "compile the default network (or a checkpoint's) for sampling where that pays, once per machine"
COMPUTES = True  # a job that shares the cores (core.jobs), with --threads


def add_arguments(parser: argparse.ArgumentParser) -> None:
    source = parser.add_mutually_exclusive_group()
    add_flag(source, "checkpoint", type=Path, help="compile this model's network (default: a fresh default one)")
    add_flag(
        source,
        "dataset",
        choices=core.DATASETS,
        default="mnist",
        help="compile the network `ddpm-tui train --dataset` builds for it (default %(default)s)",
    )
    add_flag(parser, "precision", choices=core.PRECISIONS, default="auto")


def run(args: argparse.Namespace) -> int:
    """Compile the network through one short sampling run, unless the GroupNorm kernel serves this machine's
    calls (see :func:`core.serves_eager_calls`); 1 when it cannot be compiled."""
    device = core.resolve_device("auto")
    if device.type != "cpu":
        console.print(f"Sampling runs on {device.type} here, where only --compile on compiles: nothing to do.")
        return 0
    if args.checkpoint is None:
        loaded = core.untrained_model(core.TrainConfig(dataset=args.dataset), core.load_dataset(args.dataset))
        what = f"the default {args.dataset} network"
    else:
        loaded = core.load_model(args.checkpoint)
        what = f"the network of {args.checkpoint}"
    core.configure_for_speed(device)
    start = time.perf_counter()
    with core.autocast(device, core.use_bf16(device, args.precision)):
        if core.serves_eager_calls(device):
            console.print(
                "Nothing to compile: on this CPU the network runs in channels-last order with its GroupNorm kernel "
                f"(built in {core.compile_cache_dir()}), as fast as a compiled package. Sampling runs it as it is "
                "(--compile on still builds and runs a package)."
            )
            return 0
        console.print(f"Compiling {what} for sampling (once per machine: under a minute)...")
        failed = core.compile_for_sampling(
            loaded.model, loaded.schedule, loaded.image_shape, device, loaded.config.dataset
        )
    if failed:
        console.print(f"[yellow]The network could not be compiled ({failed}); sampling runs it as it is.[/]")
        return 1
    console.print(
        f"Compiled in {time.perf_counter() - start:.0f} s into {core.compile_cache_dir()}. Every sampling run of "
        f"this network's architecture with {core.AUTO_MIN_IMAGE_CALLS:,} image-calls or more (network calls x "
        "images: all but a call or two on a few images) now loads it in milliseconds and runs compiled."
    )
    return 0
