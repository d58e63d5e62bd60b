"""Shared fixtures: a tiny, fast training configuration and a trained tiny run."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

torch.set_num_threads(2)

_TINY_TRAIN_ARGS = "--epochs 1 --batch_size 32 --max_images 64 --timesteps 20 --base_channels 8 --seed 0".split()


@pytest.fixture
def tiny_train_args() -> list[str]:
    """``ddpm-tui train`` flags for a run of a few seconds: 64 images, T = 20, a width-8 U-Net."""
    return list(_TINY_TRAIN_ARGS)


@pytest.fixture
def train_command(tiny_train_args: list[str]):
    """The real ``ddpm-tui train`` command line for a tiny run into ``run``, with ``extra`` flags (later flags
    win), for tests that start training as its own process."""

    def command(run: Path, *extra: str) -> list[str]:
        return [sys.executable, "-m", "ddpm_tui", "train", *tiny_train_args, *extra, "--output_dir", str(run)]

    return command


@pytest.fixture(autouse=True)
def offline_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep downloads and caches out of the user's home folder."""
    monkeypatch.setenv("DDPM_TUI_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run folder produced by the real command line on a tiny configuration (trained once per session)."""
    from ddpm_tui.cli import main

    run = tmp_path_factory.mktemp("tiny_run")
    assert main(["train", *_TINY_TRAIN_ARGS, "--output_dir", str(run)]) == 0
    return run


@pytest.fixture(scope="session")
def tiny_conditional_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Like ``tiny_run``, trained with ``--conditional``."""
    from ddpm_tui.cli import main

    run = tmp_path_factory.mktemp("tiny_conditional_run")
    assert main(["train", *_TINY_TRAIN_ARGS, "--conditional", "--output_dir", str(run)]) == 0
    return run
