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
