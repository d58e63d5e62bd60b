"""``ddpm-tui sample``: generate images from a trained model (the reverse process), with frames and a GIF."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

import core

from ..console import console, progress_bar
from ..flags import CLASS_LABEL_HELP, add_flag, non_negative_float, positive_int

NAME = "sample"
HELP = "generate images from a trained model (the reverse process)"
COMPUTES = True  # a job that shares the cores (core.jobs), with --threads
STEPS_HELP = ", ".join(f"{name} (default {steps})" for name, steps in core.DEFAULT_STEPS.items())
SAMPLER_HELP = (
    f"ddpm: all T steps of Algorithm 2, as the guide's Phase 3 runs them; {core.FAST_SAMPLER}: the "
    f"recommended fast sampler ({core.DEFAULT_STEPS[core.FAST_SAMPLER]} network calls; on the default recipe "
    "it scores better than ddpm's T); ddim and dpm++: deterministic (default %(default)s)"
)
GUIDANCE_HELP = (
    "classifier-free guidance w: 0 ignores the label, 1 is the plain conditional model, "
    f"larger sharpens and loses variety (default by the model's dataset: {core.default_guidance_text()}, "
    "else mnist's)"
)


AUTOGUIDANCE_HELP = (
    "w for autoguidance by the run's early EMA weights (checkpoints that kept them, see train --guide_at): "
    "eps_early + w * (eps - eps_early) between noise levels "
    f"sigma = {core.GUIDANCE_SIGMA_MIN:g} and {core.GUIDANCE_SIGMA_MAX:g}; 1 turns it off; it costs two network "
    "calls on those steps, so the default step counts shrink to keep an image's calls "
    f"(default by the model's dataset: {core.default_autoguidance_text()}, "
    "else mnist's; 1 for ddpm, which always runs all T steps, and for class-conditional models)"
)


ETA_HELP = (
    "fresh noise per step of ddim and dpm++sde: 0 is deterministic (the ODE), 1 as much as DDPM adds "
    f"(default {', '.join(f'{name} {eta:g}' for name, eta in core.DEFAULT_ETA.items())})"
)


COMPILE_HELP = (
    "run the network compiled (AOTInductor: fused C++ loops, about 1.9x faster a call on a CPU): on does, building "
    "its package first if this machine has none (under a minute, once; ddpm-tui compile does it ahead); auto "
    f"does on the CPU for runs of network calls x images >= {core.AUTO_MIN_IMAGE_CALLS:,} when the package is "
    f"there, and builds it for runs of {core.AUTO_MIN_IMAGE_CALLS_COLD:,} or more"
)


def add_sampling_flags(parser: argparse.ArgumentParser, sampler: str) -> None:
    """The flags every command that samples shares: sampler, steps, guidance, seed, device and compiling."""
    add_flag(parser, "sampler", choices=core.SAMPLERS, default=sampler, help=SAMPLER_HELP)
    add_flag(parser, "steps", type=positive_int, help=f"steps for {STEPS_HELP}; ddpm always runs all T")
    add_flag(
        parser,
        "guidance_scale",
        type=non_negative_float,
        help="conditional models: " + GUIDANCE_HELP,
    )
    add_flag(
        parser,
        "autoguidance",
        type=non_negative_float,
        help=AUTOGUIDANCE_HELP,
    )
    add_flag(parser, "eta", type=non_negative_float, help=ETA_HELP)
    add_flag(parser, "seed", type=int, default=0)
    add_flag(parser, "device", choices=core.DEVICES, default="auto")
    add_flag(parser, "compile", choices=core.COMPILE_MODES, default="auto", help=COMPILE_HELP)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_flag(parser, "checkpoint", type=Path, required=True, help="e.g. outputs/model_final.pt")
    add_flag(parser, "num_images", type=positive_int, default=64)
    add_flag(parser, "output", type=Path, default=Path("outputs/samples.png"))
    add_flag(
        parser,
        "show_intermediate",
        action="store_true",
        help="also write outputs/intermediate/step_XXXX.png frames and denoising.gif",
    )
    add_sampling_flags(parser, "ddpm")
    add_flag(
        parser,
        "class_label",
        help=CLASS_LABEL_HELP,
    )
    add_flag(parser, "export_dir", type=Path, help="also write every image as its own PNG here")
    add_flag(parser, "precision", choices=core.PRECISIONS, default="auto")


def describe(args: argparse.Namespace, loaded: core.LoadedModel, plan: core.SamplingPlan) -> None:
    """Print the model, and the classes and guidance the plan samples with."""
    cfg = loaded.config
    console.print(
        f"[bold]Model:[/] {args.checkpoint} ({core.count_parameters(loaded.model):,} parameters, "
        f"{cfg.dataset}, {cfg.schedule} schedule, T = {loaded.schedule.timesteps})"
    )
    if plan.labels is not None:
        what = (
            "one row per class"
            if plan.row_length
            else f"class {int(plan.labels[0])} ({loaded.class_names[int(plan.labels[0])]})"
        )
        console.print(f"[bold]Classes:[/] {what}, guidance w = {plan.guidance_scale:g}")
    if plan.autoguidance is not None:
        console.print(f"[bold]Autoguidance:[/] w = {plan.autoguidance:g} by the run's early EMA weights")
    if plan.compiled:
        console.print(
            f"[bold]Compiled:[/] the network runs from its package in {core.compile_cache_dir()} (built first if "
            "missing: under a minute, once); --compile off runs it as it is"
        )


def say_if_not_compiled(network: torch.nn.Module) -> None:
    """One line when the network was to run compiled but could not be, and so ran as it is."""
    failed = core.compile_error(network)
    if failed:
        console.print(f"[yellow]The network could not be compiled ({failed}); it ran as it is.[/]")


def write_frames(frames: list[tuple[int, torch.Tensor]], folder: Path) -> None:
    """The denoising frames as step_XXXX.png (XXXX = t) and denoising.gif in ``folder``."""
    for t, x in frames[1:]:
        core.save_grid(x, folder / f"step_{t:04d}.png")
    gif = core.save_gif([x for _, x in frames], folder / "denoising.gif")
    console.print(f"{len(frames) - 1} denoising frames (step_XXXX.png, XXXX = t) and {gif} in {folder}/")


def run(args: argparse.Namespace) -> int:
    """Generate images from a checkpoint, optionally saving the denoising as frames and a GIF."""
    device = core.resolve_device(args.device)
    loaded = core.load_model(args.checkpoint, device)
    bf16 = core.use_bf16(device, args.precision)
    with core.autocast(device, bf16):  # whether compiling pays depends on the precision
        plan = core.plan_sampling(
            loaded.model,
            loaded.schedule,
            loaded.image_shape,
            args.num_images,
            args.sampler,
            args.steps,
            core.resolve_class(loaded.class_names if loaded.config.conditional else (), args.class_label),
            args.guidance_scale,
            args.seed,
            device,
            loaded.guide,
            args.autoguidance,
            loaded.config.dataset,
            args.eta,
            args.compile,
        )
    for target in filter(None, (args.output.parent, args.export_dir)):
        core.check_writable(target)
    core.configure_for_speed(device)
    describe(args, loaded, plan)
    frames: list[tuple[int, torch.Tensor]] = [(loaded.schedule.timesteps, plan.x_T.float().cpu())]
    keep = set(core.snapshot_indices(len(plan.timesteps)))
    start = time.perf_counter()
    with progress_bar() as progress, core.autocast(device, bf16):
        task = progress.add_task(f"{args.sampler} sampling", total=len(plan.timesteps), info="")
        for step in plan.run():
            progress.update(task, completed=step.index + 1, info=f"t = {step.t}")
            if args.show_intermediate and step.index in keep:
                frames.append((step.t, step.x.float().cpu()))
        images = step.x.float().cpu()
    seconds = time.perf_counter() - start
    say_if_not_compiled(loaded.model)

    path = core.save_grid(images, args.output, nrow=plan.row_length)
    console.print(
        f"{plan.count} images in {seconds:.1f}s ({args.sampler}, {step.total} steps, "
        f"{core.device_label(device, bf16)}) -> [bold]{path}[/]"
    )
    if args.show_intermediate:
        write_frames(frames, args.output.parent / "intermediate")
    if args.export_dir is not None:
        paths = core.export_images(images, args.export_dir)
        console.print(f"Exported {len(paths)} PNGs to {args.export_dir}/")
    return 0
