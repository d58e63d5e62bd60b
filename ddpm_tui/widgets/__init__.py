"""Widgets shared by the app's screens."""

from .halfblock import HalfBlockImage, fit_grid, to_rgb_grid
from .loss_chart import LossChart
from .quality_chart import QualityChart
from .run_dashboard import RunDashboard
from .train_form import TrainForm

__all__ = ["HalfBlockImage", "LossChart", "QualityChart", "RunDashboard", "TrainForm", "fit_grid", "to_rgb_grid"]
