"""The help screen: every key of every screen, read from the screens' own bindings."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Markdown

GLOBAL_KEYS = [
    ("1 / 2 / 3", "Noise, Train and Sample screens"),
    ("ctrl+p", "command palette"),
    ("?", "this help"),
    ("q", "quit (asks first if training or sampling would stop)"),
]


def key_table(screens: dict[str, type]) -> str:
    """A Markdown table per screen, built from each screen class's BINDINGS."""
    parts = ["# Keys", "", "| key | action |", "|---|---|"]
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
