"""Checks on the folders the commands, the trainer and the app write to."""

from __future__ import annotations

from pathlib import Path


class OutputError(Exception):
    """A folder that output should go to cannot be written; the message names it and why."""


def check_writable(folder: str | Path) -> None:
    """Create ``folder`` and prove a file can be written there, before any work is done."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / ".write-test"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as err:
        raise OutputError(f"cannot write to output folder {folder}: {err.strerror or err}") from None
