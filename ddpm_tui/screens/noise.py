"""The Noise screen: images dissolving into noise, one timestep at a time (the forward process)."""

from __future__ import annotations

from pathlib import Path

import torch
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.reactive import reactive
from textual.screen import ModalScreen, Screen
from textual.widgets import Footer, Header, Input, Markdown, Static
from textual_plotext import PlotextPlot

import core

from ..widgets import HalfBlockImage
from ..widgets.curves import Curve, plot_curves

IMAGE_GAP = 1
MAX_IMAGES = 12
PLAY_FPS = 20
PLAY_STRIDE = 10
SMALL_HEIGHT = 32

EXPLANATION = """\
### What you are seeing

**Forward diffusion.** Each step adds a little Gaussian noise, with variance **β_t** from the
*{schedule}* schedule. Keeping **α_t = 1 − β_t** of the signal at every step leaves
**ᾱ_t = α_1 ⋯ α_t** of its variance after t steps, so any x_t is one line away from x_0
(the equation above): no loop needed. That is why training can pick a random t for every image.

At t = {t}, ᾱ_t = {alpha_bar:.4f}: the image keeps **{signal:.0%}** of its amplitude and the noise
has **{noise:.0%}**. Press **s** to compare schedules: cosine destroys information more evenly.
"""


# The keys that move t, on every screen that shows one timestep (actions ``move`` and ``jump``).
TIME_BINDINGS = [
    Binding("left", "move(-1)", "t-1"),
    Binding("right", "move(1)", "t+1"),
    Binding("shift+left", "move(-50)", "t-50", show=False),
    Binding("shift+right", "move(50)", "t+50", show=False),
    Binding("home", "jump(0)", "t=0", show=False),
    Binding("end", "jump(-1)", "t=T-1", show=False),
]


class FolderPrompt(ModalScreen[Path | None]):
    """Asks for a folder of the learner's images; closes with its path once it holds images it can use."""

    BINDINGS = [Binding("escape", "dismiss(None)", "Cancel")]

    def compose(self) -> ComposeResult:
        with Vertical(id="folder-dialog"):
            yield Static(
                f"A folder of your images ({' '.join(core.SUFFIXES)}; sub-folders are classes). Enter opens it, "
                "Esc cancels:"
            )
            yield Input(placeholder="~/pictures/sprites", id="folder-path")
            yield Static("", id="folder-problem")

    @on(Input.Submitted)
    def open_folder(self, event: Input.Submitted) -> None:
        path = Path(event.value.strip()).expanduser()
        try:
            core.list_folder(path)
        except core.DataError as err:
            self.query_one("#folder-problem", Static).update(f"[red]{err}[/]")
            return
        self.dismiss(path)


class FolderLoaded(Message):
    """A folder of images was decoded (``data``), or could not be (``error``)."""

    def __init__(self, data: core.Dataset | None, error: str = "") -> None:
        super().__init__()
        self.data, self.error = data, error


class NoiseScreen(Screen):
    """Dataset images at timestep t; keys move t, switch schedule and dataset, or play the whole process."""

    TITLE = "Noise: the forward process"
    BINDINGS = [
        *TIME_BINDINGS,
        Binding("p", "play", "Play"),
        Binding("s", "toggle_schedule", "Schedule"),
        Binding("r", "redraw", "New images"),
        Binding("d", "toggle_dataset", "Dataset"),
        Binding("o", "open_folder", "Your images"),
        Binding("l", "toggle_snr", "SNR chart"),
        Binding("z", "toggle_zoom", "Zoom x2", show=False),
    ]

    t: reactive[int] = reactive(0)

    def __init__(self, timesteps: int = 1000, seed: int = 0) -> None:
        super().__init__()
        self.timesteps = timesteps
        self.schedule_name = core.TrainConfig().schedule
        self.dataset = "mnist"
        self.unavailable: set[str] = set()
        self.schedule = core.NoiseSchedule.create(self.schedule_name, timesteps)
        self.generator = torch.Generator().manual_seed(seed)
        self.show_snr = False
        self.playing = False
        self.direction = 1
        self._timer = None
        self._data: dict[str, core.Dataset] = {}
        self.x0 = torch.zeros(0)
        self.noise = torch.zeros(0)

    def compose(self) -> ComposeResult:
        yield Header()
        with Vertical(id="noise-body"):
            yield HalfBlockImage(id="noise-images", gap=IMAGE_GAP)
            yield Static(id="equation")
            with Horizontal(id="noise-lower"):
                yield PlotextPlot(id="schedule-chart")
                yield Markdown(id="noise-explanation")
        yield Footer()

    def on_mount(self) -> None:
        self.draw_images()
        self.refresh_view()

    def on_resize(self) -> None:
        if self.image_count() != len(self.x0):
            self.draw_images()
            self.refresh_view()

    @property
    def shrink(self) -> int:
        """Half-resolution images below 32 rows, so an 80x24 terminal keeps room for the chart."""
        return 2 if self.size.height < SMALL_HEIGHT and self.query_one(HalfBlockImage).scale == 1 else 1

    def image_count(self) -> int:
        """As many images as fit across the screen, at most 12."""
        widget = self.query_one(HalfBlockImage)
        width = self.size.width - 2
        size = self.dataset_images().image_shape[-1]
        cell = size * widget.scale // self.shrink + IMAGE_GAP
        return max(1, min(MAX_IMAGES, (width + IMAGE_GAP) // cell))

    def dataset_images(self, name: str | None = None) -> core.Dataset:
        """The training images of ``name`` (default: the shown dataset), loaded once (a folder's when it
        was opened with o)."""
        name = name or self.dataset
        if name not in self._data:
            if name == core.FOLDER:
                raise core.DataError("press o to open a folder of your images")
            self._data[name] = core.load_dataset(name, "train")
        return self._data[name]

    def draw_images(self) -> None:
        """Pick new images and a fixed noise sample for them."""
        self.x0, self.noise = core.forward_examples(self.dataset_images(), self.image_count(), self.generator)

    def noisy_images(self) -> torch.Tensor:
        """x_t for the shown images at the current t (closed form, so t can jump anywhere)."""
        return self.schedule.q_sample(self.x0, torch.full((len(self.x0),), self.t), self.noise)

    def watch_t(self) -> None:
        if self.is_mounted:
            self.refresh_view()

    def refresh_view(self) -> None:
        t, s = self.t, self.schedule
        alpha_bar = s.alpha_bars[t].item()
        signal, noise = s.sqrt_alpha_bars[t].item(), s.sqrt_one_minus_alpha_bars[t].item()
        with self.app.batch_update():
            self.query_one(HalfBlockImage).update(self.noisy_images(), columns=len(self.x0), shrink=self.shrink)
            self.query_one("#equation", Static).update(
                f"[b]t = {t}[/b] / {self.timesteps - 1}   {s.name} schedule   β_t = {s.betas[t].item():.5f}   "
                f"ᾱ_t = {alpha_bar:.4f}\n"
                f"x_t = √ᾱ_t·x_0 + √(1−ᾱ_t)·ε = [b]{signal:.3f}[/b]·x_0 + [b]{noise:.3f}[/b]·ε"
            )
            self.query_one(Markdown).update(
                EXPLANATION.format(schedule=s.name, t=t, alpha_bar=alpha_bar, signal=signal, noise=noise)
            )
            self.draw_chart()

    def draw_chart(self) -> None:
        chart = self.query_one(PlotextPlot)
        plt = chart.plt
        plt.clear_data()
        plt.clear_figure()
        steps = list(range(self.timesteps))
        if self.show_snr:
            snr = Curve("log10 ᾱ/(1-ᾱ)", steps, torch.log10(self.schedule.snr()).tolist())
            plot_curves(plt, "signal-to-noise ratio", [snr], chart.size.width, "t")
        else:
            alpha_bar = Curve("ᾱ_t", steps, self.schedule.alpha_bars.tolist())
            beta = Curve("β_t (right)", steps, self.schedule.betas.tolist(), {"yside": "right"})
            plot_curves(plt, f"{self.schedule.name} schedule", [alpha_bar, beta], chart.size.width, "t")
        plt.vline(self.t)
        chart.refresh()

    def action_move(self, delta: int) -> None:
        self.t = min(self.timesteps - 1, max(0, self.t + delta))

    def action_jump(self, where: int) -> None:
        self.t = 0 if where == 0 else self.timesteps - 1

    def action_play(self) -> None:
        """Play t from 0 to T-1 and back (press again to pause)."""
        self.playing = not self.playing
        if self.playing:
            self._timer = self.set_interval(1 / PLAY_FPS, self._advance)
        elif self._timer is not None:
            self._timer.stop()
            self._timer = None

    def _advance(self) -> None:
        nxt = self.t + self.direction * PLAY_STRIDE
        if not 0 <= nxt < self.timesteps:
            self.direction = -self.direction
            nxt = min(self.timesteps - 1, max(0, nxt))
        self.t = nxt

    def action_toggle_schedule(self) -> None:
        self.schedule_name = "cosine" if self.schedule_name == "linear" else "linear"
        self.schedule = core.NoiseSchedule.create(self.schedule_name, self.timesteps)
        self.refresh_view()

    def action_redraw(self) -> None:
        self.draw_images()
        self.refresh_view()

    def action_toggle_dataset(self) -> None:
        """The next dataset that loads; one that cannot (CIFAR-10 without its files) is skipped, with a
        notification saying how to get it, and not tried again."""
        names = [name for name in (*core.DATASETS, core.FOLDER) if name not in self.unavailable or name in self._data]
        here = names.index(self.dataset)
        for offset in range(1, len(names)):
            candidate = names[(here + offset) % len(names)]
            try:
                self.dataset_images(candidate)
            except core.DataError as err:
                self.unavailable.add(candidate)
                if candidate != core.FOLDER:
                    self.notify(str(err), title=f"{candidate} skipped", severity="warning", timeout=10)
                continue
            self.dataset = candidate
            break
        self.draw_images()
        self.refresh_view()

    def action_open_folder(self) -> None:
        """Ask for a folder of images, then decode it in the background and show it."""

        def chosen(path: Path | None) -> None:
            if path is not None:
                self.notify(f"decoding the images of {path} (once; then they are cached)")
                self.load_folder(path)

        self.app.push_screen(FolderPrompt(), chosen)

    @work(thread=True, exclusive=True, group="folder")
    def load_folder(self, path: Path) -> None:
        """Background thread: the folder's training images, at the size a training run would take them."""
        try:
            with core.computing("app: decode"):
                self.post_message(FolderLoaded(core.load_folder(path)))
        except core.DataError as err:
            self.post_message(FolderLoaded(None, str(err)))

    @on(FolderLoaded)
    def show_folder(self, message: FolderLoaded) -> None:
        if message.data is None:
            self.notify(message.error, severity="error", timeout=10)
            return
        self._data[core.FOLDER], self.dataset = message.data, core.FOLDER
        self.unavailable.discard(core.FOLDER)
        self.notify(message.data.source, title="your images")
        self.draw_images()
        self.refresh_view()

    def action_toggle_snr(self) -> None:
        self.show_snr = not self.show_snr
        self.draw_chart()

    def action_toggle_zoom(self) -> None:
        widget = self.query_one(HalfBlockImage)
        widget.set_scale(1 if widget.scale == 2 else 2)
        self.draw_images()
        self.refresh_view()

    @property
    def alpha_bar(self) -> float:
        """ᾱ_t at the shown t (what the screen displays)."""
        return self.schedule.alpha_bars[self.t].item()
