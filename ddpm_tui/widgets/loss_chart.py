"""The Train screen's loss chart: every step's loss and its smoothed curve, on a log scale or not,
over the whole run or its last steps."""

from __future__ import annotations

from textual_plotext import PlotextPlot

import core

from .curves import Curve, plot_curves

WINDOW = 200


class LossChart(PlotextPlot):
    """Holds the run's losses; :meth:`draw` redraws them (the screen decides how often)."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.steps: list[int] = []
        self.losses: list[float] = []
        self.smoothed: list[float] = []
        self.log_scale = True
        self.windowed = False

    def reset(self) -> None:
        self.steps, self.losses, self.smoothed = [], [], []
        self.draw()

    def add_steps(self, records: list[dict]) -> None:
        """Take the ``kind: step`` records of ``metrics.jsonl``."""
        for record in records:
            self.steps.append(record["step"])
            self.losses.append(record["loss"])
        if records:
            self.smoothed = core.smooth(self.losses).tolist()

    def toggle_log_scale(self) -> None:
        self.log_scale = not self.log_scale
        self.draw()

    def toggle_window(self) -> None:
        self.windowed = not self.windowed
        self.draw()

    def draw(self) -> None:
        plt = self.plt
        plt.clear_data()
        plt.clear_figure()
        steps, losses, smoothed = self.steps, self.losses, self.smoothed
        if self.windowed:
            steps, losses, smoothed = steps[-WINDOW:], losses[-WINDOW:], smoothed[-WINDOW:]
        title = "training loss" + (f" (last {WINDOW} steps)" if self.windowed else "")
        curves = [Curve("loss", steps, losses), Curve("smoothed", steps, smoothed)] if losses else []
        plot_curves(plt, title, curves, self.size.width, "step")
        if losses and self.log_scale:
            plt.yscale("log")
        self.refresh()
