"""Images in the terminal, two pixels per cell.

Each cell shows the upper half block "▀": its foreground colour is the upper pixel and its background
the lower one, so a W x H image takes W columns and ceil(H / 2) rows. Rendering goes through Textual's
Line API (one :class:`Strip` per terminal row); the Rich style of each colour pair is made once and
cached, and runs of equal cells are merged into one segment.
"""

from __future__ import annotations

import math

import numpy as np
from rich.color import Color
from rich.segment import Segment
from rich.style import Style
from textual.geometry import Size
from textual.strip import Strip
from textual.widget import Widget

UPPER_HALF = "▀"
GAP_RGB = (24, 24, 24)


def to_rgb_grid(images, columns: int | None = None, gap: int = 1, scale: int = 1, shrink: int = 1) -> np.ndarray:
    """Lay out images as one uint8 RGB array (H, W, 3).

    ``images`` is a tensor or array in [-1, 1]: one image (C, H, W) or a batch (B, C, H, W) with 1 or 3
    channels. A batch is laid out ``columns`` per row (default: a square-ish grid) with ``gap`` pixels
    between images; ``scale`` repeats every pixel that many times in both directions, and ``shrink``
    averages blocks of ``shrink`` x ``shrink`` pixels into one (for small terminals).
    """
    array = images.detach().float().cpu().numpy() if hasattr(images, "detach") else np.asarray(images, np.float32)
    if array.ndim == 3:
        array = array[None]
    if array.ndim != 4 or array.shape[1] not in (1, 3):
        raise ValueError(f"expected (C, H, W) or (B, C, H, W) with 1 or 3 channels, got {array.shape}")
    if shrink > 1:
        b, c, h, w = array.shape
        array = array[:, :, : h - h % shrink, : w - w % shrink]
        array = array.reshape(b, c, h // shrink, shrink, w // shrink, shrink).mean(axis=(3, 5))
    pixels = np.clip((array + 1.0) * 127.5 + 0.5, 0, 255).astype(np.uint8)
    if pixels.shape[1] == 1:
        pixels = np.repeat(pixels, 3, axis=1)
    count, _, height, width = pixels.shape
    columns = columns or max(1, math.ceil(math.sqrt(count)))
    rows = math.ceil(count / columns)
    grid = np.empty((rows * (height + gap) - gap, columns * (width + gap) - gap, 3), dtype=np.uint8)
    grid[:] = GAP_RGB
    for i, image in enumerate(pixels):
        r, c = divmod(i, columns)
        grid[r * (height + gap) : r * (height + gap) + height, c * (width + gap) : c * (width + gap) + width] = (
            image.transpose(1, 2, 0)
        )
    if scale > 1:
        grid = grid.repeat(scale, axis=0).repeat(scale, axis=1)
    return grid


def fit_grid(count: int, size: int, width: int, height: int, gap: int = 1, max_shrink: int = 4) -> tuple[int, int, int]:
    """How to lay ``count`` square images of ``size`` pixels into ``width`` x ``height`` cells (two pixel
    rows a cell, ``gap`` pixels between images): the least ``shrink`` (1 is full resolution, at most
    ``max_shrink``) at which all of them fit, the columns that fill the width, and how many are shown
    (all of them when they fit; at ``max_shrink``, as many as fit)."""
    for shrink in range(1, max_shrink + 1):
        side = size // shrink
        columns = max(1, (width + gap) // (side + gap))
        rows = max(1, (2 * height + gap) // (side + gap))
        if columns * rows >= count or shrink == max_shrink:
            return shrink, columns, min(count, columns * rows)
    raise ValueError(f"max_shrink must be at least 1, got {max_shrink}")


class HalfBlockImage(Widget):
    """Shows an image or a batch of images with half-block characters (see the module docstring)."""

    DEFAULT_CSS = """
    HalfBlockImage {
        width: auto;
        height: auto;
    }
    """

    def __init__(
        self,
        images=None,
        *,
        columns: int | None = None,
        scale: int = 1,
        gap: int = 1,
        shrink: int = 1,
        name: str | None = None,
        id: str | None = None,
        classes: str | None = None,
    ) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self.columns = columns
        self.scale = scale
        self.gap = gap
        self.shrink = shrink
        self._rgb = np.zeros((0, 0, 3), dtype=np.uint8)
        self._styles: dict[tuple, Style] = {}
        if images is not None:
            self.update(images)

    @property
    def pixels(self) -> np.ndarray:
        """The RGB array being shown (H, W, 3)."""
        return self._rgb

    def update(self, images, columns: int | None = None, shrink: int | None = None) -> None:
        """Show new images (same forms as :func:`to_rgb_grid`); resizes the widget if the size changed."""
        if columns is not None:
            self.columns = columns
        if shrink is not None:
            self.shrink = shrink
        rgb = to_rgb_grid(images, self.columns, self.gap, self.scale, self.shrink)
        resized = rgb.shape != self._rgb.shape
        self._rgb = rgb
        if resized:
            self.refresh(layout=True)
        else:
            self.refresh()

    def set_scale(self, scale: int) -> None:
        """Change the pixel scale (1 or 2) keeping the source image."""
        if scale != self.scale:
            source = self._rgb[:: self.scale, :: self.scale] if self._rgb.size else self._rgb
            self.scale = scale
            self._rgb = source.repeat(scale, axis=0).repeat(scale, axis=1) if source.size else source
            self.refresh(layout=True)

    def get_content_width(self, container: Size, viewport: Size) -> int:
        return self._rgb.shape[1]

    def get_content_height(self, container: Size, viewport: Size, width: int) -> int:
        return (self._rgb.shape[0] + 1) // 2

    def _style(self, top: tuple[int, int, int], bottom: tuple[int, int, int] | None) -> Style:
        key = (top, bottom)
        style = self._styles.get(key)
        if style is None:
            style = Style(color=self._color(top), bgcolor=self._color(bottom) if bottom is not None else None)
            self._styles[key] = style
        return style

    def _color(self, rgb: tuple[int, int, int]) -> Color:
        """Truecolor normally; in a 256-colour terminal, grays go to the 24-step gray ramp (232-255)."""
        r, g, b = rgb
        if r == g == b and self.app.console.color_system in ("256", "standard"):
            if r < 4:
                return Color.from_ansi(16)
            if r > 246:
                return Color.from_ansi(231)
            return Color.from_ansi(232 + min(23, round((r - 8) / 10)))
        return Color.from_rgb(r, g, b)

    def render_line(self, y: int) -> Strip:
        height, width = self._rgb.shape[:2]
        if 2 * y >= height or width == 0:
            return Strip.blank(self.size.width)
        top_row = self._rgb[2 * y]
        bottom_row = self._rgb[2 * y + 1] if 2 * y + 1 < height else None
        segments: list[Segment] = []
        run_key, run_length = None, 0
        for x in range(width):
            key = (tuple(top_row[x].tolist()), tuple(bottom_row[x].tolist()) if bottom_row is not None else None)
            if key == run_key:
                run_length += 1
                continue
            if run_key is not None:
                segments.append(Segment(UPPER_HALF * run_length, self._style(*run_key)))
            run_key, run_length = key, 1
        segments.append(Segment(UPPER_HALF * run_length, self._style(*run_key)))
        return Strip(segments, width)
