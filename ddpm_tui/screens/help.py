"""The help screen: every key of every screen, read from the screens' own bindings."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Markdown

GLOBAL_KEYS = [
    ("1 / 2 / 3 / 4 / 5", "Noise, Train, Sample, Model and Edit screens"),
    ("ctrl+p", "command palette"),
    ("?", "this help"),
    ("q", "quit (asks first if training or sampling would stop)"),
]


LESSONS = [
    ("Forward diffusion", "1 Noise: left/right move t, p plays the whole process"),
    ("Noise schedules", "1 Noise: s switches linear and cosine, l shows the signal-to-noise ratio"),
    ("Why predict the noise", "4 Model, view Why ε: the noise error stays bounded over t, the image error grows"),
    ("Reverse diffusion", "3 Sample: f5 generates, left/right scrub from x_T to x_0"),
    ("Why the network needs t", "4 Model, view Why t (v): [ and ] tell the network a wrong t"),
    ("Why skip connections", "4 Model, view Skips (v): k cuts them and shows the prediction without"),
    ("The sampler is a reversible map", "5 Edit, i then f5: an image inverted to noise and decoded back"),
    ("Interpolate noise on the sphere", "5 Edit, l then f5: slerp against lerp, with the mid-point norms"),
    ("Inpainting by the reverse process", "5 Edit, p then f5 (m: the mask): the hole fills to match the rest"),
    ("Your own images", "1 Noise, o: a folder of your pictures; 2 Train: dataset folder and its path"),
    ("Does the model copy?", "3 Sample, v after f5: each sample beside its nearest training image"),
]


def key_table(screens: dict[str, type]) -> str:
    """The lessons with the screen and key that shows each, then a Markdown table of keys per
    screen, built from each screen class's BINDINGS."""
    parts = ["# Lessons", "", "| idea | where you see it |", "|---|---|"]
    parts += [f"| {idea} | {where} |" for idea, where in LESSONS]
    parts += ["", "# Keys", "", "| key | action |", "|---|---|"]
    parts += [f"| `{k}` | {what} |" for k, what in GLOBAL_KEYS]
    for title, screen in screens.items():
        parts += ["", f"## {title}", "", "| key | action |", "|---|---|"]
        for binding in screen.BINDINGS:
            if isinstance(binding, Binding):
                parts.append(f"| `{binding.key}` | {binding.description or binding.action} |")
    return "\n".join(parts)


class HelpScreen(ModalScreen):
    """Lists every key; escape, q or ? closes it."""

    BINDINGS = [Binding("escape,q,question_mark", "app.pop_screen", "Close")]

    def __init__(self, screens: dict[str, type]) -> None:
        super().__init__()
        self.text = key_table(screens)

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help-box"):
            yield Markdown(self.text)
