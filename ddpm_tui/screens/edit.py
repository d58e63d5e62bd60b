"""The Edit screen: what a trained model does besides sampling: invert, interpolate and inpaint, step by step."""

from __future__ import annotations

import time
from pathlib import Path

import torch
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Footer, Header, Input, Label, Markdown, Select, Static
from textual.worker import get_current_worker

import core

from ..widgets import HalfBlockImage
from .sample import SampleFailed  # a worker's one-line error, whichever screen it ran for

CPU = torch.device("cpu")
IMAGES = 8  # images per row
STEPS = 50  # deterministic DDIM steps for inversion and interpolation
INPAINT_STEPS, INPAINT_RESAMPLE = core.INPAINT_STEPS, core.INPAINT_RESAMPLE
LIVE_EVERY = 5  # post a frame every this many steps
MODES = ("invert", "interpolate", "inpaint")
ROW_TITLES = {
    "invert": ("the images", "x_t: encoding to noise, then decoding back", "reconstruction"),
    "interpolate": ("slerp: on the sphere", "lerp: on the straight line", ""),
    "inpaint": ("the known pixels (hole in black)", "x_t: the hole filling", "result"),
}
IDEAS = {
    "invert": """\
**Inversion.** DDIM at η = 0 follows the probability-flow ODE, a smooth path from noise to image that can
be run both ways. Run forward, each step asks the network at x_t and moves to a noisier t; decoding the
x_T it finds walks the same path back. {numbers}""",
    "interpolate": """\
**Interpolation.** Noise of d = {d} pixels has norm about √d = **{root:.1f}**. The straight-line mid-point
of two such vectors has norm **{lerp:.1f}**: noise the network never saw at t = T, which decodes to a pale
blur. On the sphere (slerp) the mid-point keeps norm **{slerp:.1f}**, and every frame is a sample.""",
    "inpaint": """\
**Inpainting.** Every step noises the known pixels to that step's level and pastes them over the sample,
so the network fills the hole to match. Pasting alone tells the hole nothing until the next step; the
gradient of the known pixels' error through the network (reconstruction guidance, w = {guidance:g}) pulls
the hole's estimate their way at once (`m` changes the mask: **{mask}**). {numbers}""",
}
NO_CHECKPOINT = "### No checkpoint yet\n\nTrain a model first (press **2**); its `model_final.pt` appears above."


class EditFrame(Message):
    """Rows of images to show (None leaves a row as it is), and a status line."""

    def __init__(self, rows: tuple[torch.Tensor | None, ...], status: str, text: str | None = None) -> None:
        super().__init__()
        self.rows, self.status, self.text = rows, status, text


class EditScreen(Screen):
    """Held-out (or the learner's) images through the model in reverse, between two noises, or with a hole."""

    TITLE = "Edit: invert, interpolate, inpaint"
    BINDINGS = [
        Binding("f5,ctrl+g", "run", "Run"),
        *(Binding(key, f"mode('{mode}')", mode.capitalize()) for key, mode in zip("ilp", MODES, strict=True)),
        Binding("m", "next_mask", "Mask"),
        Binding("r", "new_images", "New images"),
        Binding("e", "export", "Export"),
    ]

    def __init__(self, root: str = "outputs") -> None:
        super().__init__()
        self.root = Path(root)
        self.mode, self.mask = "invert", "bottom"
        self.seed = 0
        self.rows: tuple[torch.Tensor | None, ...] = (None, None, None)
        self.running = False

    def compose(self) -> ComposeResult:
        checkpoints = [(str(p), str(p)) for p in core.find_checkpoints(self.root)]
        yield Header()
        with Vertical(id="edit-body"):
            with Horizontal(id="edit-top"):
                first = {"value": checkpoints[0][0]} if checkpoints else {}
                prompt = "runs under " + str(self.root)
                yield Select(checkpoints, prompt=prompt, id="edit-checkpoint", compact=True, **first)
                yield Input(placeholder="your PNG folder (empty: held-out images)", id="edit-folder", compact=True)
            yield Static("", id="edit-status")
            for row in range(3):
                yield Label("", id=f"edit-title-{row}", classes="view-title")
                yield HalfBlockImage(id=f"edit-row-{row}")
            yield Markdown(NO_CHECKPOINT if not checkpoints else self.idea(), id="edit-text")
        yield Footer()

    def on_mount(self) -> None:
        self.show_titles()

    def idea(self, **numbers: object) -> str:
        """The mode's explanation, with the learner's own numbers once there are some."""
        fields = {"numbers": "", "d": 784, "root": 28.0, "lerp": 19.8, "slerp": 28.0}
        fields.update(guidance=core.INPAINT_GUIDANCE, mask=self.mask, **numbers)
        return IDEAS[self.mode].format(**fields) + "\n\n`f5` runs it; `i`, `l`, `p` switch; `r` new images."

    def show_titles(self) -> None:
        for row, title in enumerate(ROW_TITLES[self.mode]):
            self.query_one(f"#edit-title-{row}", Label).update(title)

    def action_mode(self, mode: str) -> None:
        if self.running or mode == self.mode:
            return
        self.mode, self.rows = mode, (None, None, None)
        for row in range(3):
            self.query_one(f"#edit-row-{row}", HalfBlockImage).display = False
        self.show_titles()
        self.query_one("#edit-text", Markdown).update(self.idea())

    def action_next_mask(self) -> None:
        self.mask = core.MASKS[(core.MASKS.index(self.mask) + 1) % len(core.MASKS)]
        if self.mode == "inpaint":
            self.query_one("#edit-text", Markdown).update(self.idea())

    def action_new_images(self) -> None:
        self.seed += 1
        self.action_run()

    def action_run(self) -> None:
        choice = self.query_one("#edit-checkpoint", Select).value
        if self.running or choice is Select.BLANK:
            if choice is Select.BLANK:
                self.notify("choose a checkpoint first (train one on the Train screen)", severity="error")
            return
        self.running = True
        folder = self.query_one("#edit-folder", Input).value.strip() or None
        self.run_edit(str(choice), folder, self.mode, self.mask, self.seed)

    @work(thread=True, exclusive=True, group="edit")
    def run_edit(self, checkpoint: str, folder: str | None, mode: str, mask: str, seed: int) -> None:
        """Background thread: run the mode on the CPU beside the app, posting frames as it goes."""
        try:
            loaded = core.load_model(checkpoint, CPU)
            generator = torch.Generator().manual_seed(seed)
            held_out = None if folder else core.run_data(loaded.config, "test")
            images, _ = core.images_to_edit(loaded.image_shape, folder, held_out, IMAGES, generator)
            with core.computing("app: edit"), core.autocast(CPU, core.use_bf16(CPU)):
                steps = {"invert": self.invert, "interpolate": self.interpolate, "inpaint": self.inpaint}[mode]
                steps(loaded, images, mask, generator)
        except (core.CheckpointError, core.DataError, ValueError) as err:
            self.post_message(SampleFailed(str(err)))

    def invert(self, loaded: core.LoadedModel, images: torch.Tensor, _mask: str, generator: torch.Generator) -> None:
        worker, times = (
            get_current_worker(),
            core.sampler_timesteps(loaded.schedule, "ddim", min(STEPS, loaded.schedule.timesteps)),
        )
        self.post_message(EditFrame((images, None, None), "encoding"))
        for step in core.invert(loaded.model, loaded.schedule, images, times):
            if worker.is_cancelled:
                return
            if step.is_last or step.index % LIVE_EVERY == 0:
                self.post_message(EditFrame((None, (step.x / 3).clamp(-1, 1), None), f"encoding: t = {step.t}"))
        x_T = step.x
        run = core.sample(loaded.model, loaded.schedule, x_T, "ddim", times=times, clip=False)
        for step in run:
            if step.is_last or step.index % LIVE_EVERY == 0:
                x = step.x.clamp(-1, 1)
                self.post_message(EditFrame((None, x if not step.is_last else None, x), f"decoding: t = {step.t}"))
        fresh = torch.randn(images.shape, generator=generator)
        random = core.last_step(core.sample(loaded.model, loaded.schedule, fresh, "ddim", times=times)).x
        mse, random_mse = core.pixel_mse(step.x, images), core.pixel_mse(random, images)
        numbers = (
            f"Here the reconstruction is off by MSE **{mse:.5f}** (0-1 pixels), against **{random_mse:.4f}** for a"
            f" random sample: **{random_mse / max(mse, 1e-12):.0f}x** closer. x_T has mean {x_T.mean():.2f} and"
            f" standard deviation {x_T.std():.2f} (fresh noise: 0 and 1): noise-like, a little narrower."
        )
        self.post_message(EditFrame((None, (x_T / 3).clamp(-1, 1), None), "done", self.idea(numbers=numbers)))

    def interpolate(
        self, loaded: core.LoadedModel, _images: torch.Tensor, _mask: str, generator: torch.Generator
    ) -> None:
        times = core.sampler_timesteps(loaded.schedule, "ddim", min(STEPS, loaded.schedule.timesteps))
        a, b = (torch.randn(1, *loaded.image_shape, generator=generator) for _ in range(2))
        weights = torch.linspace(0, 1, IMAGES).tolist()
        rows = []
        for mix in (core.slerp, core.lerp):
            noise = torch.cat([mix(a, b, w) for w in weights])
            rows.append(core.last_step(core.sample(loaded.model, loaded.schedule, noise, "ddim", times=times)).x)
            self.post_message(EditFrame((rows[0], rows[1] if len(rows) > 1 else None, None), "decoding"))
        norms = {name: mix(a, b, 0.5).norm().item() for name, mix in (("slerp", core.slerp), ("lerp", core.lerp))}
        d = a.numel()
        self.post_message(EditFrame((None, None, None), "done", self.idea(d=d, root=d**0.5, **norms)))

    def inpaint(
        self, loaded: core.LoadedModel, images: torch.Tensor, mask_name: str, generator: torch.Generator
    ) -> None:
        worker, mask = get_current_worker(), core.region_mask(mask_name, loaded.image_shape)
        holed = torch.where(mask > 0.5, -torch.ones_like(images), images)
        self.post_message(EditFrame((holed, None, None), "filling"))
        times = core.ddim_timesteps(loaded.schedule.timesteps, min(INPAINT_STEPS, loaded.schedule.timesteps))
        model, _ = core.edit_predictor(loaded.model, loaded.schedule, loaded.guide, None, loaded.config.dataset)
        run = core.inpaint(
            model, loaded.schedule, images, mask, times, INPAINT_RESAMPLE, generator, guidance=core.INPAINT_GUIDANCE
        )
        for step in run:
            if worker.is_cancelled:
                return
            self.post_message(EditFrame((None, step.x.clamp(-1, 1), None), f"filling: t = {step.t}"))
        result = step.x.clamp(-1, 1)
        seam = ((result - images) / 2).pow(2).mul(1 - mask).sum().item()
        numbers = f"The known pixels come back exactly (their error: {seam:.1g}); only the hole is new."
        self.post_message(EditFrame((None, None, result), "done", self.idea(numbers=numbers)))

    def row_shrink(self, size: int) -> int:
        """The least shrink at which the three rows of :data:`IMAGES` images each fit the screen, beside the
        header, the checkpoint row, the status, the three row titles and the footer (seven rows)."""
        rows_each = max(1, (self.size.height - 7) // 3)
        for shrink in (1, 2, 3, 4):
            side = size // shrink
            if side + 1 <= 2 * rows_each and IMAGES * (side + 1) <= self.size.width:
                return shrink
        return 4

    @on(EditFrame)
    def show(self, message: EditFrame) -> None:
        self.rows = tuple(new if new is not None else old for new, old in zip(message.rows, self.rows, strict=True))
        for row, images in enumerate(message.rows):
            if images is not None:
                shrink = self.row_shrink(images.shape[-1])
                widget = self.query_one(f"#edit-row-{row}", HalfBlockImage)
                widget.update(images, columns=IMAGES, shrink=shrink)
                widget.display = True
        self.query_one("#edit-status", Static).update(f"{self.mode}: {message.status}")
        if message.text is not None:
            self.running = False
            self.query_one("#edit-text", Markdown).update(message.text)

    @on(SampleFailed)
    def failed(self, message: SampleFailed) -> None:
        self.running = False
        self.notify(message.error, severity="error", timeout=8)

    def action_export(self) -> None:
        shown = [rows for rows in self.rows if rows is not None]
        if not shown or self.running:
            self.notify("run an edit first (f5)", severity="warning")
            return
        folder = self.root / "exports" / f"edit-{self.mode}-{time.strftime('%Y%m%d-%H%M%S')}"
        for row, images in enumerate(self.rows):
            if images is not None:
                core.save_grid(images, folder / f"row{row}.png", nrow=IMAGES)
        self.notify(f"exported {len(shown)} rows to {folder}/")
