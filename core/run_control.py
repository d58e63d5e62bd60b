"""How a training process and its watchers talk through the run folder.

A training run may outlive the terminal that started it, so it is steered through two small files:

``status.json``   written by the trainer: pid, state (running, paused, finished, failed, stopped), step,
                  epoch, a heartbeat timestamp, and the error of a failed run;
``control.json``  written by anyone (the app, a user): ``{"request": "pause" | "resume" | "stop"}``,
                  picked up by the trainer between steps.

Both are replaced atomically (write a temporary file, then rename), so a reader never sees half a file.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

STATUS_FILE = "status.json"
CONTROL_FILE = "control.json"
STATES: tuple[str, ...] = ("running", "paused", "finished", "failed", "stopped")
REQUESTS: tuple[str, ...] = ("pause", "resume", "stop")
HEARTBEAT_S = 1.0
PAUSE_POLL_S = 0.2


@dataclass(frozen=True)
class RunStatus:
    pid: int
    state: str
    step: int
    epoch: int
    heartbeat: float
    error: str | None = None

    @property
    def active(self) -> bool:
        """Running or paused, and its process still alive."""
        return self.state in ("running", "paused") and process_alive(self.pid)


def process_alive(pid: int) -> bool:
    """Whether a process with this pid exists (signal 0 checks without sending anything)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _write_json(path: Path, value: dict) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(value))
    os.replace(tmp, path)


def _read_json(path: Path) -> dict | None:
    try:
        value = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None
    return value if isinstance(value, dict) else None


def read_status(folder: str | Path) -> RunStatus | None:
    """The run's last reported status, or None when the folder has none (or it is unreadable)."""
    value = _read_json(Path(folder) / STATUS_FILE)
    try:
        return RunStatus(**value) if value is not None else None
    except TypeError:
        return None


def send_request(folder: str | Path, request: str) -> None:
    """Ask the run in ``folder`` to pause, resume or stop (obeyed between training steps)."""
    if request not in REQUESTS:
        raise ValueError(f"unknown request {request!r}; choose one of {', '.join(REQUESTS)}")
    _write_json(Path(folder) / CONTROL_FILE, {"request": request, "time": time.time()})


class RunControl:
    """The trainer's side: report status (throttled heartbeats) and read requests cheaply."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.pid = os.getpid()
        self._last_beat = 0.0
        self._control_version: tuple[int, int] | None = None
        self.ended = False
        (folder / CONTROL_FILE).unlink(missing_ok=True)

    def report(self, state: str, step: int, epoch: int, error: str | None = None, force: bool = True) -> None:
        """Write ``status.json``; with ``force=False`` only if a heartbeat is due."""
        if state not in STATES:
            raise ValueError(f"unknown run state {state!r}")
        now = time.time()
        if not force and now - self._last_beat < HEARTBEAT_S:
            return
        self.ended = state in ("finished", "failed", "stopped")
        self._last_beat = now
        _write_json(self.folder / STATUS_FILE, asdict(RunStatus(self.pid, state, step, epoch, now, error)))

    def pending_request(self) -> str | None:
        """The newest request, read only when ``control.json`` has changed since the last look."""
        path = self.folder / CONTROL_FILE
        try:
            stat = path.stat()
        except FileNotFoundError:
            return None
        version = (stat.st_ino, stat.st_mtime_ns)  # each request is a new file (atomic replace)
        if version == self._control_version:
            return None
        self._control_version = version
        value = _read_json(path) or {}
        request = value.get("request")
        return request if request in REQUESTS else None


class NoControl:
    """What every process but rank 0 holds when several train one model (see :mod:`core.distributed`):
    rank 0 alone reports the run's state and reads requests; the others learn of them by agreement."""

    ended = False

    def report(self, state: str, step: int, epoch: int, error: str | None = None, force: bool = True) -> None:
        """Nothing: rank 0 writes ``status.json``."""

    def pending_request(self) -> str | None:
        return None
