"""Snapshot tests: each screen's look at 100x32, with fixed seeds and no live timers."""

from __future__ import annotations

import pytest

from ddpm_tui.app import DdpmApp

SIZE = (100, 32)


@pytest.fixture(autouse=True)
def fixed_environment(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("COLORTERM", "truecolor")


def test_noise_screen(snap_compare):
    assert snap_compare(DdpmApp(), terminal_size=SIZE, press=["shift+right", "shift+right", "shift+right"])


def test_noise_screen_cosine_snr(snap_compare):
    assert snap_compare(DdpmApp(), terminal_size=SIZE, press=["s", "l", "end"])


def test_train_screen_form(snap_compare):
    assert snap_compare(DdpmApp(mode="train"), terminal_size=SIZE)


def test_sample_screen_without_checkpoint(snap_compare):
    assert snap_compare(DdpmApp(mode="sample"), terminal_size=SIZE)


def test_help_screen(snap_compare):
    assert snap_compare(DdpmApp(), terminal_size=SIZE, press=["question_mark"])


def test_model_screen_without_checkpoint(snap_compare):
    assert snap_compare(DdpmApp(mode="model"), terminal_size=SIZE)


def test_sample_screen_at_80x24_after_generating(snap_compare):
    """The form folded into one line and 16 images fitted below it. The images are fixed gradients posted as
    a finished sampling run, so the snapshot holds the layout whatever the CPU's arithmetic."""
    import torch

    from ddpm_tui.screens.sample import Frame, SampleProgress, SampleStarted

    async def generated(pilot) -> None:
        screen = pilot.app.screen
        ramp = torch.linspace(-1, 1, 28 * 28).reshape(1, 1, 28, 28)
        images = torch.cat([ramp * (1 - i / 16) for i in range(16)])
        screen.post_message(SampleStarted("mnist", None))
        screen.post_message(SampleProgress(Frame(0, images, images.flip(-1)), 4, 5, 1.0, True, True))
        await pilot.pause()
        await pilot.pause()

    assert snap_compare(DdpmApp(mode="sample"), terminal_size=(80, 24), run_before=generated)
