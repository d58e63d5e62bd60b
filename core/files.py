"""Where compiled code is kept, and checks on the folders the commands, the trainer and the app write to."""

from __future__ import annotations

import os
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


def compile_cache_dir() -> Path:
    """Where the packages and inductor's own cache live: ``$TORCHINDUCTOR_CACHE_DIR`` when set, otherwise
    ``ddpm-tui/compiled`` in the user's cache folder (``$XDG_CACHE_HOME`` or ``~/.cache``), which outlives
    a reboot, unlike inductor's own default under /tmp."""
    if "TORCHINDUCTOR_CACHE_DIR" in os.environ:
        return Path(os.environ["TORCHINDUCTOR_CACHE_DIR"])
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "ddpm-tui" / "compiled"
