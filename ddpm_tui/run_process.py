"""A training run started from the app: ``ddpm-tui train`` as its own process, in a new session, so closing
the app or losing the SSH connection leaves it running; its output goes to ``train.log``."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import core


class TrainingProcess:
    """Starts the run in ``folder`` with the train flags ``args``, and says when it died unannounced."""

    def __init__(self, folder: Path, args: list[str]) -> None:
        self.folder = folder
        with open(folder / "train.log", "w") as log:
            self.popen = subprocess.Popen(
                [sys.executable, "-m", "ddpm_tui", "train", *args],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        (folder / "status.json").unlink(missing_ok=True)

    @property
    def pid(self) -> int:
        return self.popen.pid

    def exited(self) -> bool:
        return self.popen.poll() is not None

    def failure(self) -> core.RunStatus | None:
        """After the process exited: a "failed" status with the end of its log when the run itself never
        reported how it ended (it crashed before, or while, starting); None when it did."""
        status = core.read_status(self.folder)
        if status is not None and status.state not in ("running", "paused"):
            return None
        return core.RunStatus(self.pid, "failed", 0, 0, time.time(), error=self.log_tail())

    def log_tail(self, lines: int = 3) -> str:
        try:
            text = (self.folder / "train.log").read_text().strip()
        except OSError:
            return "the process exited"
        return "\n".join(text.splitlines()[-lines:]) or "the process exited"
