"""Datasets: the bundled subsets, IDX folders in both layouts, and clear errors."""

import gzip
import time

import numpy as np
import pytest
import torch

from core import DataError, load_dataset
from core.data import SUBSET_TRAINING_IMAGES, load_bundled, load_full, read_idx


@pytest.mark.parametrize(
    "name,split,count",
    [
        ("mnist", "train", 5000),
        ("mnist", "test", 10000),
        ("fashion_mnist", "train", 10000),
        ("fashion_mnist", "test", 5000),
    ],
)
def test_bundled_datasets(name, split, count):
    data = load_bundled(name, split)
    assert data.images.shape == (count, 1, 28, 28)
    assert data.images.dtype == torch.float32
    assert data.images.min().item() == -1.0 and data.images.max().item() == 1.0
    counts = torch.bincount(data.labels)
    assert len(counts) == 10 and counts.min() > count // 20
    if (name, split) != ("mnist", "test"):  # the subsets are class-balanced; MNIST's test set is not quite
        assert counts.tolist() == [count // 10] * 10
    assert "bundled" in data.source


@pytest.mark.parametrize("name", ["mnist", "fashion_mnist"])
def test_training_on_a_subset_uses_the_same_number_of_images_for_every_dataset(name):
    """So the default run takes the same time on either; the first images of a shuffled file are a random subset."""
    data = load_dataset(name, "train")
    assert len(data) == SUBSET_TRAINING_IMAGES == 5000
    torch.testing.assert_close(data.images, load_bundled(name, "train").images[:5000])
    assert torch.bincount(data.labels, minlength=10).min() > 400
    assert len(load_dataset(name, "test")) == len(load_bundled(name, "test"))


def write_idx(path, array: np.ndarray, gz: bool) -> None:
    header = bytes([0, 0, 8, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    payload = header + array.astype(np.uint8).tobytes()
    (gzip.open if gz else open)(path, "wb").write(payload)


@pytest.fixture
def fake_images():
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (6, 28, 28), dtype=np.uint8), np.arange(6, dtype=np.uint8) % 10


@pytest.mark.parametrize("layout,gz", [("flat", True), ("torchvision", False)])
def test_data_dir_in_both_layouts(tmp_path, fake_images, layout, gz):
    images, labels = fake_images
    folder = tmp_path if layout == "flat" else tmp_path / "MNIST" / "raw"
    folder.mkdir(parents=True, exist_ok=True)
    suffix = ".gz" if gz else ""
    write_idx(folder / f"train-images-idx3-ubyte{suffix}", images, gz)
    write_idx(folder / f"train-labels-idx1-ubyte{suffix}", labels, gz)
    data = load_dataset("mnist", "train", data_dir=tmp_path)
    assert len(data) == 6
    np.testing.assert_array_equal(((data.images[:, 0] + 1) * 127.5).round().numpy(), images)
    assert data.labels.tolist() == labels.tolist()
    np.testing.assert_array_equal(read_idx(folder / f"train-images-idx3-ubyte{suffix}"), images)


def test_data_dir_without_files(tmp_path):
    with pytest.raises(DataError, match="has no train-images-idx3-ubyte"):
        load_dataset("mnist", "train", data_dir=tmp_path)


def test_unknown_dataset():
    with pytest.raises(DataError, match="unknown dataset"):
        load_dataset("imagenet")


def test_offline_full_request_fails_fast_and_auto_falls_back():
    start = time.monotonic()
    if load_full("mnist", "train") is not None:
        pytest.skip("this machine can download MNIST")
    assert time.monotonic() - start < 60
    with pytest.raises(DataError, match="--data_dir"):
        load_dataset("mnist", "train", data="full")
    assert "bundled" in load_dataset("mnist", "train", data="auto").source
