"""Widgets shared by the app's screens."""

from .halfblock import HalfBlockImage, to_rgb_grid
from .loss_chart import LossChart
from .quality_chart import QualityChart
from .train_form import TrainForm

__all__ = ["HalfBlockImage", "LossChart", "QualityChart", "TrainForm", "to_rgb_grid"]
