"""Widgets shared by the app's screens."""

from .halfblock import HalfBlockImage, to_rgb_grid

__all__ = ["HalfBlockImage", "to_rgb_grid"]
