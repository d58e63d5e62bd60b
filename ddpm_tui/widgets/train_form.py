"""The Train screen's form: the settings a learner most often changes, each a :class:`core.TrainConfig` field
shown with its default and checked as it is typed; :meth:`TrainForm.args` turns it into train flags."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from textual import on
from textual.app import ComposeResult
from textual.containers import Grid
from textual.validation import Function, Integer, Number
from textual.widgets import Input, Label, Select, Switch

import core


@dataclass
class FormField:
    """One setting of the form: its flag, label, default text and validators."""

    flag: str
    label: str
    default: str
    validators: list


def positive_int(name: str) -> list:
    return [Integer(minimum=1, failure_description=f"{name} must be a positive integer")]


DEFAULTS = core.TrainConfig()
CHOICES = {"dataset": "Dataset", "schedule": "Schedule", "optimiser": "Optimiser"}  # settings picked from their choices
FIELDS = [
    FormField("epochs", "Epochs", str(DEFAULTS.epochs), positive_int("epochs")),
    FormField("batch_size", "Batch size", str(DEFAULTS.batch_size), positive_int("batch size")),
    FormField(
        "lr",
        "Learning rate",
        f"{DEFAULTS.lr:g}",
        [Number(minimum=1e-8, maximum=1.0, failure_description="learning rate must be in (0, 1]")],
    ),
    FormField(
        "timesteps",
        "Timesteps T",
        str(DEFAULTS.timesteps),
        [Integer(minimum=2, failure_description="T must be at least 2")],
    ),
    FormField(
        "base_channels",
        "Base channels",
        str(DEFAULTS.base_channels),
        [
            Integer(minimum=8, maximum=256, failure_description="base channels must be 8 to 256"),
            Function(lambda v: v.isdigit() and int(v) % 8 == 0, "base channels must be a multiple of 8"),
        ],
    ),
    FormField(
        "max_images",
        "Max images",
        "",
        [Function(lambda v: v == "" or (v.isdigit() and int(v) > 0), "images must be blank or a positive integer")],
    ),
    FormField(
        "data_dir",
        "Image folder",
        "",
        [Function(lambda v: v == "" or Path(v).expanduser().is_dir(), "the image folder does not exist")],
    ),
    FormField(
        "output_dir",
        "Output folder",
        DEFAULTS.output_dir,
        [Function(lambda v: v.strip() != "", "the output folder cannot be empty")],
    ),
]


PLACEHOLDERS = {"max_images": "all", "data_dir": "your images, with dataset folder"}


class TrainForm(Grid):
    """Choices, number fields and the conditional switch; ``defaults`` (flag -> text) overrides the config's."""

    def __init__(self, defaults: dict[str, str] | None = None, **kwargs) -> None:
        super().__init__(**kwargs)
        self.defaults = defaults or {}

    def compose(self) -> ComposeResult:
        for name, label in CHOICES.items():
            yield Label(label)
            yield Select(
                [(c, c) for c in core.setting_choices(name)],
                value=self.defaults.get(name, getattr(DEFAULTS, name)),
                allow_blank=False,
                id=name,
                compact=True,
            )
        for f in FIELDS:
            yield Label(f.label)
            yield Input(
                self.defaults.get(f.flag, f.default),
                id=f.flag,
                validators=f.validators,
                placeholder=PLACEHOLDERS.get(f.flag, ""),
                valid_empty=f.flag in PLACEHOLDERS,
                compact=True,
            )
        yield Label("Conditional")
        dataset = self.defaults.get("dataset", DEFAULTS.dataset)
        given = self.defaults.get("conditional")
        yield Switch(
            core.default_conditional(dataset) if given is None else given == "1",
            id="conditional",
            tooltip="learn class-conditional generation for classifier-free guidance (on by default for clothes)",
        )

    @on(Select.Changed, "#dataset")
    def follow_the_dataset(self, event: Select.Changed) -> None:
        """Set the conditional switch to the chosen dataset's default (on for clothes, off for digits)."""
        self.query_one("#conditional", Switch).value = core.default_conditional(str(event.value))

    def problems(self) -> list[str]:
        """What is wrong with the fields as typed, first field first (empty when all are valid)."""
        found = []
        for f in FIELDS:
            widget = self.query_one(f"#{f.flag}", Input)
            result = widget.validate(widget.value)
            if result is not None and not result.is_valid:
                found.append(result.failure_descriptions[0])
        return found or self.folder_problems()

    def folder_problems(self) -> list[str]:
        """What keeps the chosen image folder from training (the checks ``train`` makes before decoding)."""
        if self.query_one("#dataset", Select).value != core.FOLDER:
            return []
        folder = self.query_one("#data_dir", Input).value.strip()
        if not folder:
            return ["dataset folder: type the path of your image folder in Image folder"]
        try:
            core.list_folder(folder)
        except core.DataError as err:
            return [str(err)]
        return []

    def args(self) -> list[str]:
        """The ``ddpm-tui train`` flags the form asks for (blank fields keep the defaults)."""
        args = []
        for name in CHOICES:
            args += [f"--{name}", str(self.query_one(f"#{name}", Select).value)]
        args.append("--conditional" if self.query_one("#conditional", Switch).value else "--no-conditional")
        for f in FIELDS:
            value = self.query_one(f"#{f.flag}", Input).value.strip()
            if value:
                args += [f"--{f.flag}", value]
        return args

    @property
    def output_dir(self) -> str:
        return self.query_one("#output_dir", Input).value.strip()
