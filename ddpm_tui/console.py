"""What every command prints with: Rich consoles, one-line errors, progress bars, tables, and Ctrl+C."""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Callable, Iterator
from typing import NoReturn

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

EXIT_USAGE = 2
console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False)


class UsageError(Exception):
    """Bad input: printed as one line, exit status 2."""


def fail(message: str) -> NoReturn:
    """Stop the command with a one-line usage error."""
    raise UsageError(message)


@contextlib.contextmanager
def stop_on_interrupt(request_stop: Callable[[], None], quiet: bool = False) -> Iterator[None]:
    """While inside: the first Ctrl+C (or SIGTERM) asks for a clean stop, so a checkpoint is saved; a second
    Ctrl+C interrupts at once. The previous handlers come back on exit. ``quiet``: say nothing."""

    def handler(signum: int, frame: object) -> None:
        signal.signal(signal.SIGINT, signal.default_int_handler)
        if not quiet:
            console.print("\n[yellow]Stopping after this step and saving a checkpoint (Ctrl+C again to abort)...")
        request_stop()

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def progress_bar() -> Progress:
    """A transient bar with a description, count, free-text ``info`` field, elapsed and remaining time."""
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[info]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=True,
    )


def table(*columns: str, title: str | None = None) -> Table:
    """A Rich table with right-aligned columns."""
    t = Table(title=title, title_justify="left")
    for c in columns:
        t.add_column(c, justify="right")
    return t
