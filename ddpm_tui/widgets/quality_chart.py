"""A chart of the preview samples' quality per epoch, drawn beside the loss on the Train screen."""

from __future__ import annotations

from textual_plotext import PlotextPlot

import core


class QualityChart(PlotextPlot):
    """Share of the epoch's 64 preview images the classifier recognises, and their class entropy (both
    in %), one point per epoch. The loss flattens early; this keeps rising while the digits sharpen."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.epochs: list[int] = []
        self.recognised: list[float] = []
        self.entropy: list[float] = []
        self.available = True

    def reset(self) -> None:
        self.epochs, self.recognised, self.entropy, self.available = [], [], [], True
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
            if self.epochs:
                plt.plot(self.epochs, self.recognised, label="recognised %", marker="braille")
                plt.plot(self.epochs, self.entropy, label="class entropy %", marker="braille")
            plt.ylim(0, 100)
            plt.title(self.title())
            plt.xlabel("epoch")
        self.refresh()
