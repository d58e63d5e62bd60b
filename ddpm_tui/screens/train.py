"""The Train screen: start a training run as its own process and watch it learn, live.

Training runs as ``ddpm-tui train ...`` in a new session, detached from the terminal, so closing the
app or losing the SSH connection leaves it running. The screen follows the run folder from a
background thread (see :mod:`ddpm_tui.follow`) and steers the run through its control file.
"""

from __future__ import annotations

import time
from pathlib import Path

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.screen import Screen
from textual.widgets import (
    Button,
    Footer,
    Header,
    Input,
    Label,
    Markdown,
    Select,
    Static,
    TabbedContent,
    TabPane,
    Tabs,
)
from textual.worker import get_current_worker

import core

from ..follow import RunFollower, RunUpdate
from ..run_process import TrainingProcess
from ..widgets import HalfBlockImage, LossChart, QualityChart, RunDashboard, TrainForm

POLL_S = 0.25
CHART_EVERY_S = 1.0

EXPLANATION = """\
### What you are seeing

The network sees a noisy image x_t and the step t and predicts {target}. The loss is the mean
squared error of that prediction (**L_simple**). An untrained network predicts 0, so the loss starts
near **1**. {loss_line}

**Why predict the noise (or v)?** Its scale is the same at every t (the noise is always N(0, I)),
whereas the clean image would be easy to guess at small t and impossible at large t; from the
prediction, the clean image follows in one line, x0_hat = (x_t - sqrt(1 - ᾱ_t) ε_hat) / sqrt(ᾱ_t).
**Time embedding.** t enters as sinusoids (like a Transformer's positions) through an MLP, added to
every residual block, so one network serves all {timesteps} steps.
**Skip connections.** The U-Net's down path halves the resolution twice; each up-path block gets the
matching down-path activations concatenated, so fine strokes need not squeeze through the bottleneck.
**Preview quality** (the chart beside the loss): after each epoch the scoring classifier rates the
64 preview images, the share it recognises and how evenly they spread over the classes (while they
are nearly all one class, the chart's title says the recognised share means little).
"""

TARGETS = {
    "eps": "the noise ε that was added",
    "v": "the velocity v = sqrt(ᾱ_t) ε - sqrt(1 - ᾱ_t) x_0, a mix of the noise and the image",
}


class ProcessEnded(Message):
    """Posted by the follower thread when the training process this screen started has exited."""


class RunUpdated(Message):
    """Posted by the follower thread when the run folder changed."""

    def __init__(self, update: RunUpdate) -> None:
        super().__init__()
        self.update = update


class TrainScreen(Screen):
    """A form to start training, and a live dashboard of the run in the output folder."""

    TITLE = "Train: learn to predict the noise"
    AUTO_FOCUS = "Tabs"
    BINDINGS = [
        Binding("ctrl+s", "start", "Start"),
        Binding("f6,ctrl+space", "pause", "Pause/Resume"),
        Binding("f7,ctrl+x", "stop", "Stop"),
        Binding("f8", "toggle_log", "Log scale"),
        Binding("f9", "toggle_window", "Last 200 steps"),
        Binding("escape", "dashboard", "Dashboard", show=False),
    ]

    def __init__(self, defaults: dict[str, str] | None = None, watch: str | None = None) -> None:
        super().__init__()
        self.defaults = defaults or {}
        self.watch_folder = watch
        self.process: TrainingProcess | None = None
        self._last_chart = 0.0

    def compose(self) -> ComposeResult:
        yield Header()
        with TabbedContent(initial="setup", id="train-tabs"):
            with TabPane("Setup", id="setup"):
                yield TrainForm(self.defaults, id="train-form")
                yield Label("", id="form-message")
                with Horizontal(id="train-buttons"):
                    yield Button("Start (ctrl+s)", id="start", variant="success", compact=True)
                    yield Button("Pause/Resume (f6)", id="pause", compact=True)
                    yield Button("Stop (f7)", id="stop", variant="error", compact=True)
            with TabPane("Dashboard", id="dashboard"):
                with Vertical():
                    yield RunDashboard(id="run-dashboard")
                    with Horizontal(id="charts"):
                        yield LossChart(id="loss-chart")
                        yield QualityChart(id="quality-chart")
            with TabPane("Samples", id="samples"):
                yield Static(
                    "Samples appear after each epoch (the same noise every epoch, so they compare).",
                    id="sample-caption",
                )
                yield HalfBlockImage(id="sample-grid")
            with TabPane("Learn", id="learn"):
                yield Markdown(id="train-explanation")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#run-error").display = False
        self.query_one(QualityChart).draw()
        self.validate_form()
        self.update_explanation()
        folder = self.watch_folder or self.query_one(TrainForm).output_dir
        status = core.read_status(folder)
        if self.watch_folder or (status is not None and status.active):
            self.follow(Path(folder))

    # ----- the form -------------------------------------------------------------------------------

    @on(Input.Changed)
    @on(Select.Changed, "#dataset")
    def validate_form(self) -> bool:
        """Show the first invalid field's message; Start is enabled only when every field is valid."""
        problems = self.query_one(TrainForm).problems()
        self.query_one("#form-message", Label).update(f"[red]{problems[0]}[/]" if problems else "")
        self.query_one("#start", Button).disabled = bool(problems) or self.running
        return not problems

    def form_args(self) -> list[str]:
        return self.query_one(TrainForm).args()

    @property
    def running(self) -> bool:
        return self.dashboard.running

    @property
    def dashboard(self) -> RunDashboard:
        """The run summary, which owns the followed run's state."""
        return self.query_one(RunDashboard)

    @property
    def run_folder(self) -> Path | None:
        return self.dashboard.folder

    @property
    def status(self) -> core.RunStatus | None:
        return self.dashboard.status

    @property
    def config(self) -> dict:
        return self.dashboard.config

    # ----- actions --------------------------------------------------------------------------------

    @on(Button.Pressed, "#start")
    def action_start(self) -> None:
        """Launch ``ddpm-tui train`` as its own process (new session: it survives the terminal)."""
        if not self.validate_form() or self.running:
            return
        folder = Path(self.query_one(TrainForm).output_dir)
        status = core.read_status(folder)
        if status is not None and status.active:
            self.notify(f"a run is already going in {folder}; following it", severity="warning")
            self.follow(folder)
            return
        try:
            core.check_writable(folder)
        except core.OutputError as err:
            self.notify(str(err), severity="error")
            return
        self.process = TrainingProcess(folder, self.form_args())
        self.notify(f"training started (pid {self.process.pid}); it keeps running if you close the app")
        self.follow(folder)

    @on(Button.Pressed, "#pause")
    def action_pause(self) -> None:
        if self.run_folder is None or not self.running:
            self.notify("no run is going", severity="warning")
            return
        request = "resume" if self.status.state == "paused" else "pause"
        core.send_request(self.run_folder, request)
        self.notify(f"{request} requested")

    @on(Button.Pressed, "#stop")
    def action_stop(self) -> None:
        if self.run_folder is None or not self.running:
            self.notify("no run is going", severity="warning")
            return
        core.send_request(self.run_folder, "stop")
        self.notify("stop requested: the run saves checkpoint.pt and ends")

    def action_dashboard(self) -> None:
        self.show_tab("dashboard")

    def show_tab(self, name: str) -> None:
        """Switch tab, moving focus to the tab bar first: a focused input would pull its tab back."""
        self.query_one(Tabs).focus()
        self.query_one(TabbedContent).active = name

    def action_toggle_log(self) -> None:
        self.loss_chart.toggle_log_scale()

    def action_toggle_window(self) -> None:
        self.loss_chart.toggle_window()

    # ----- following a run ------------------------------------------------------------------------

    def follow(self, folder: Path) -> None:
        """Start (or restart) the follower thread on ``folder``, clearing what was shown."""
        dashboard = self.dashboard
        dashboard.folder, dashboard.status, dashboard.config, dashboard.last_step = folder, None, {}, {}
        self.loss_chart.reset()
        self.query_one(QualityChart).reset()
        self.show_tab("dashboard")
        self.follow_run(folder)

    @work(thread=True, exclusive=True, group="follow")
    def follow_run(self, folder: Path) -> None:
        """Background thread: poll the run folder and post what changed, about four times a second."""
        worker = get_current_worker()
        follower = RunFollower(folder)
        process = self.process
        while not worker.is_cancelled:
            update = follower.poll()
            if process is not None and process.exited() and not update.status:
                update.status = process.failure()
                process = None
                self.post_message(ProcessEnded())
            if update:
                self.post_message(RunUpdated(update))
            time.sleep(POLL_S)

    @on(ProcessEnded)
    def forget_process(self) -> None:
        self.process = None

    @on(RunUpdated)
    def apply_update(self, message: RunUpdated) -> None:
        update = message.update
        dashboard = self.dashboard
        with self.app.batch_update():
            if update.config:
                dashboard.config = update.config
            steps = [record for record in update.records if record.get("kind") == "step"]
            epochs = [record for record in update.records if record.get("kind") == "epoch"]
            self.loss_chart.add_steps(steps)
            if steps:
                dashboard.last_step = steps[-1]
            quality = self.query_one(QualityChart)
            for record in epochs:
                quality.add_epoch(record)
            if epochs:
                quality.draw()
            if update.status is not None:
                dashboard.status = update.status
                self.validate_form()
            if update.sample_path is not None:
                self.show_samples(update.sample_path)
            if update.records and (dashboard.ended or time.monotonic() - self._last_chart >= CHART_EVERY_S):
                self._last_chart = time.monotonic()
                self.loss_chart.draw()
                self.update_explanation()

    def show_samples(self, path: Path) -> None:
        size = self.config.get("image_shape", [1, 28, 28])[-1]
        try:
            images = core.read_grid(path, size)
        except OSError:
            return
        widget = self.query_one("#sample-grid", HalfBlockImage)
        shrink = 2 if self.size.height < 40 else 1
        columns = max(1, (self.size.width - 4) // (size // shrink + 1))
        widget.update(images[: columns * 2], columns=columns, shrink=shrink)
        self.query_one("#sample-caption", Static).update(
            f"{path.name}: the first {min(len(images), columns * 2)} of 64 samples (same noise every epoch)"
        )

    @property
    def loss_chart(self) -> LossChart:
        return self.query_one(LossChart)

    def update_explanation(self) -> None:
        chart = self.loss_chart
        if chart.losses:
            line = (
                f"Now, after {chart.steps[-1]} steps, it is **{chart.losses[-1]:.4f}** "
                f"(smoothed {chart.smoothed[-1]:.4f})."
            )
        else:
            line = "Start a run to watch it fall."
        timesteps = self.config.get("timesteps", 1000)
        target = TARGETS[self.config.get("prediction", core.TrainConfig().prediction)]
        self.query_one("#train-explanation", Markdown).update(
            EXPLANATION.format(loss_line=line, timesteps=timesteps, target=target)
        )
