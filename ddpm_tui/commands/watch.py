"""``ddpm-tui watch RUN_DIR``: the app's Train screen following a run, from any terminal."""

from __future__ import annotations

import argparse
from pathlib import Path

import core

from ..console import fail

NAME = "watch"
HELP = "open the app on a training run (from any terminal or SSH session)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", type=Path, help="the run folder, e.g. outputs")


def run(args: argparse.Namespace) -> int:
    """Open the app's Train screen following the run in ``run_dir``."""
    if not args.run_dir.is_dir():
        fail(f"no run folder at {args.run_dir}")
    if core.read_status(args.run_dir) is None and not (args.run_dir / "metrics.jsonl").exists():
        fail(f"{args.run_dir} holds no training run (no status.json or metrics.jsonl)")
    from ..app import DdpmApp

    DdpmApp(watch=str(args.run_dir)).run()
    return 0
