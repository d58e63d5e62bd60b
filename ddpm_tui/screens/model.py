"""The Model screen: inside the trained network: why it predicts noise, why it needs t, what its skips carry."""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from pathlib import Path

import torch
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Footer, Header, Label, Markdown, Select, Static, TabbedContent, TabPane
from textual_plotext import PlotextPlot

import core

from ..widgets import HalfBlockImage
from ..widgets.curves import Curve, plot_curves
from .noise import TIME_BINDINGS

PROFILE_IMAGES = 64
SWEEP_POINTS = 50
EMBEDDING_COLUMNS = 50
IMAGE_GAP = 1
MARKER_RGB = (0.9, -0.6, -0.6)  # the current t in the embedding heat map, in [-1, 1]
CPU = torch.device("cpu")  # the screen loads models on the CPU, beside the app

NO_CHECKPOINT = """\
### No checkpoint yet

Train a model first (press **2**, or run `ddpm-tui train`); its `model_final.pt`, or the
`checkpoint.pt` of a run still training, appears in the list above.
"""
WHY_NOISE = """\
**Why predict the noise.** At t = {t}, ᾱ_t = {alpha_bar:.4f}. The network's noise error is
**{mse_eps:.4f}**; the image it implies, x0_hat = (x_t − √(1−ᾱ_t)·ε_hat)/√ᾱ_t, is off by **{mse_x0:.4f}**:
every unit of noise error costs (1−ᾱ_t)/ᾱ_t = 1/SNR_t = **{factor:.3g}** units of image error here.
{profile}
"""
PROFILE_TEXT = """Over all t (the chart, {count} held-out images) the noise error never exceeds **{eps_high:.2f}**
(guessing ε_hat = 0 would score 1), while the image error grows from **{x0_low:.2g}** at t = 0 to
**{x0_high:.2g}** at t = T−1. The target ε has the same scale at every t, so one network can learn all
t at once; as a target, x_0 would be easy at small t and hopeless at large t."""
WHY_TIME = """\
**Why the network needs t.** x_t was made at t = {t}; the network is told t = **{t_model}**
(`[` `]` move it, `=` tells the truth). Its noise error: **{mse:.4f}** (told the true t: {mse_true:.4f}).
The chart tells it every t for this same x_t: the error is lowest at t = {best}. The map is the
sinusoidal embedding it is told: {dim} dimensions (rows), t across; fast waves on top, slow below.
"""
WHY_SKIPS = """\
**Why skip connections.** The down path shrinks the image to the bottleneck; the skips (══) carry each
level's features straight across to the up path. {cut}
"""


def log10(values: list[float]) -> list[float]:
    """log10 of each error (floored at 1e-12), for charts whose errors span many decades."""
    return [math.log10(max(value, 1e-12)) for value in values]


@dataclass
class Look:
    """What the screen draws for one (image, t, t_model): the prediction, with its skips cut when asked,
    and the noise error for every t the network could be told."""

    right: core.Prediction
    told: core.Prediction
    cut: core.Prediction | None
    sweep_t: list[int]
    sweep: list[float]


class ModelLoaded(Message):
    def __init__(self, key: tuple, loaded: core.LoadedModel, data: core.Dataset) -> None:
        super().__init__()
        self.key, self.loaded, self.data = key, loaded, data


class LookReady(Message):
    def __init__(self, look: Look) -> None:
        super().__init__()
        self.look = look


class ProfileProgress(Message):
    def __init__(self, key: tuple, done: int, total: int, profile: core.ErrorProfile | None = None) -> None:
        super().__init__()
        self.key, self.done, self.total, self.profile = key, done, total, profile


class ModelFailed(Message):
    def __init__(self, error: str) -> None:
        super().__init__()
        self.error = error


class ModelScreen(Screen):
    """A held-out image at step t through the network: x_0, x_t, ε, ε_hat, the error and x0_hat, with a wrong t
    or the skip connections cut, and charts of the errors over t."""

    TITLE = "Model: inside the network"
    BINDINGS = [
        *TIME_BINDINGS,
        Binding("left_square_bracket", "tell(-25)", "told t-25"),
        Binding("right_square_bracket", "tell(25)", "told t+25"),
        Binding("equals_sign", "tell(0)", "told = t", show=False),
        Binding("k", "toggle_skips", "Cut skips"),
        Binding("r", "new_image", "New image"),
        Binding("v", "next_view", "Next view"),
    ]

    def __init__(self, root: str = "outputs", seed: int = 0) -> None:
        super().__init__()
        self.root = Path(root)
        self.generator = torch.Generator().manual_seed(seed)
        self.run_key: tuple | None = None
        self.loaded: core.LoadedModel | None = None
        self.held_out: core.Dataset | None = None
        self.x0 = self.eps = torch.zeros(0)
        self.t, self.told_shift = 250, 0
        self.skips = True
        self.look: Look | None = None
        self.profiles: dict[tuple, core.ErrorProfile] = {}

    def compose(self) -> ComposeResult:
        checkpoints = [(str(p), str(p)) for p in core.find_checkpoints(self.root)]
        yield Header()
        with Vertical(id="model-body"):
            with Horizontal(id="model-top"):
                yield Label("Checkpoint ")
                first = {"value": checkpoints[0][0]} if checkpoints else {}  # no value: the prompt shows
                yield Select(
                    checkpoints, prompt="runs under " + str(self.root), id="model-checkpoint", compact=True, **first
                )
                yield Static("", id="model-status")
            yield Static("", id="model-titles")
            yield HalfBlockImage(id="model-images", gap=IMAGE_GAP)
            yield Static("", id="model-numbers")
            with TabbedContent(id="model-views"):
                with TabPane("Why ε", id="view-noise"):
                    with Horizontal():
                        yield PlotextPlot(id="profile-chart")
                        yield Markdown(NO_CHECKPOINT, id="noise-text")
                with TabPane("Why t", id="view-time"):
                    with Horizontal():
                        yield PlotextPlot(id="sweep-chart")
                        with VerticalScroll(id="embedding-box"):
                            yield Label("the time embedding: dimensions × t", classes="view-title")
                            yield HalfBlockImage(id="embedding")
                            yield Markdown("", id="time-text")
                with TabPane("Skips", id="view-skips"):
                    with Horizontal():
                        yield Static("", id="structure")
                        yield Markdown("", id="skips-text")
        yield Footer()

    def on_mount(self) -> None:
        choice = self.query_one("#model-checkpoint", Select).value
        if choice is not Select.BLANK:
            self.open_checkpoint(str(choice))

    @on(Select.Changed, "#model-checkpoint")
    def checkpoint_chosen(self, event: Select.Changed) -> None:
        if event.value is not Select.BLANK and (self.run_key is None or self.run_key[0] != str(event.value)):
            self.open_checkpoint(str(event.value))

    @work(thread=True, exclusive=True, group="load")
    def open_checkpoint(self, path: str) -> None:
        """Background thread: the model and its dataset's held-out images."""
        try:
            loaded = core.load_model(path)
            data = core.run_data(loaded.config, "test")
            key = (path, Path(path).stat().st_mtime)
        except (core.CheckpointError, core.DataError, OSError) as err:
            self.post_message(ModelFailed(str(err)))
            return
        self.post_message(ModelLoaded(key, loaded, data))

    @on(ModelLoaded)
    def model_loaded(self, message: ModelLoaded) -> None:
        self.run_key, self.loaded, self.held_out = message.key, message.loaded, message.data
        self.t = min(self.t, self.timesteps - 1)
        self.action_new_image()
        self.draw_structure()
        if self.run_key in self.profiles:
            self.draw_profile()
        else:
            self.compute_profile(self.run_key, message.loaded, message.data)

    @on(ModelFailed)
    def model_failed(self, message: ModelFailed) -> None:
        self.notify(message.error, severity="error", timeout=8)

    @property
    def timesteps(self) -> int:
        return self.loaded.schedule.timesteps if self.loaded else 1000

    @property
    def t_model(self) -> int:
        return min(self.timesteps - 1, max(0, self.t + self.told_shift))

    @work(thread=True, exclusive=True, group="profile")
    def compute_profile(self, key: tuple, loaded: core.LoadedModel, data: core.Dataset) -> None:
        """Background thread: the error profile over t on a copy of the model (the view's thread may be
        using the model, and cutting skips changes it), posting progress after each t."""
        model = copy.deepcopy(loaded.model)
        x0 = core.pick_images(data, min(PROFILE_IMAGES, len(data)), torch.Generator().manual_seed(0))
        steps = core.profile_timesteps(loaded.schedule.timesteps)
        with core.computing("app: model"), core.autocast(CPU, core.use_bf16(CPU)):
            profile = core.error_profile(
                model,
                loaded.schedule,
                x0,
                steps,
                torch.Generator().manual_seed(1),
                lambda done, total: self.post_message(ProfileProgress(key, done, total)),
            )
        self.post_message(ProfileProgress(key, len(steps), len(steps), profile))

    @on(ProfileProgress)
    def profile_progress(self, message: ProfileProgress) -> None:
        if message.profile is not None:
            self.profiles[message.key] = message.profile
            if message.key == self.run_key:
                self.draw_profile()
                self.show_look()
        elif message.key == self.run_key:
            self.query_one("#model-status", Static).update(f"errors over t: {message.done}/{message.total}")

    def refresh_look(self) -> None:
        if self.loaded is not None:
            self.compute_look(self.loaded, self.x0, self.eps, self.t, self.t_model, self.skips)

    @work(thread=True, exclusive=True, group="look")
    def compute_look(
        self, loaded: core.LoadedModel, x0: torch.Tensor, eps: torch.Tensor, t: int, t_model: int, skips: bool
    ) -> None:
        """Background thread: the prediction at (x_0, t, ε) told t and t_model, without skips if cut, and
        the sweep over every t the network could be told."""
        model, schedule = loaded.model, loaded.schedule
        with core.computing("app: model"), core.autocast(CPU, core.use_bf16(CPU)):
            right = core.predict(model, schedule, x0, t, eps)
            told = right if t_model == t else core.predict(model, schedule, x0, t, eps, t_model)
            cut = None if skips else core.predict(model, schedule, x0, t, eps, t_model, skips=False)
            sweep_t = core.profile_timesteps(schedule.timesteps, SWEEP_POINTS)
            sweep = core.time_sweep(model, schedule, right.x_t, eps, sweep_t)
        self.post_message(LookReady(Look(right, told, cut, sweep_t, sweep)))

    @on(LookReady)
    def look_ready(self, message: LookReady) -> None:
        self.look = message.look
        self.show_look()

    def panel_shrink(self, panels: int) -> int:
        """The smallest shrink at which ``panels`` images fit across the screen."""
        size = self.x0.shape[-1] if len(self.x0) else 28
        for shrink in (1, 2, 3, 4):
            if panels * (size // shrink + IMAGE_GAP) <= self.size.width - 2 and (shrink > 1 or self.size.height >= 40):
                return shrink
        return 4

    def show_look(self) -> None:
        look = self.look
        if look is None or self.loaded is None:
            return
        pictures = core.panels(look.told)
        titles = list(core.PANELS)
        if look.cut is not None:
            pictures = torch.cat([pictures, core.panels(look.cut)[3:]])
            titles += [f"{name} cut" for name in core.PANELS[3:]]
        shrink = self.panel_shrink(len(pictures))
        cell = pictures.shape[-1] // shrink + IMAGE_GAP
        told = look.told
        with self.app.batch_update():
            self.query_one("#model-titles", Static).update("".join(title[: cell - 1].center(cell) for title in titles))
            self.query_one("#model-images", HalfBlockImage).update(pictures, columns=len(pictures), shrink=shrink)
            numbers = (
                f"[b]t = {self.t}[/b]  told t = {told.t_model}   MSE(ε_hat, ε) = [b]{told.mse_eps:.4f}[/b]   "
                f"MSE(x0_hat, x_0) = [b]{told.mse_x0:.4f}[/b]"
            )
            if look.cut is not None:
                numbers += f"   skips cut: {look.cut.mse_eps:.4f} / {look.cut.mse_x0:.4f}"
            self.query_one("#model-numbers", Static).update(numbers)
            self.draw_texts(look)
            self.draw_profile()
            self.draw_sweep(look)
            self.draw_embedding()

    def draw_texts(self, look: Look) -> None:
        schedule, right = self.loaded.schedule, look.right
        alpha_bar = schedule.alpha_bars[self.t].item()
        profile = self.profiles.get(self.run_key)
        summary = (
            PROFILE_TEXT.format(
                count=PROFILE_IMAGES,
                eps_high=max(profile.mse_eps),
                x0_low=profile.mse_x0[0],
                x0_high=profile.mse_x0[-1],
            )
            if profile
            else "The chart of the errors over all t is being computed."
        )
        self.query_one("#noise-text", Markdown).update(
            WHY_NOISE.format(
                t=self.t,
                alpha_bar=alpha_bar,
                mse_eps=right.mse_eps,
                mse_x0=right.mse_x0,
                factor=(1 - alpha_bar) / alpha_bar,
                profile=summary,
            )
        )
        best = look.sweep_t[min(range(len(look.sweep)), key=look.sweep.__getitem__)]
        self.query_one("#time-text", Markdown).update(
            WHY_TIME.format(
                t=self.t,
                t_model=look.told.t_model,
                mse=look.told.mse_eps,
                mse_true=right.mse_eps,
                best=best,
                dim=core.unet_of(self.loaded.model).base_channels,
            )
        )
        cut = (
            f"Cut now (k): the up path works from the bottleneck alone, and the noise error goes from "
            f"**{look.told.mse_eps:.4f}** to **{look.cut.mse_eps:.4f}**; the fine detail of ε_hat is gone."
            if look.cut is not None
            else "Press **k** to cut them (each skip tensor becomes zeros) and compare the predictions."
        )
        self.query_one("#skips-text", Markdown).update(WHY_SKIPS.format(cut=cut))

    def draw_profile(self) -> None:
        profile = self.profiles.get(self.run_key)
        chart = self.query_one("#profile-chart", PlotextPlot)
        plt = chart.plt
        plt.clear_data()
        plt.clear_figure()
        curves = []
        if profile is not None:
            curves = [
                Curve("noise MSE(ε_hat, ε)", profile.t, log10(profile.mse_eps)),
                Curve("image MSE(x0_hat, x_0)", profile.t, log10(profile.mse_x0)),
            ]
            if not self.skips:
                curves.append(Curve("noise, skips cut", profile.t, log10(profile.mse_eps_no_skips)))
            self.query_one("#model-status", Static).update("")
        plot_curves(plt, "log10 errors over t", curves, chart.size.width, "t")
        if profile is not None:
            plt.vline(self.t)
            plt.xticks(self.t_ticks())
        chart.refresh()

    def draw_sweep(self, look: Look) -> None:
        chart = self.query_one("#sweep-chart", PlotextPlot)
        plt = chart.plt
        plt.clear_data()
        plt.clear_figure()
        sweep = Curve(f"x_t made at t = {self.t}", look.sweep_t, log10(look.sweep))
        plot_curves(plt, "log10 MSE(ε_hat, ε) if told t_model", [sweep], chart.size.width, "t_model")
        plt.vline(self.t)
        plt.xticks(self.t_ticks())
        chart.refresh()

    def t_ticks(self) -> list[int]:
        T = self.timesteps
        return [0, T // 4, T // 2, 3 * T // 4, T - 1]

    def draw_embedding(self) -> None:
        dim = core.unet_of(self.loaded.model).base_channels
        image, steps = core.embedding_map(dim, self.timesteps, EMBEDDING_COLUMNS)
        rgb = image[None].expand(3, -1, -1).clone()
        column = min(range(len(steps)), key=lambda i: abs(steps[i] - self.t_model))
        rgb[:, :, column] = torch.tensor(MARKER_RGB)[:, None]
        self.query_one("#embedding", HalfBlockImage).update(rgb[None], shrink=2 if self.size.height < 40 else 1)

    def draw_structure(self) -> None:
        levels, bottleneck = core.describe_levels(self.loaded.model, self.loaded.image_shape)
        lines = core.structure_lines(levels, bottleneck, core.count_parameters(self.loaded.model))
        self.query_one("#structure", Static).update("\n".join(lines))

    def action_move(self, delta: int) -> None:
        self.t = min(self.timesteps - 1, max(0, self.t + delta))
        self.refresh_look()

    def action_jump(self, where: int) -> None:
        self.t = 0 if where == 0 else self.timesteps - 1
        self.refresh_look()

    def action_tell(self, delta: int) -> None:
        """Move the t the network is told away from the true t (0: tell it the truth again)."""
        self.told_shift = 0 if delta == 0 else self.t_model + delta - self.t
        self.refresh_look()

    def action_toggle_skips(self) -> None:
        self.skips = not self.skips
        self.refresh_look()

    def action_new_image(self) -> None:
        """Another held-out image, with a fixed noise draw for it."""
        if self.held_out is None:
            return
        self.x0 = core.pick_images(self.held_out, 1, self.generator)
        self.eps = torch.randn(self.x0.shape, generator=self.generator)
        self.refresh_look()

    def action_next_view(self) -> None:
        tabs = self.query_one(TabbedContent)
        names = [pane.id for pane in self.query(TabPane)]
        tabs.active = names[(names.index(tabs.active) + 1) % len(names)]
