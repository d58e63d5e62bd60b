"""Following a run folder from outside the training process: new metrics lines, status and samples."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import core


@dataclass
class RunUpdate:
    """What changed in a run folder since the last poll."""

    records: list[dict] = field(default_factory=list)
    status: core.RunStatus | None = None
    config: dict | None = None
    sample_path: Path | None = None

    def __bool__(self) -> bool:
        return bool(self.records) or self.status is not None or self.config is not None or self.sample_path is not None


class RunFollower:
    """Reads a run folder incrementally: each :meth:`poll` returns only what is new.

    ``metrics.jsonl`` is read from where the last poll stopped, and a line still being written (no
    newline yet) waits for the next poll; the status is reported when its heartbeat changes.
    """

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        self._offset = 0
        self._partial = b""
        self._status_beat: tuple[float, str] | None = None
        self._config_seen = False
        self._last_sample: Path | None = None

    def poll(self) -> RunUpdate:
        update = RunUpdate(records=self._new_records())
        status = core.read_status(self.folder)
        if status is not None and (status.heartbeat, status.state) != self._status_beat:
            self._status_beat = (status.heartbeat, status.state)
            update.status = status
        if not self._config_seen and (self.folder / "config.json").exists():
            try:
                update.config = json.loads((self.folder / "config.json").read_text())
                self._config_seen = True
            except (OSError, json.JSONDecodeError):
                pass
        samples = sorted((self.folder / "samples").glob("epoch_*.png"))
        if samples and samples[-1] != self._last_sample:
            self._last_sample = update.sample_path = samples[-1]
        return update

    def _new_records(self) -> list[dict]:
        path = self.folder / "metrics.jsonl"
        try:
            size = path.stat().st_size
        except FileNotFoundError:
            return []
        if size < self._offset:  # the file was rewritten (a resumed run trims it): read it again
            self._offset, self._partial = 0, b""
        with path.open("rb") as f:
            f.seek(self._offset)
            chunk = f.read()
        self._offset += len(chunk)
        lines = (self._partial + chunk).split(b"\n")
        self._partial = lines.pop()
        records = []
        for line in lines:
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                continue
        return records
