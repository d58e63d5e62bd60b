"""CIFAR-10 through the real code path, on a few images written in the official python-batch format."""

from __future__ import annotations

import os
import pickle
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from core import DataError, TrainConfig, Trainer, load_dataset, load_model
from ddpm_tui.cli import main

PER_BATCH = 4


def write_batch(path: Path, seed: int) -> np.ndarray:
    """A batch like the official ones: a dict with 'data' (N, 3072) uint8 rows (R, G, B planes) and 'labels'."""
    rng = np.random.default_rng(seed)
    data = rng.integers(0, 256, size=(PER_BATCH, 3072), dtype=np.uint8)
    with open(path, "wb") as f:
        pickle.dump(
            {
                "batch_label": f"batch {seed}",
                "labels": [int(v) for v in rng.integers(0, 10, PER_BATCH)],
                "data": data,
                "filenames": [f"img{i}.png" for i in range(PER_BATCH)],
            },
            f,
            protocol=2,
        )
    return data


@pytest.fixture(scope="module")
def cifar_dir(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("cifar") / "cifar-10-batches-py"
    folder.mkdir()
    for i in range(1, 6):
        write_batch(folder / f"data_batch_{i}", i)
    write_batch(folder / "test_batch", 0)
    return folder


@pytest.mark.parametrize("level", ["batches", "parent"])
def test_official_batches_load_as_colour_images_in_model_range(cifar_dir, level):
    root = cifar_dir if level == "batches" else cifar_dir.parent
    train = load_dataset("cifar10", "train", data_dir=root)
    assert len(train) == 5 * PER_BATCH and train.image_shape == (3, 32, 32) and train.hflip
    first = write_batch(cifar_dir.parent / "again", 1)  # the same seed gives the same pixels
    expected = torch.from_numpy(first.reshape(-1, 3, 32, 32)).float() / 127.5 - 1
    torch.testing.assert_close(train.images[:PER_BATCH], expected)
    assert len(load_dataset("cifar10", "test", data_dir=root)) == PER_BATCH


def test_a_batch_that_would_run_code_is_refused(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    for name in [f"data_batch_{i}" for i in range(1, 6)]:
        with open(folder / name, "wb") as f:
            pickle.dump({"data": os.getcwd, "labels": []}, f)
    with pytest.raises(DataError, match="refusing to load"):
        load_dataset("cifar10", "train", data_dir=folder)


def test_missing_files_are_one_actionable_line_quickly(tmp_path):
    with pytest.raises(DataError, match="data_batch_1"):
        load_dataset("cifar10", "train", data_dir=tmp_path)
    start = time.monotonic()
    with pytest.raises(DataError, match="cifar-10-python.tar.gz"):
        load_dataset("cifar10", "train")
    assert time.monotonic() - start < 60


def test_training_flips_about_half_of_each_batch(cifar_dir, tmp_path):
    trainer = Trainer(
        TrainConfig(dataset="cifar10", data_dir=str(cifar_dir), data="full", base_channels=8, output_dir=str(tmp_path))
    )
    torch.manual_seed(0)
    x = trainer.images_at(torch.arange(1)).expand(2000, -1, -1, -1)
    flipped = (trainer._augment(x) != x).flatten(1).any(1).float().mean().item()
    assert flipped == pytest.approx(0.5, abs=0.05)


def test_train_and_sample_cifar10_in_colour(cifar_dir, tiny_train_args, tmp_path):
    run = tmp_path / "run"
    assert (
        main(
            [
                "train",
                *tiny_train_args,
                "--dataset",
                "cifar10",
                "--data_dir",
                str(cifar_dir),
                "--batch_size",
                "8",
                "--output_dir",
                str(run),
            ]
        )
        == 0
    )
    loaded = load_model(run / "model_final.pt")
    assert loaded.image_shape == (3, 32, 32)
    out = tmp_path / "samples.png"
    assert (
        main(
            [
                "sample",
                "--checkpoint",
                str(run / "model_final.pt"),
                "--sampler",
                "dpm++",
                "--steps",
                "5",
                "--num_images",
                "4",
                "--output",
                str(out),
                "--show_intermediate",
            ]
        )
        == 0
    )
    image = Image.open(out)
    assert image.mode == "RGB" and image.size == (2 * 34 + 2, 2 * 34 + 2)
    r, g, b = (np.asarray(channel) for channel in image.split())
    assert not (np.array_equal(r, g) and np.array_equal(g, b))  # colour, not gray
    assert (tmp_path / "intermediate" / "denoising.gif").exists()
