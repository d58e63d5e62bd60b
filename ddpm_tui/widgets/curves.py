"""Charts name their curves in the title, never in plotext's legend box.

plotext draws a legend as a box inside the plot's top-left corner, over the data: on the Noise screen it
hid alpha_bar_t exactly where it falls from 1, the part of the cosine schedule the text asks the learner to
look at. Here every curve gets a fixed colour, and the title row (or, in a narrow chart, the row under the
axis) says which is which. plotext drops a title wider than its chart, so the width decides.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

COLOURS = ("cyan+", "red+", "green+")  # plotext's names, in the order curves are drawn
COLOUR_WORDS = {"cyan+": "cyan", "red+": "red", "green+": "green"}


@dataclass
class Curve:
    """One line of a chart: its name, its points, and plotext options (``yside``, ``marker``)."""

    name: str
    x: Sequence[float]
    y: Sequence[float]
    options: dict[str, Any] = field(default_factory=dict)


def plot_curves(plt: Any, title: str, curves: Sequence[Curve], width: int, xlabel: str = "") -> str:
    """Plot ``curves`` on ``plt`` in :data:`COLOURS`, with no legend box; name them ("name colour, ...") in
    the title row when it fits ``width`` columns, else in the x-label row below the axis, so no name is ever
    drawn over the data. Returns the legend."""
    legend = ", ".join(f"{curve.name} {COLOUR_WORDS[colour]}" for curve, colour in zip(curves, COLOURS, strict=False))
    for curve, colour in zip(curves, COLOURS, strict=False):
        plt.plot(curve.x, curve.y, color=colour, **curve.options)
    if legend and len(title) + 2 + len(legend) <= width:
        title, legend_below = f"{title}: {legend}", ""
    else:
        legend_below = legend
    plt.title(title)
    below = f"{xlabel}; {legend_below}" if xlabel and legend_below else xlabel or legend_below
    plt.xlabel(below if len(below) <= width else legend_below)
    return legend
