"""The half-block image widget: exact cells and colours."""

import numpy as np
import pytest
import torch
from textual.app import App, ComposeResult

from ddpm_tui.widgets import HalfBlockImage, to_rgb_grid
from ddpm_tui.widgets.halfblock import GAP_RGB


def test_grid_layout_with_gaps():
    batch = torch.stack([torch.full((1, 2, 2), v) for v in (-1.0, 0.0, 1.0)])
    grid = to_rgb_grid(batch, columns=2, gap=1)
    assert grid.shape == (5, 5, 3)
    assert (grid[0, 0] == 0).all() and (grid[0, 3] == 128).all() and (grid[3, 0] == 255).all()
    assert tuple(grid[0, 2]) == GAP_RGB and tuple(grid[2, 0]) == GAP_RGB
    assert to_rgb_grid(torch.zeros(3, 2, 2), scale=2).shape == (4, 4, 3)
    with pytest.raises(ValueError):
        to_rgb_grid(torch.zeros(2, 2))


class ImageApp(App):
    def __init__(self, image) -> None:
        super().__init__()
        self.image = image

    def compose(self) -> ComposeResult:
        yield HalfBlockImage(self.image)


async def test_two_by_two_image_gives_two_cells_with_the_right_colours(monkeypatch):
    monkeypatch.setenv("COLORTERM", "truecolor")
    # rows: [black, white] over [red, blue]
    image = np.array([[[-1, 1], [1, -1]], [[-1, 1], [-1, -1]], [[-1, 1], [-1, 1]]], dtype=np.float32)
    app = ImageApp(image)
    async with app.run_test(size=(20, 4)) as pilot:
        widget = app.query_one(HalfBlockImage)
        assert widget.size.width == 2 and widget.size.height == 1
        segments = list(widget.render_line(0))
        cells = [(seg.text, seg.style.color.triplet, seg.style.bgcolor.triplet) for seg in segments for _ in seg.text]
        assert [c[0] for c in cells] == ["▀", "▀"]
        assert cells[0][1:] == ((0, 0, 0), (255, 0, 0))
        assert cells[1][1:] == ((255, 255, 255), (0, 0, 255))
        await pilot.pause()


async def test_odd_heights_leave_the_last_lower_half_empty():
    app = ImageApp(torch.zeros(1, 3, 4))
    async with app.run_test(size=(20, 4)):
        widget = app.query_one(HalfBlockImage)
        assert widget.size.height == 2
        last = list(widget.render_line(1))
        assert all(seg.style.bgcolor is None for seg in last)
        assert sum(len(seg.text) for seg in last) == 4


async def test_runs_of_equal_cells_share_one_segment():
    app = ImageApp(torch.zeros(1, 2, 10))
    async with app.run_test(size=(20, 4)):
        segments = list(app.query_one(HalfBlockImage).render_line(0))
        assert len(segments) == 1 and segments[0].text == "▀" * 10


async def test_gray_uses_the_24_step_ramp_in_256_colours(monkeypatch):
    monkeypatch.delenv("COLORTERM", raising=False)
    monkeypatch.setenv("TERM", "xterm-256color")
    levels = torch.tensor([-1.0, -0.5, 0.0, 0.5, 1.0]).reshape(1, 1, 5)
    app = ImageApp(levels.expand(1, 2, 5).clone())
    async with app.run_test(size=(20, 4)):
        assert app.console.color_system == "256"
        segments = list(app.query_one(HalfBlockImage).render_line(0))
        numbers = [seg.style.color.number for seg in segments]
        assert numbers[0] == 16 and numbers[-1] == 231
        assert all(232 <= n <= 255 for n in numbers[1:-1]) and numbers[1] < numbers[2] < numbers[3]


def test_shrink_averages_pixel_blocks():
    image = torch.tensor([[[-1.0, 1.0, 1.0, 1.0], [-1.0, 1.0, 1.0, 1.0]]])
    grid = to_rgb_grid(image, shrink=2)
    assert grid.shape == (1, 2, 3)
    assert tuple(grid[0, 0]) == (128, 128, 128) and tuple(grid[0, 1]) == (255, 255, 255)


def test_fit_grid_shrinks_until_the_images_fit_and_counts_what_it_must_leave_out():
    from ddpm_tui.widgets import fit_grid

    assert fit_grid(4, 28, width=80, height=40) == (1, 2, 4)  # room enough at full resolution
    shrink, columns, shown = fit_grid(16, 28, width=38, height=18)  # an 80x24 terminal's half, form folded
    assert shown == 16 and shrink > 1 and columns * -(-16 // columns) >= 16
    side = 28 // shrink
    assert -(-16 // columns) * (side + 1) - 1 <= 2 * 18  # the rows of images fit the cells' pixel rows
    assert fit_grid(64, 28, width=38, height=18, max_shrink=4) == (4, 4, 16)  # too many: show what fits
