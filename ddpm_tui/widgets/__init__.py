"""Widgets shared by the app's screens."""

from .halfblock import HalfBlockImage, to_rgb_grid
from .quality_chart import QualityChart

__all__ = ["HalfBlockImage", "QualityChart", "to_rgb_grid"]
