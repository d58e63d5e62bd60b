"""A chart of the preview samples' quality per epoch, drawn beside the loss on the Train screen."""

from __future__ import annotations

from textual_plotext import PlotextPlot

import core

from .curves import Curve, plot_curves


class QualityChart(PlotextPlot):
    """Share of the epoch's 64 preview images the classifier recognises, and their class entropy (both
    in %), one point per epoch. The loss flattens early; this keeps rising while the digits sharpen."""

    epochs: list[int]
    recognised: list[float]  # % of the previews
    entropy: list[float]  # % of the largest possible

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.clear_points()

    def clear_points(self) -> None:
        self.epochs, self.recognised, self.entropy, self.available = [], [], [], True

    def reset(self) -> None:
        self.clear_points()
        self.draw()

    def add_epoch(self, record: dict) -> None:
        """Take one ``kind: epoch`` record of ``metrics.jsonl``; one without scores marks the chart unavailable."""
        if record.get("recognised") is None:
            if record.get("samples"):
                self.available = False
            return
        self.epochs.append(int(record["epoch"]))
        self.recognised.append(100 * float(record["recognised"]))
        self.entropy.append(100 * float(record["class_entropy"]))

    def title(self) -> str:
        """What the chart is, with a caution while the latest previews are nearly all one class."""
        if not self.epochs:
            return "preview quality: after the first epoch"
        if core.one_class_warning(self.entropy[-1] / 100):
            return f"preview quality: {core.ONE_CLASS_NOTE}"
        return "preview quality"

    def draw(self) -> None:
        plt = self.plt
        plt.clear_data()
        plt.clear_figure()
        if not self.available:
            plt.title("sample quality: not available (no classifier for this dataset)")
        else:
            braille = {"marker": "braille"}
            curves = [
                Curve("recognised", self.epochs, self.recognised, braille),
                Curve("entropy", self.epochs, self.entropy, braille),
            ]
            plot_curves(plt, self.title(), curves if self.epochs else [], self.size.width, "epoch")
            plt.ylim(0, 100)
        self.refresh()
