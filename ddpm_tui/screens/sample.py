"""The Sample screen: new images emerging from pure noise, step by step (the reverse process)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import torch
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Grid, Horizontal, Vertical
from textual.message import Message
from textual.screen import Screen
from textual.validation import Integer, Number, Validator
from textual.widget import Widget
from textual.widgets import Button, Footer, Header, Input, Label, Markdown, Select, Static
from textual.worker import get_current_worker

import core

from ..widgets import HalfBlockImage, fit_grid

LIVE_FPS = 8
NO_CHECKPOINT = """\
### No checkpoint yet

Train a model first: press **2** for the Train screen and start a run, or run
`ddpm-tui train` in a terminal. Its `model_final.pt` (or `checkpoint.pt` while it is still
training) appears here; you can also type any checkpoint's path.
"""
EXPLANATION = f"""\
### What you are seeing

**Reverse diffusion.** Sampling starts from pure noise x_T and calls the network once per step: it
predicts the noise in x_t, which gives a guess of the clean image **x0_hat** (right), and the sampler
moves x_t a little towards it (left). DDPM adds fresh noise at every step and needs all T steps;
DDIM jumps along a shorter list of steps and, with η = 0, adds none: the same seed gives the same
images. DPM-Solver++ also remembers the previous step's x0_hat and extrapolates (second order), so
20 steps do what DDIM needs 50 for; its SDE form (dpm++sde, the default) adds fresh noise again, η
of DDPM's amount (η = 0 is the deterministic solver): the noise washes out part of the network's
mistakes instead of following them. Coarse shapes settle first, fine strokes in the last steps (small t).

**Class and guidance** (models trained with *conditional* on, the default for clothes): the network
also sees a label. Guidance w mixes its two predictions, ε(x_t, ∅) + w·(ε(x_t, y) − ε(x_t, ∅)): w = 0
ignores the label, w = 1 is the plain conditional model, larger w gives more typical, less varied images
({core.default_guidance_text()} by default). "all" draws every class equally often, one per row.

**Autoguidance** (runs that kept their early EMA weights, the default): the same mix, with the
model's own cruder self from 40% of the way through training in place of ∅,
ε_early + w·(ε − ε_early), on the steps between noise levels σ = {core.GUIDANCE_SIGMA_MIN:g} and
{core.GUIDANCE_SIGMA_MAX:g}, where the shape forms: it pushes away from the mistakes training was still
growing out of. Above σ = {core.GUIDANCE_SIGMA_MAX:g} the digit's class is chosen, and guiding there would
tilt the mix of classes away from those the early self preferred. Guided steps cost two calls, so the
empty step box means fewer steps for the same calls. An empty w box takes the w measured for the
model's dataset
({core.default_autoguidance_text()}); w = 1 turns it off.
"""


@dataclass
class Frame:
    t: int
    x: torch.Tensor
    x0: torch.Tensor


class SampleProgress(Message):
    def __init__(self, frame: Frame, index: int, total: int, seconds: float, keep: bool, done: bool) -> None:
        super().__init__()
        self.frame, self.index, self.total, self.seconds = frame, index, total, seconds
        self.keep, self.done = keep, done


class SampleStarted(Message):
    """The request was valid and sampling began, from a model trained with ``config``, autoguided with w =
    ``autoguidance`` (None: not autoguided), with the network ``compiled`` or not (see :mod:`core.compiling`)."""

    def __init__(self, config: core.TrainConfig, autoguidance: float | None, compiled: bool = False) -> None:
        super().__init__()
        self.config, self.autoguidance, self.compiled = config, autoguidance, compiled


class Scored(Message):
    """The scores of the generated images (None without a classifier for their dataset), in words, and
    each image's nearest training image (None when the training images could not be read)."""

    def __init__(self, scores: core.Scores | None, text: str, nearest: torch.Tensor | None) -> None:
        super().__init__()
        self.scores, self.text, self.nearest = scores, text, nearest


class CheckpointRead(Message):
    """What the checkpoint in the form can be asked for (None: no readable checkpoint there)."""

    def __init__(self, path: str, traits: core.CheckpointTraits | None) -> None:
        super().__init__()
        self.path, self.traits = path, traits


class SampleFailed(Message):
    def __init__(self, error: str) -> None:
        super().__init__()
        self.error = error


NUMBER_FIELDS = [
    (
        "guidance_scale",
        "Guidance w",
        "",
        Number(minimum=0, failure_description="guidance must be 0 or more"),
    ),
    ("autoguidance", "Autoguide w", "", Number(minimum=0, failure_description="autoguidance must be 0 or more")),
    ("num_images", "Images", "16", Integer(minimum=1, maximum=256, failure_description="images: 1 to 256")),
    ("seed", "Seed", "0", Integer(failure_description="the seed must be an integer")),
]


FLOAT_FIELDS = ("eta", "guidance_scale", "autoguidance")
# Rows of the screen that are not images: header, form (five rows and its margins) or its one-line summary,
# buttons, the images' title, footer.
FORM_ROWS, SUMMARY_ROWS = 11, 6
AUTOGUIDANCE_PLACEHOLDER = "by dataset (1: ddpm, classes)"
PLACEHOLDERS = {"autoguidance": AUTOGUIDANCE_PLACEHOLDER, "guidance_scale": "by dataset (classes only)"}


def eta_placeholder(sampler: str) -> str:
    """What an empty η box means for ``sampler`` (ddpm and dpm++ take no η)."""
    return f"{core.DEFAULT_ETA[sampler]:g}" if sampler in core.DEFAULT_ETA else "none"


def steps_placeholder(sampler: str) -> str:
    """What an empty step box means for ``sampler``."""
    if sampler not in core.DEFAULT_STEPS:
        return "all T"
    steps = core.DEFAULT_STEPS[sampler]
    return f"{steps} (fewer autoguided, same calls)"


# The boxes whose meaning depends on the sampler: (id, label, what empty means, whether the sampler takes
# it, validator). Changing the sampler empties them, re-labels the empty value and disables the unused ones.
SAMPLER_FIELDS: list[tuple[str, str, Callable[[str], str], Callable[[str], bool], Validator]] = [
    (
        "steps",
        "Steps",
        steps_placeholder,
        lambda sampler: sampler != "ddpm",
        Integer(minimum=1, failure_description="steps must be positive"),
    ),
    (
        "eta",
        "Noise η",
        eta_placeholder,
        lambda sampler: sampler in core.DEFAULT_ETA,
        Number(minimum=0, failure_description="η must be 0 or more"),
    ),
]


class SampleScreen(Screen):
    """Choose a checkpoint and sampler, generate, then scrub through the stored steps and export."""

    TITLE = "Sample: from noise to images"
    AUTO_FOCUS = "#generate"
    BINDINGS = [
        Binding("ctrl+g,f5", "generate", "Generate"),
        Binding("left", "scrub(-1)", "Earlier step"),
        Binding("right", "scrub(1)", "Later step"),
        Binding("e", "export", "Export"),
        Binding("v", "score", "Score"),
        Binding("f2", "toggle_form", "Form"),
        Binding("escape", "focus_images", "Leave form", show=False),
    ]

    def __init__(self, root: str = "outputs", defaults: dict[str, str] | None = None) -> None:
        super().__init__()
        self.root = Path(root)
        self.defaults = defaults or {}
        self.frames: list[Frame] = []
        self.position = -1
        self.sampling = False
        self.images: torch.Tensor | None = None
        self.exported: Path | None = None
        self.config = core.TrainConfig()  # the run that made the shown images
        self.scores: core.Scores | None = None
        self.nearest: torch.Tensor | None = None  # each shown image's nearest training image, after v
        self.chosen_sampler = core.FAST_SAMPLER
        self.how = ""  # how the running request samples, when there is more to say than the sampler
        self.shown_guidance = ""  # the dataset's default guidance w last put in its field (replaced on a new model)
        self.loaded: tuple[tuple, core.LoadedModel] | None = None  # the last checkpoint sampled, and its file's stamp
        self.evaluators: dict[str, core.Evaluator] = {}  # by dataset: its reference features take seconds to build

    def compose(self) -> ComposeResult:
        checkpoints = [(str(p), str(p)) for p in core.find_checkpoints(self.root)]
        yield Header()
        with Vertical(id="sample-body"):
            with Grid(id="sample-form"):
                yield from self.form(checkpoints)
            yield Static("", id="sample-summary")
            with Horizontal(id="sample-buttons"):
                yield Button("Generate (f5)", id="generate", variant="success", compact=True)
                yield Button("Export (e)", id="export", compact=True)
                yield Static("", id="sample-status")
            with Horizontal(id="sample-views"):
                with Vertical():
                    yield Label("x_t", id="x-t-title", classes="view-title")
                    yield HalfBlockImage(id="x-t")
                with Vertical():
                    yield Label("predicted x0_hat", id="x-0-title", classes="view-title")
                    yield HalfBlockImage(id="x-0")
            yield Markdown(NO_CHECKPOINT if not checkpoints else EXPLANATION, id="sample-explanation")
        yield Footer()

    def form(self, checkpoints: list[tuple[str, str]]) -> Iterator[Widget]:
        """The request's fields, label then widget, in the grid's reading order; ``defaults`` fill them."""
        get = self.defaults.get
        sampler = self.chosen_sampler = get("sampler", core.FAST_SAMPLER)
        yield Label("Checkpoint")
        first = checkpoints[0][0] if checkpoints else ""
        yield Input(get("checkpoint", first), placeholder="path to a .pt file", id="checkpoint", compact=True)
        yield Label("Found")
        yield Select(checkpoints, prompt="runs under " + str(self.root), id="found", compact=True)
        yield Label("Sampler")
        yield Select([(s, s) for s in core.SAMPLERS], value=sampler, allow_blank=False, id="sampler", compact=True)
        for name, label, placeholder, takes, validator in SAMPLER_FIELDS:
            yield Label(label)
            yield Input(
                get(name, ""),
                placeholder=placeholder(sampler),
                id=name,
                compact=True,
                disabled=not takes(sampler),
                valid_empty=True,
                validators=[validator],
            )
        yield Label("Class")
        yield Select(
            class_options(core.CLASS_NAMES["mnist"]),
            value=get("class_label", core.ALL_CLASSES),
            allow_blank=False,
            id="class_label",
            compact=True,
        )
        for name, label, default, validator in NUMBER_FIELDS:
            yield Label(label)
            yield Input(
                get(name, default),
                id=name,
                compact=True,
                validators=[validator],
                valid_empty=not default,
                placeholder=PLACEHOLDERS.get(name, ""),
            )

    def on_mount(self) -> None:
        self.read_traits(self.query_one("#checkpoint", Input).value.strip())

    @on(Select.Changed, "#found")
    def pick_found(self, event: Select.Changed) -> None:
        if event.value is not Select.BLANK:
            self.query_one("#checkpoint", Input).value = str(event.value)

    @on(Input.Changed, "#checkpoint")
    def checkpoint_changed(self, event: Input.Changed) -> None:
        self.read_traits(event.value.strip())

    @work(thread=True, exclusive=True, group="traits")
    def read_traits(self, path: str) -> None:
        """Background thread: what the named checkpoint can be asked for."""
        try:
            traits = core.checkpoint_traits(path) if path else None
        except core.CheckpointError:
            traits = None
        self.post_message(CheckpointRead(path, traits))

    @on(CheckpointRead)
    def apply_traits(self, message: CheckpointRead) -> None:
        """Disable the fields this checkpoint cannot use, with the reason as their placeholder; an unreadable
        path leaves every field as it is, to be reported when generating."""
        if message.traits is None or message.path != self.query_one("#checkpoint", Input).value.strip():
            return
        unavailable = message.traits.unavailable()
        for name in ("guidance_scale", "autoguidance"):
            box = self.query_one(f"#{name}", Input)
            box.disabled = name in unavailable
            box.placeholder = unavailable.get(name, PLACEHOLDERS[name])
            if box.disabled:
                box.value = ""
            elif name == "guidance_scale" and box.value in ("", self.shown_guidance):
                self.shown_guidance = box.value = f"{core.default_guidance(message.traits.dataset):g}"
        classes = self.query_one("#class_label", Select)
        if message.traits.class_names:
            chosen = classes.value
            classes.set_options(class_options(message.traits.class_names))
            if chosen in (value for _, value in class_options(message.traits.class_names)):
                classes.value = chosen
        classes.disabled = "class_label" in unavailable
        classes.tooltip = unavailable.get("class_label")
        if classes.disabled:
            classes.value = core.ALL_CLASSES

    @on(Select.Changed, "#sampler")
    def sampler_changed(self, event: Select.Changed) -> None:
        """Empty step and η boxes: each sampler's own defaults; DDPM always runs all T, so its step box is
        disabled, and the η box for the samplers without fresh noise to set."""
        if event.value == self.chosen_sampler:
            return
        self.chosen_sampler = str(event.value)
        for name, _, placeholder, takes, _ in SAMPLER_FIELDS:
            box = self.query_one(f"#{name}", Input)
            box.disabled = not takes(self.chosen_sampler)
            box.value, box.placeholder = "", placeholder(self.chosen_sampler)

    def action_focus_images(self) -> None:
        self.query_one("#generate", Button).focus()

    def read_form(self) -> dict | None:
        values = {}
        for name in ("steps", "eta", "num_images", "seed", "guidance_scale", "autoguidance"):
            widget = self.query_one(f"#{name}", Input)
            result = None if widget.disabled else widget.validate(widget.value)  # a disabled field does not apply
            if result is not None and not result.is_valid:
                self.notify(result.failure_descriptions[0], severity="error")
                return None
            if not widget.value or widget.disabled:
                values[name] = None
            else:
                values[name] = float(widget.value) if name in FLOAT_FIELDS else int(widget.value)
        label = str(self.query_one("#class_label", Select).value)
        values["class_label"] = label if label == core.ALL_CLASSES else int(label)
        values["checkpoint"] = self.query_one("#checkpoint", Input).value.strip()
        values["sampler"] = str(self.query_one("#sampler", Select).value)
        if not values["checkpoint"]:
            self.notify("choose a checkpoint first (train one on the Train screen)", severity="error")
            return None
        return values

    @on(Button.Pressed, "#generate")
    def action_generate(self) -> None:
        if self.sampling:
            return
        values = self.read_form()
        if values is not None:
            self.sampling = True
            self.frames, self.position = [], -1
            self.query_one("#sample-explanation", Markdown).update(EXPLANATION)
            self.generate(values)

    @work(thread=True, exclusive=True, group="sample")
    def generate(self, values: dict) -> None:
        """Background thread: plan the request in the core, run its sampler, and post a frame a few times a
        second; everything the screen shows arrives as a message."""
        worker = get_current_worker()
        try:
            device = core.resolve_device("auto")
            loaded = self.load(values["checkpoint"], device)
            steps = values["steps"] if values["sampler"] != "ddpm" else None
            with core.autocast(device, core.use_bf16(device)):  # whether compiling pays depends on the precision
                plan = core.plan_sampling(
                    loaded.model,
                    loaded.schedule,
                    loaded.image_shape,
                    values["num_images"],
                    values["sampler"],
                    steps,
                    values["class_label"],
                    values["guidance_scale"],
                    values["seed"],
                    device,
                    loaded.guide,
                    values["autoguidance"],
                    loaded.config.dataset,
                    values["eta"],
                )
            self.post_message(SampleStarted(loaded.config, plan.autoguidance, plan.compiled))
            stored = set(core.snapshot_indices(len(plan.timesteps), 40))
            start, last_post = time.perf_counter(), 0.0
            with core.computing("app: sample"), core.autocast(device, core.use_bf16(device)):
                for step in plan.run():
                    if worker.is_cancelled:
                        return
                    keep = step.index in stored or step.is_last
                    now = time.perf_counter()
                    if keep or now - last_post > 1 / LIVE_FPS:
                        frame = Frame(step.t, step.x.float().cpu(), step.x0_pred.float().cpu())
                        self.post_message(
                            SampleProgress(frame, step.index, step.total, now - start, keep, step.is_last)
                        )
                        last_post = now
        except (core.CheckpointError, ValueError, core.DeviceError) as err:
            self.post_message(SampleFailed(str(err)))

    def load(self, path: str, device: torch.device) -> core.LoadedModel:
        """The checkpoint at ``path``, loaded again only when its file changed: the compiled package loaded for
        one run (see :mod:`core.compiling`) then serves the next."""
        try:
            stamp = (path, Path(path).stat().st_mtime, str(device))
        except OSError:
            return core.load_model(path, device)  # which says what is wrong with the path
        if self.loaded is None or self.loaded[0] != stamp:
            self.loaded = (stamp, core.load_model(path, device))
        return self.loaded[1]

    @on(SampleStarted)
    def remember_dataset(self, message: SampleStarted) -> None:
        self.collapse_form(True)
        self.config, self.nearest = message.config, None
        self.how = f"{self.chosen_sampler}, autoguided w = {message.autoguidance:g}" if message.autoguidance else ""
        if message.compiled:
            self.query_one("#sample-status", Static).update(
                "the network runs compiled into fused C++ loops (if this machine has no package of it yet, "
                "building one takes under a minute, once)"
            )

    @on(SampleProgress)
    def show_progress(self, message: SampleProgress) -> None:
        frame = message.frame
        if message.keep:
            self.frames.append(frame)
        self.show_frame(frame)
        sampler = self.how or str(self.query_one("#sampler", Select).value)
        self.query_one("#sample-status", Static).update(
            f"{sampler} step {message.index + 1}/{message.total}  t = {frame.t}  {message.seconds:.1f}s"
        )
        if message.done:
            self.sampling = False
            self.images = frame.x
            self.position = len(self.frames) - 1
            self.notify(
                f"{len(frame.x)} images in {message.seconds:.1f}s ({sampler}, {message.total} steps); "
                "left/right scrub through the steps, e exports"
            )

    @on(SampleFailed)
    def show_failure(self, message: SampleFailed) -> None:
        self.sampling = False
        self.notify(message.error, severity="error", timeout=8)

    def show_frame(self, frame: Frame) -> None:
        """x_t and x0_hat side by side, at the resolution at which the requested images fit the screen
        (:func:`fit_grid`); when even the smallest cannot hold them all, the titles say how many show."""
        count, size = len(frame.x), frame.x.shape[-1]
        overhead = FORM_ROWS if self.query_one("#sample-form").display else SUMMARY_ROWS
        height = max(1, self.size.height - overhead)
        shrink, columns, shown = fit_grid(count, size, self.size.width // 2 - 2, height)
        hidden = f" (showing {shown} of {count}; e exports all)" if shown < count else ""
        beside = self.nearest is not None and frame is self.frames[-1] and not self.sampling
        right = self.nearest if beside else frame.x0
        with self.app.batch_update():
            self.query_one("#x-t-title", Label).update("x_t" + hidden)
            self.query_one("#x-0-title", Label).update(
                ("nearest training image (v)" if beside else "predicted x0_hat") + hidden
            )
            self.query_one("#x-t", HalfBlockImage).update(frame.x[:shown], columns=columns, shrink=shrink)
            self.query_one("#x-0", HalfBlockImage).update(right[:shown], columns=columns, shrink=shrink)

    def collapse_form(self, collapsed: bool) -> None:
        """Fold the form into one summary line, so the images get the screen, or unfold it (f2)."""
        form, summary = self.query_one("#sample-form"), self.query_one("#sample-summary", Static)
        form.display, summary.display = not collapsed, collapsed
        if collapsed:
            values = {name: self.query_one(f"#{name}", Input).value for name in ("num_images", "seed", "steps")}
            checkpoint = Path(self.query_one("#checkpoint", Input).value).name or "no checkpoint"
            steps = f", {values['steps']} steps" if values["steps"] else ""
            summary.update(
                f"{checkpoint}: {self.chosen_sampler}{steps}, {values['num_images']} images, seed {values['seed']}"
                "   [b]f2[/b] edits the request"
            )
        if self.frames:
            self.call_after_refresh(self.show_frame, self.frames[self.position])

    def action_toggle_form(self) -> None:
        self.collapse_form(self.query_one("#sample-form").display)

    def action_scrub(self, delta: int) -> None:
        if self.sampling or not self.frames:
            return
        self.position = min(len(self.frames) - 1, max(0, self.position + delta))
        frame = self.frames[self.position]
        self.show_frame(frame)
        self.query_one("#sample-status", Static).update(
            f"step {self.position + 1}/{len(self.frames)} stored  t = {frame.t}  (left/right to scrub)"
        )

    @on(Button.Pressed, "#export")
    def action_export(self) -> None:
        """Write the grid PNG, one PNG per image and the denoising GIF into a new export folder."""
        if self.images is None:
            self.notify("generate images first (f5)", severity="warning")
            return
        folder = self.root / "exports" / datetime.now().strftime("%Y%m%d-%H%M%S")
        try:
            core.check_writable(folder)
            grid = core.save_grid(self.images, folder / "samples.png")
            images = core.export_images(self.images, folder / "images")
            gif = core.save_gif([f.x for f in self.frames], folder / "denoising.gif")
        except (core.OutputError, OSError) as err:
            self.notify(f"export failed: {err}", severity="error")
            return
        self.exported = folder
        self.notify(f"exported {grid}, {len(images)} PNGs in {folder / 'images'} and {gif}", timeout=10)

    def action_score(self) -> None:
        """Score the generated images against held-out real ones (the eval command's metrics, where the
        dataset has a classifier), and show each beside its nearest training image with the memorised share."""
        if self.images is None or self.sampling:
            self.notify("generate images first (f5)", severity="warning")
            return
        self.notify(f"scoring {len(self.images)} images and finding their nearest training images")
        self.score_images(self.images, self.config)

    @work(thread=True, exclusive=True, group="score")
    def score_images(self, images: torch.Tensor, config: core.TrainConfig) -> None:
        scores, parts = None, []
        with core.computing("app: score"):
            if config.dataset in core.SCORED_DATASETS:
                if config.dataset not in self.evaluators:
                    self.evaluators[config.dataset] = core.Evaluator(core.load_classifier(config.dataset))
                evaluator = self.evaluators[config.dataset]
                scores, floor = evaluator.score(images), evaluator.floor(len(images))
                warning = core.one_class_warning(scores.class_entropy)
                parts.append(
                    f"{len(images)} images: Frechet distance {scores.frechet_distance:.1f} (real: "
                    f"{floor.frechet_distance:.1f}), recognised {scores.recognised:.0%} "
                    f"(real: {floor.recognised:.0%}), "
                    f"class entropy {scores.class_entropy:.2f} (real: {floor.class_entropy:.2f})."
                    + (f" Careful: {warning}." if warning else "")
                )
            nearest, text = nearest_training_images(images, config)
        parts.append(text)
        parts.append("Few images make these figures noisy: use `ddpm-tui eval` for 1,000.")
        self.post_message(Scored(scores, " ".join(parts), nearest))

    @on(Scored)
    def show_scores(self, message: Scored) -> None:
        self.scores, self.nearest = message.scores, message.nearest
        if self.frames:
            self.position = len(self.frames) - 1
            self.show_frame(self.frames[-1])
        self.notify(message.text, title="scores", timeout=15)


def nearest_training_images(images: torch.Tensor, config: core.TrainConfig) -> tuple[torch.Tensor | None, str]:
    """Each image's nearest training image of the run ``config`` (in [-1, 1]) and the memorised share in
    words; (None, why) when its training images cannot be read."""
    try:
        training, found = core.run_memorisation(config, images)
    except (core.DataError, ValueError) as err:
        return None, f"No nearest training images: {err}."
    nearest = core.beside_nearest(images, training.pixels, found.nearest, len(images))[1::2]
    return nearest, (
        f"Memorised: {found.memorised:.0%} are nearer to a training image than 95% of held-out real images "
        f"(5% by construction; far above that the model copies). Right: each image's nearest training image."
    )


def class_options(names: tuple[str, ...]) -> list[tuple[str, str]]:
    """The class picker's entries: all classes in blocks, then each class by index and name."""
    named = [(name if name == str(k) else f"{k} {name}", str(k)) for k, name in enumerate(names)]
    return [("all, in blocks", core.ALL_CLASSES), *named]
