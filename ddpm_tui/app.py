"""The Textual app: Noise, Train, Sample, Model and Edit screens as modes, with help and a command palette."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from functools import partial

from textual import events
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding
from textual.containers import Grid
from textual.screen import ModalScreen, Screen
from textual.widgets import Button, Label

from .screens.edit import EditScreen
from .screens.help import HelpScreen
from .screens.model import ModelScreen
from .screens.noise import NoiseScreen
from .screens.sample import SampleScreen
from .screens.train import TrainScreen

MIN_WIDTH, MIN_HEIGHT = 80, 24


class QuitScreen(ModalScreen[str]):
    """Asks before quitting would stop something: a training run (stop it or leave it running), or
    sampling in progress (quit anyway or not)."""

    BINDINGS = [Binding("escape", "dismiss('cancel')", "Cancel")]

    def __init__(self, training: bool) -> None:
        super().__init__()
        self.training = training

    def compose(self) -> ComposeResult:
        with Grid(id="quit-dialog"):
            if self.training:
                yield Label(
                    "Training is still running. Stop it, or leave it running in the background "
                    "(follow it later with `ddpm-tui watch`)?",
                    id="quit-question",
                )
                yield Button("Leave it running", id="leave", variant="primary")
                yield Button("Stop training", id="stop", variant="error")
            else:
                yield Label("Sampling is still running and would be lost. Quit anyway?", id="quit-question")
                yield Button("Quit", id="leave", variant="error")
            yield Button("Cancel", id="cancel")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id)


class TooSmallScreen(ModalScreen):
    """Shown instead of a cramped layout when the terminal is smaller than 80x24."""

    def compose(self) -> ComposeResult:
        yield Label(
            f"Terminal too small: ddpm-tui needs at least {MIN_WIDTH}x{MIN_HEIGHT}. "
            "Enlarge the window, or press q to quit.",
            id="too-small",
        )


class DdpmApp(App):
    """ddpm-tui: watch the forward process, train, sample, look inside the network, and edit images with it."""

    CSS_PATH = "app.tcss"
    TITLE = "ddpm-tui"
    SCREEN_NAMES = {"noise": "Noise", "train": "Train", "sample": "Sample", "model": "Model", "edit": "Edit"}
    BINDINGS = [  # keys 1 to 5: the screens, in the lesson's order
        *(
            Binding(str(key), f"switch_mode('{mode}')", name)
            for key, (mode, name) in enumerate(SCREEN_NAMES.items(), 1)
        ),
        Binding("question_mark", "help", "Help"),
        Binding("q", "quit", "Quit"),
    ]

    def __init__(
        self,
        mode: str = "noise",
        output_dir: str = "outputs",
        watch: str | None = None,
        train_defaults: dict[str, str] | None = None,
        sample_defaults: dict[str, str] | None = None,
    ) -> None:
        super().__init__()
        self.start_mode = "train" if watch else mode
        self.opened: dict[str, Screen] = {}
        factories = {
            "noise": NoiseScreen,
            "train": partial(TrainScreen, {"output_dir": watch or output_dir, **(train_defaults or {})}, watch),
            "sample": partial(SampleScreen, output_dir, sample_defaults),
            "model": partial(ModelScreen, output_dir),
            "edit": partial(EditScreen, output_dir),
        }
        for name, factory in factories.items():
            self.add_mode(name, partial(self._open, name, factory))

    def _open(self, mode: str, factory: Callable[[], Screen]) -> Screen:
        """Make the screen of ``mode`` when it is first shown, and remember it."""
        self.opened[mode] = factory()
        return self.opened[mode]

    def on_mount(self) -> None:
        self.switch_mode(self.start_mode)

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        for mode, name in self.SCREEN_NAMES.items():
            yield SystemCommand(f"{name} screen", f"switch to the {name} screen", partial(self.switch_mode, mode))
        yield SystemCommand("Help", "every key of every screen", self.action_help)

    def action_help(self) -> None:
        self.push_screen(
            HelpScreen(
                {
                    "Noise": NoiseScreen,
                    "Train": TrainScreen,
                    "Sample": SampleScreen,
                    "Model": ModelScreen,
                    "Edit": EditScreen,
                }
            )
        )

    def mode_screen(self, mode: str, kind: type[Screen]) -> Screen | None:
        """The screen of ``mode`` if it has been opened."""
        screen = self.opened.get(mode)
        return screen if isinstance(screen, kind) else None

    async def action_quit(self) -> None:
        """Quit, asking first if that would stop a followed training run or sampling in progress."""
        train = self.mode_screen("train", TrainScreen)
        sample = self.mode_screen("sample", SampleScreen)
        training = train is not None and train.running
        if not training and not (sample is not None and sample.sampling):
            self.exit()
            return

        def decide(choice: str | None) -> None:
            if choice == "stop":
                train.action_stop()
            if choice in ("stop", "leave"):
                self.exit()

        self.push_screen(QuitScreen(training), decide)

    def on_resize(self, event: events.Resize) -> None:
        """Below 80x24 a notice replaces the screen until the terminal grows again."""
        small = event.size.width < MIN_WIDTH or event.size.height < MIN_HEIGHT
        showing = isinstance(self.screen, TooSmallScreen)
        if small and not showing:
            self.push_screen(TooSmallScreen())
        elif showing and not small:
            self.pop_screen()
