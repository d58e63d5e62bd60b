"""Command-line flags: both spellings of every flag, number types that refuse nan and inf, and the
``train`` flags built from :class:`core.TrainConfig`'s settings (their defaults, help and limits)."""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from dataclasses import Field
from pathlib import Path
from typing import Any

import core
from core.config import check_value, settings


def add_flag(parser: argparse.ArgumentParser | argparse._ArgumentGroup, name: str, **kwargs: Any) -> None:
    """Add ``--name`` with both spellings accepted: the original underscores and dashes."""
    spellings = [f"--{name}"] + ([f"--{name.replace('_', '-')}"] if "_" in name else [])
    parser.add_argument(*spellings, dest=name, **kwargs)


def number(text: str, kind: Callable[[str], Any]) -> Any:
    """``text`` as an int or a finite float (nan and inf are refused: no flag means them)."""
    try:
        value = kind(text)
    except ValueError:
        value = None
    if value is None or not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected {'an integer' if kind is int else 'a finite number'}, got {text!r}")
    return value


def bounded(kind: Callable[[str], Any], low: float | None = None, message: str = "") -> Callable[[str], Any]:
    """An argparse type: a number of ``kind`` that is at least ``low``, else ``message``."""

    def parse(text: str) -> Any:
        value = number(text, kind)
        if low is not None and value < low:
            raise argparse.ArgumentTypeError(f"{message}, got {text}")
        return value

    parse.__name__ = kind.__name__
    return parse


positive_int = bounded(int, 1, "must be a positive integer")
non_negative_float = bounded(float, 0, "must be 0 or more")


CLASS_LABEL_HELP = (
    "conditional models: draw this class, by name or index in sorted order, or 'all' for one row per class "
    "(default all)"
)


def _setting_type(spec: Field) -> Callable[[str], Any]:
    """Parse a number for the setting ``spec`` and check it against the same limits the config checks."""
    kind = int if str(spec.type).startswith("int") else float

    def parse(text: str) -> Any:
        value = number(text, kind)
        problem = check_value(spec, value)
        if problem is not None:
            raise argparse.ArgumentTypeError(f"{problem}, got {text}")
        return value

    parse.__name__ = kind.__name__
    return parse


def add_setting_flags(parser: argparse.ArgumentParser) -> None:
    """One flag per :class:`core.TrainConfig` field, with its help, choices and limits. Flags left out
    are None, so the config's default (or, when resuming, the checkpoint's value) applies."""
    for spec in settings():
        meta, default = spec.metadata, spec.default
        shown = f" (default {'on' if default is True else 'off' if default is False else default})"
        help_text = (meta["help"] + ("" if default is None else shown)).replace("%", "%%")
        if spec.type.startswith("bool"):
            add_flag(parser, spec.name, action=argparse.BooleanOptionalAction, default=None, help=help_text)
        elif meta["choices"] is not None:
            add_flag(parser, spec.name, choices=meta["choices"], help=help_text)
        elif spec.name == "channel_mults":
            add_flag(parser, spec.name, type=positive_int, nargs="+", help=help_text)
        elif "str" in str(spec.type):
            add_flag(parser, spec.name, type=str, help=help_text)
        else:
            add_flag(parser, spec.name, type=_setting_type(spec), help=help_text)


def setting_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """The settings given on the command line (see :func:`core.config.resolve_overrides`)."""
    names = {spec.name for spec in settings()}
    given = {k: v for k, v in vars(args).items() if k in names and v is not None}
    return core.resolve_overrides(given, getattr(args, "model", None))


def add_edit_flags(parser: argparse.ArgumentParser, export_dir: str, images_required: bool = False) -> None:
    """The flags the editing commands (invert, interpolate, inpaint) share: the checkpoint, the images to
    start from (a folder of PNGs, or held-out images of a dataset), how many, the seed, the device and where
    the results go."""
    add_flag(parser, "checkpoint", type=Path, required=True, help="e.g. outputs/model_final.pt")
    source = parser.add_mutually_exclusive_group(required=images_required)
    add_flag(source, "images", type=Path, help="a folder of PNG images the model can take")
    if not images_required:
        add_flag(
            source, "dataset", choices=core.DATASETS, help="held-out images of this dataset (default: the model's)"
        )
    add_flag(parser, "num_images", type=positive_int, default=64, help="images to use (default 64)")
    add_flag(parser, "seed", type=int, default=0, help="seed of the image choice and the noise")
    add_flag(
        parser, "export_dir", type=Path, default=Path(export_dir), help=f"where the PNGs go (default {export_dir})"
    )
    add_flag(parser, "device", choices=core.DEVICES, default="auto")


def held_out_images(config: core.TrainConfig, dataset: str | None = None) -> core.Dataset:
    """The held-out images an edit starts from: those of ``--dataset``, or those the model's run held out
    (a folder's held-out images, or its dataset's test set)."""
    return core.load_dataset(dataset, "test") if dataset else core.run_data(config, "test")
