"""``ddpm-tui train``: learn to predict the noise, with a progress bar per epoch and a line per epoch."""

from __future__ import annotations

import argparse
from pathlib import Path

import core

from ..console import console, err_console, progress_bar, stop_on_interrupt
from ..flags import add_flag, add_setting_flags, setting_overrides

NAME = "train"
HELP = "train a U-Net to predict noise"
COMPUTES = True  # a job that shares the cores (core.jobs), with --threads
MODEL_HELP = (
    "default small; see docs/performance.md). Explicit --base_channels, --channel_mults, --num_res_blocks or "
    "--attention or --decoder override it"
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    presets = tuple(core.MODEL_PRESETS)
    add_flag(parser, "model", choices=presets, help=f"U-Net size preset: {', '.join(presets)} (" + MODEL_HELP)
    add_setting_flags(parser)
    add_flag(parser, "resume", type=Path, help="continue from a checkpoint.pt")


def run(args: argparse.Namespace) -> int:
    """Train a model, printing a progress bar per epoch and a line per epoch."""
    overrides = setting_overrides(args)
    if args.resume is not None:
        trainer = core.Trainer(core.TrainConfig(), resume=args.resume, resume_overrides=overrides)
    else:
        config = core.TrainConfig(**overrides).validate()
        if config.dataset == core.FOLDER:
            decode_once(config)
        trainer = core.Trainer(config)
    if not trainer.processes.is_main:
        return _follow_quietly(trainer)
    _print_setup(trainer)
    with stop_on_interrupt(trainer.request_stop), progress_bar() as progress:
        task = None
        try:
            for event in trainer.run():
                if isinstance(event, core.StepEvent):
                    if task is None:
                        task = progress.add_task(
                            f"epoch {event.epoch}/{trainer.config.epochs}",
                            total=event.batches,
                            completed=event.batch - 1,
                            info="",
                        )
                    progress.update(
                        task, completed=event.batch, info=f"loss {event.loss:.4f}  {event.images_per_sec:.0f} img/s"
                    )
                elif isinstance(event, core.EpochEvent):
                    if task is not None:
                        progress.remove_task(task)
                        task = None
                    progress.console.print(_epoch_line(event, trainer))
                else:
                    return _finished(event, trainer)
        except core.TrainingError as err:
            err_console.print(f"ddpm-tui train: error: {err}", markup=False, soft_wrap=True)
            return 1
    return 0


def decode_once(config: core.TrainConfig) -> None:
    """Decode the folder's images with a progress bar before training starts (the trainer then reads
    them from the cache); an unchanged folder is read from the cache at once."""
    with progress_bar() as progress:
        task = progress.add_task("decoding images", total=None, info="")

        def advance(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        core.run_data(config, "train", advance)


def _follow_quietly(trainer: core.Trainer) -> int:
    """A process other than rank 0 under torchrun: train its share, print nothing (rank 0 reports)."""
    with stop_on_interrupt(trainer.request_stop, quiet=True):
        for _ in trainer.run():
            pass
    return 0


def _print_setup(trainer: core.Trainer) -> None:
    cfg = trainer.config
    console.print(f"[bold]Data:[/] {trainer.data.source}")
    if len(trainer.data) < cfg.batch_size:
        console.print(
            f"[yellow]Note:[/] {len(trainer.data):,} training images are fewer than one batch of {cfg.batch_size}: "
            f"each step trains on all {len(trainer.data):,}"
        )
    kind = ", class-conditional (labels dropped 10% of the time)" if cfg.conditional else ""
    console.print(
        f"[bold]Model:[/] U-Net '{cfg.model_name}' (base_channels {cfg.base_channels}, levels "
        f"{'x'.join(map(str, cfg.channel_mults))}, {cfg.num_res_blocks} blocks per level, "
        f"self-attention: {cfg.attention}, decoder: {cfg.decoder}), "
        f"{trainer.param_count:,} parameters{kind}, predicting {cfg.prediction}"
    )
    console.print(f"[bold]Device:[/] {trainer.device_label}   [bold]Schedule:[/] {cfg.schedule}, T = {cfg.timesteps}")
    world = trainer.processes.world_size
    if world > 1:
        console.print(
            f"[bold]Processes:[/] {world} (torchrun), each on {cfg.batch_size // world} of every batch's "
            f"{cfg.batch_size} images; gradients averaged by DistributedDataParallel"
        )
    resumed = f", resuming at step {trainer.step} (epoch {trainer.epoch + 1})" if trainer.step else ""
    console.print(
        f"[bold]Run:[/] {cfg.epochs} epochs x {trainer.batches_per_epoch} steps of {cfg.batch_size} "
        f"images into {trainer.output_dir}/{resumed}"
    )


def _epoch_line(event: core.EpochEvent, trainer: core.Trainer) -> str:
    where = f"  samples: {event.sample_path}" if event.sample_path else ""
    rated = ""
    if event.recognised is not None:
        rated = f"  recognised {event.recognised:.0%}  entropy {event.class_entropy:.2f}"
        if core.one_class_warning(event.class_entropy):
            rated += f" ({core.ONE_CLASS_NOTE})"
    return (
        f"epoch {event.epoch:3d}/{trainer.config.epochs}  loss {event.mean_loss:.4f}{rated}  "
        f"{event.seconds:.1f}s  {trainer.device_label}{where}"
    )


def _finished(event: core.FinishedEvent, trainer: core.Trainer) -> int:
    minutes = event.elapsed / 60
    if event.completed:
        console.print(
            f"[green]Done[/] in {minutes:.1f} min ({event.step} steps). "
            f"Model: [bold]{event.model_path}[/]  loss curve: {trainer.output_dir / 'training_loss.png'}"
        )
        console.print(f"Next: ddpm-tui sample --checkpoint {event.model_path} --show_intermediate")
        return 0
    console.print(f"[yellow]Stopped[/] at step {event.step}; state saved to [bold]{event.checkpoint_path}[/]")
    console.print(f"Resume with: ddpm-tui train --resume {event.checkpoint_path}")
    # 130 says "stopped, not finished"; torchrun would report it as a failure of every process, so a
    # distributed run that stopped cleanly exits 0 (its status.json says "stopped").
    return 0 if trainer.processes.distributed else 130
