"""The command line: ``ddpm-tui [visualize | train | sample | eval | compare | watch | inspect | invert |
interpolate | inpaint | serve]``; no command opens the app.

Each command lives in its own module of :mod:`ddpm_tui.commands`, with its flags beside it. Bad input is
reported as one line on stderr with exit status 2.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
from collections.abc import Sequence
from typing import NoReturn

import core

from .commands import COMMANDS
from .console import EXIT_USAGE, UsageError, err_console
from .flags import add_flag, positive_int

THREADS_HELP = (
    "compute threads (default: this job's share of the cores among the ddpm-tui jobs running, resized as "
    "they start and end)"
)


class Parser(argparse.ArgumentParser):
    """An argparse parser whose errors are a single line on stderr (exit 2), not usage plus message."""

    def error(self, message: str) -> NoReturn:
        message = re.sub(r"argument (--[\w-]+)(/--[\w-]+)?:", r"\1:", message)
        err_console.print(f"{self.prog}: error: {message} (see {self.prog} --help)", markup=False, soft_wrap=True)
        raise SystemExit(EXIT_USAGE)


def build_parser() -> Parser:
    parser = Parser(prog="ddpm-tui", description="Learn denoising diffusion (DDPM) by building one.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    for command in COMMANDS:
        sub_parser = sub.add_parser(command.NAME, help=command.HELP)
        command.add_arguments(sub_parser)
        if getattr(command, "COMPUTES", False):
            add_flag(sub_parser, "threads", type=positive_int, help=THREADS_HELP)
    return parser


ERRORS = (
    UsageError,
    core.CheckpointError,
    core.ConfigError,
    core.DataError,
    core.DeviceError,
    core.DistributedError,
    core.OutputError,
    core.TrainingError,
    ValueError,
)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        from .app import DdpmApp

        DdpmApp().run()
        return 0
    command = next(c for c in COMMANDS if c.NAME == args.command)
    computes = getattr(command, "COMPUTES", False)
    try:
        with core.computing(args.command, args.threads) if computes else contextlib.nullcontext():
            return command.run(args)
    except ERRORS as err:
        if os.environ.get("RANK", "0") == "0":  # under torchrun every process fails alike; rank 0 says why
            err_console.print(f"ddpm-tui {args.command}: error: {err}", markup=False, soft_wrap=True)
        return EXIT_USAGE
