"""Widgets shared by the app's screens."""

from .halfblock import HalfBlockImage, to_rgb_grid
from .loss_chart import LossChart
from .quality_chart import QualityChart

__all__ = ["HalfBlockImage", "LossChart", "QualityChart", "to_rgb_grid"]
