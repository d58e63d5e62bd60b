"""The maintainer's script that turns the PyPI copy of MNIST into IDX files: what it writes reads back
through the product's own reader, and the unpickler it reads with (core.data.ArrayUnpickler) runs nothing but NumPy."""

from __future__ import annotations

import gzip
import importlib.util
import os
import pickle
from pathlib import Path

import numpy as np
import pytest

from core.data import ArrayUnpickler, read_idx

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "export_full_mnist.py"


@pytest.fixture(scope="module")
def export():
    spec = importlib.util.spec_from_file_location("export_full_mnist", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_written_idx_files_read_back_through_the_products_reader(export, tmp_path):
    images = np.random.default_rng(0).integers(0, 256, (7, 28, 28), dtype=np.uint8)
    labels = np.arange(7, dtype=np.uint8)
    export.write_idx(tmp_path / "images.gz", images)
    export.write_idx(tmp_path / "labels.gz", labels)
    np.testing.assert_array_equal(read_idx(tmp_path / "images.gz"), images)
    np.testing.assert_array_equal(read_idx(tmp_path / "labels.gz"), labels)


def test_pixels_come_back_as_the_bytes_they_were_stored_from(export):
    pixels = np.arange(256, dtype=np.uint8).repeat(4)[:784].reshape(1, 784)
    np.testing.assert_array_equal(export.to_bytes(pixels.astype(np.float32) / 256), pixels.reshape(1, 28, 28))
    with pytest.raises(ValueError):
        export.to_bytes(pixels.astype(np.float32) / 255)  # not k/256: refuse rather than round


class RunsACommand:
    def __reduce__(self):
        return (os.system, ("echo should-not-run",))


def test_the_unpickler_loads_arrays_and_refuses_anything_else(export, tmp_path):
    arrays = tmp_path / "arrays.pkl.gz"
    with gzip.open(arrays, "wb") as f:
        pickle.dump(((np.zeros((2, 784), np.float32), np.zeros(2, np.int64)),), f, protocol=4)
    with gzip.open(arrays, "rb") as f:
        ((x, y),) = ArrayUnpickler(f, encoding="latin1").load()
    assert x.shape == (2, 784) and y.shape == (2,)

    hostile = tmp_path / "hostile.pkl.gz"
    with gzip.open(hostile, "wb") as f:
        pickle.dump(RunsACommand(), f, protocol=4)
    with gzip.open(hostile, "rb") as f, pytest.raises(pickle.UnpicklingError):
        ArrayUnpickler(f, encoding="latin1").load()
