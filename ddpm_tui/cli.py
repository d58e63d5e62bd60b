"""The command line: ``ddpm-tui [visualize | train | sample | eval | compare | watch]``; no command opens the app.

Every command is a thin front end over :mod:`core`: it parses flags, calls the core, and prints what the
core yields with Rich. Bad input is reported as one line on stderr with exit status 2.
"""

from __future__ import annotations

import argparse
import contextlib
import re
import signal
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, NoReturn

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

EXIT_USAGE = 2
console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False)


class UsageError(Exception):
    """Bad input: printed as one line, exit status 2."""


class Parser(argparse.ArgumentParser):
    """An argparse parser whose errors are a single line on stderr (exit 2), not usage plus message."""

    def error(self, message: str) -> NoReturn:
        message = re.sub(r"argument (--\w+)/--[\w-]+:", r"\1:", message)
        err_console.print(f"{self.prog}: error: {message} (see {self.prog} --help)", markup=False, soft_wrap=True)
        raise SystemExit(EXIT_USAGE)


def add_flag(parser: argparse.ArgumentParser, name: str, **kwargs: Any) -> None:
    """Add ``--name`` with both spellings accepted: the original underscores and dashes."""
    spellings = [f"--{name}"] + ([f"--{name.replace('_', '-')}"] if "_" in name else [])
    parser.add_argument(*spellings, dest=name, **kwargs)


def positive_int(text: str) -> int:
    value = _number(text, int)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def positive_float(text: str) -> float:
    value = _number(text, float)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {text}")
    return value


def timesteps_int(text: str) -> int:
    value = _number(text, int)
    if value < 2:
        raise argparse.ArgumentTypeError(f"must be at least 2, got {text}")
    return value


def _number(text: str, kind: Callable[[str], Any]) -> Any:
    try:
        return kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {'an integer' if kind is int else 'a number'}, got {text!r}") \
            from None


def class_label(text: str) -> int | str:
    """A class index (0-9) or "all"."""
    if text == "all":
        return text
    value = _number(text, int)
    if not 0 <= value <= 9:
        raise argparse.ArgumentTypeError(f"must be a class index 0-9 or 'all', got {text}")
    return value


def guidance(text: str) -> float:
    value = _number(text, float)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 (unconditional) or more, got {text}")
    return value


GUIDANCE_HELP = ("classifier-free guidance w: 0 ignores the label, 1 is the plain conditional model, "
                 "larger sharpens and loses variety (default 3)")
STEPS_HELP = "steps for ddim (default 50) or dpm++ (default 20); ddpm always runs all T"


def build_parser() -> Parser:
    from core import DATA_MODES, DATASETS, DEVICES, MODEL_PRESETS, SAMPLERS, SCHEDULES

    parser = Parser(prog="ddpm-tui", description="Learn denoising diffusion (DDPM) by building one.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)

    vis = sub.add_parser("visualize", help="show images dissolving into noise (the forward process)")
    add_flag(vis, "num_images", type=positive_int, default=8, help="images (rows) to show")
    add_flag(vis, "dataset", choices=DATASETS, default="mnist")
    add_flag(vis, "timesteps", type=timesteps_int, default=1000, help="T, the number of diffusion steps")
    add_flag(vis, "schedule", choices=SCHEDULES, default="linear")
    add_flag(vis, "output", type=Path, default=Path("outputs/forward_diffusion.png"))
    add_flag(vis, "seed", type=int, default=0)

    train = sub.add_parser("train", help="train a U-Net to predict noise")
    add_flag(train, "epochs", type=positive_int, help="passes over the data (default 20)")
    add_flag(train, "batch_size", type=positive_int, help="images per step (default 32)")
    add_flag(train, "lr", type=positive_float, help="peak AdamW learning rate after warm-up (default 1e-3)")
    add_flag(train, "timesteps", type=timesteps_int, help="T (default 1000)")
    add_flag(train, "schedule", choices=SCHEDULES, help="noise schedule (default linear)")
    add_flag(train, "dataset", choices=DATASETS, help="default mnist")
    add_flag(train, "data", choices=DATA_MODES,
             help="subset: the bundled subset (default); full: the full dataset; auto: full when available")
    add_flag(train, "data_dir", type=str, help="folder with the dataset's IDX files (implies the full dataset)")
    add_flag(train, "max_images", type=positive_int, help="train on only the first N images (quick experiments)")
    add_flag(train, "model", choices=tuple(MODEL_PRESETS),
             help="U-Net size preset: tiny, small (default), base or large (see the README's table)")
    add_flag(train, "base_channels", type=positive_int, help="U-Net width, overriding the preset's (small: 32)")
    add_flag(train, "lr_schedule", choices=("constant", "cosine"),
             help="after warm-up: cosine decay to 0 at the last step (default) or constant")
    add_flag(train, "min_snr_gamma", type=float, help="Min-SNR loss weighting min(SNR, gamma)/SNR; 0 = off (default)")
    add_flag(train, "conditional", action="store_true", default=None,
             help="learn class-conditional generation (labels dropped 10%% of the time, for guidance)")
    add_flag(train, "output_dir", type=str, help="run folder (default outputs)")
    add_flag(train, "seed", type=int, help="default 0")
    add_flag(train, "device", choices=DEVICES, help="default auto")
    add_flag(train, "precision", choices=("auto", "fp32", "bf16"),
             help="auto: bf16 autocast where the hardware has it (default)")
    add_flag(train, "sample_every", type=positive_int, help="write a sample grid every N epochs (default 1)")
    add_flag(train, "resume", type=Path, help="continue from a checkpoint.pt")

    smp = sub.add_parser("sample", help="generate images from a trained model (the reverse process)")
    add_flag(smp, "checkpoint", type=Path, required=True, help="e.g. outputs/model_final.pt")
    add_flag(smp, "num_images", type=positive_int, default=64)
    add_flag(smp, "output", type=Path, default=Path("outputs/samples.png"))
    add_flag(smp, "show_intermediate", action="store_true",
             help="also write outputs/intermediate/step_XXXX.png frames and denoising.gif")
    add_flag(smp, "sampler", choices=SAMPLERS, default="ddpm")
    add_flag(smp, "steps", type=positive_int, help=STEPS_HELP)
    add_flag(smp, "eta", type=float, default=0.0, help="DDIM stochasticity: 0 deterministic, 1 like DDPM")
    add_flag(smp, "seed", type=int, default=0)
    add_flag(smp, "class_label", type=class_label,
             help="conditional models: draw this class, or 'all' for one row per class (default all)")
    add_flag(smp, "guidance_scale", type=guidance, default=3.0, help=GUIDANCE_HELP)
    add_flag(smp, "export_dir", type=Path, help="also write every image as its own PNG here")
    add_flag(smp, "device", choices=DEVICES, default="auto")
    add_flag(smp, "precision", choices=("auto", "fp32", "bf16"), default="auto")
    ev = sub.add_parser("eval", help="score generated images against held-out real ones")
    source = ev.add_mutually_exclusive_group(required=True)
    add_flag(source, "checkpoint", type=Path, help="generate from this model, then score")
    add_flag(source, "images", type=Path, help="score the PNG images in this folder")
    add_flag(ev, "dataset", choices=DATASETS, help="the data to compare with (default: the checkpoint's, or mnist)")
    add_flag(ev, "num_images", type=positive_int, default=1000)
    add_flag(ev, "sampler", choices=SAMPLERS, default="dpm++")
    add_flag(ev, "steps", type=positive_int, help=STEPS_HELP)
    add_flag(ev, "guidance_scale", type=guidance, default=3.0,
             help="conditional models (classes drawn in turn): " + GUIDANCE_HELP)
    add_flag(ev, "seed", type=int, default=0)
    add_flag(ev, "device", choices=DEVICES, default="auto")
    add_flag(ev, "retrain_classifier", action="store_true", help="train the scoring classifier again")

    cmp = sub.add_parser("compare", help="one table of several runs: size, time, speed and scores")
    cmp.add_argument("run_dirs", type=Path, nargs="+", metavar="RUN_DIR")
    add_flag(cmp, "num_images", type=positive_int, default=1000, help="images per run for scoring")
    add_flag(cmp, "sampler", choices=SAMPLERS, default="dpm++")
    add_flag(cmp, "steps", type=positive_int)
    add_flag(cmp, "device", choices=DEVICES, default="auto")

    watch = sub.add_parser("watch", help="open the app on a training run (from any terminal or SSH session)")
    watch.add_argument("run_dir", type=Path, help="the run folder, e.g. outputs")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        from .app import DdpmApp

        DdpmApp().run()
        return 0
    from core import CheckpointError, ConfigError, DataError, DeviceError, TrainingError

    from . import commands

    try:
        return getattr(commands, args.command)(args)
    except (UsageError, CheckpointError, ConfigError, DataError, DeviceError, TrainingError, ValueError) as err:
        err_console.print(f"ddpm-tui {args.command}: error: {err}", markup=False, soft_wrap=True)
        return EXIT_USAGE


@contextlib.contextmanager
def stop_on_interrupt(request_stop: Callable[[], None]) -> Iterator[None]:
    """While inside: the first Ctrl+C (or SIGTERM) asks for a clean stop, so a checkpoint is saved; a second
    Ctrl+C interrupts at once. The previous handlers come back on exit."""

    def handler(signum: int, frame: object) -> None:
        signal.signal(signal.SIGINT, signal.default_int_handler)
        console.print("\n[yellow]Stopping after this step and saving a checkpoint (Ctrl+C again to abort)...")
        request_stop()

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def progress_bar() -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
        TextColumn("{task.fields[info]}"), TimeElapsedColumn(), TimeRemainingColumn(),
        console=console, transient=True,
    )


def table(*columns: str, title: str | None = None) -> Table:
    t = Table(title=title, title_justify="left")
    for c in columns:
        t.add_column(c, justify="right")
    return t


def fail(message: str) -> NoReturn:
    raise UsageError(message)

