"""The Train dashboard's run summary: state, epoch and run progress, speed, ETA, the compute threads it
runs with and why, and the error if it failed.

Its state is four reactive attributes (the run folder, its status, its config and its latest step
record); setting any of them redraws the summary, so whoever follows the run only assigns.
"""

from __future__ import annotations

from pathlib import Path

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.reactive import reactive
from textual.widgets import Label, ProgressBar, Static

import core

ENDED = ("finished", "failed", "stopped")


def clock(seconds: float) -> str:
    """``m:ss``."""
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes}:{secs:02d}"


class RunDashboard(Vertical):
    """What a followed training run is doing, redrawn whenever its state changes."""

    folder: reactive[Path | None] = reactive(None, init=False)
    status: reactive[core.RunStatus | None] = reactive(None, init=False)
    config: reactive[dict] = reactive(dict, init=False)
    last_step: reactive[dict] = reactive(dict, init=False)

    def compose(self) -> ComposeResult:
        yield Static("No run yet: fill in Setup and press ctrl+s.", id="run-state")
        with Horizontal(classes="bars"):
            yield Label("epoch", classes="bar-label")
            yield ProgressBar(id="epoch-bar", show_eta=False)
        with Horizontal(classes="bars"):
            yield Label("run", classes="bar-label")
            yield ProgressBar(id="run-bar", show_eta=False)
        yield Static("", id="run-stats")
        yield Static("", id="run-error")

    @property
    def running(self) -> bool:
        """Whether the followed run's process is alive."""
        return self.status is not None and self.status.active

    @property
    def ended(self) -> bool:
        return self.status is not None and self.status.state in ENDED

    def watch_folder(self) -> None:
        self.redraw()

    def watch_status(self) -> None:
        self.redraw()

    def watch_config(self) -> None:
        self.redraw()

    def watch_last_step(self) -> None:
        self.redraw()

    def redraw(self) -> None:
        state = self.status.state if self.status else "starting"
        if self.status is not None and self.status.state in ("running", "paused") and not self.status.active:
            state = "ended unexpectedly (its process is gone)"
        self.query_one("#run-state", Static).update(f"[b]{self.folder}[/b]: {state}")
        error = self.query_one("#run-error", Static)
        error.display = bool(self.status and self.status.error)
        if error.display:
            error.update(f"[b red]Training failed[/]\n{self.status.error}")
        s, cfg = self.last_step, self.config
        if not s:
            return
        epochs = cfg.get("epochs", s["epoch"])
        total = s["batches"] * epochs
        self.query_one("#epoch-bar", ProgressBar).update(total=s["batches"], progress=s["batch"])
        self.query_one("#run-bar", ProgressBar).update(total=total, progress=s["step"])
        eta = s["elapsed"] / s["step"] * (total - s["step"]) if s["step"] else 0.0
        self.query_one("#run-stats", Static).update(
            f"epoch {s['epoch']}/{epochs}  step {s['step']}/{total}  loss {s['loss']:.4f}  "
            f"{s['images_per_sec']:.0f} img/s  elapsed {clock(s['elapsed'])}  ETA {clock(eta)}\n"
            f"{cfg.get('device', '')}  {cfg.get('parameters', 0):,} parameters  {cfg.get('data_source', '')}"
            + (f"\nthreads: {s['sharing']}" if s.get("sharing") else "")
        )
