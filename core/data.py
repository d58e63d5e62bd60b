"""Datasets: real images held as uint8 pixels (a quarter of float32's memory: CIFAR-10's 50,000 training
images take 154 MB instead of 614), turned into floats in [-1, 1] where they are used.

MNIST and Fashion-MNIST work offline out of the box from subsets shipped in ``core/assets`` (see the
NOTICE there). The full datasets are used when they can be found, in this order: a ``data_dir`` the user
names (IDX files, plain or ``.gz``, flat or in torchvision's ``NAME/raw/`` layout), Debian's install path
for Fashion-MNIST, this project's cache folder, then torchvision's download when the machine is online.

CIFAR-10 (3x32x32 colour, 170 MB) is not bundled: it comes from a ``data_dir`` holding the official
"python version" batches (``cifar-10-batches-py``), the cache folder, or torchvision's download. Its
batches are pickles, read with an unpickler that accepts only the NumPy array types they contain.
"""

from __future__ import annotations

import gzip
import os
import pickle
import socket
from dataclasses import dataclass
from functools import cached_property
from importlib import resources
from pathlib import Path

import numpy as np
import torch

DATASETS: tuple[str, ...] = ("mnist", "fashion_mnist", "cifar10")
FOLDER = "folder"  # your own images: --dataset folder --data_dir PATH (see core.folder)
IMAGE_SIZES = (8, 256)  # the sizes a folder's images may be resized to
DEFAULT_SIZE_CAP = 64  # the largest size chosen for a folder unasked (a CPU trains 64x64 slowly)
BUNDLED: tuple[str, ...] = ("mnist", "fashion_mnist")
DATA_MODES: tuple[str, ...] = ("subset", "full", "auto")
CLASS_NAMES: dict[str, tuple[str, ...]] = {
    "mnist": tuple(str(d) for d in range(10)),
    "fashion_mnist": (
        "T-shirt/top",
        "Trouser",
        "Pullover",
        "Dress",
        "Coat",
        "Sandal",
        "Shirt",
        "Sneaker",
        "Bag",
        "Ankle boot",
    ),
    "cifar10": ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"),
}
CIFAR_FOLDER = "cifar-10-batches-py"
CIFAR_FILES: dict[str, tuple[str, ...]] = {
    "train": tuple(f"data_batch_{i}" for i in range(1, 6)),
    "test": ("test_batch",),
}
CIFAR_HELP = (
    "CIFAR-10 is not bundled (170 MB): download the python version from "
    "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz, extract it and pass "
    f"--data_dir PATH/{CIFAR_FOLDER} (or run once with internet access to download it to the cache)"
)
DEBIAN_DIRS: dict[str, Path] = {"fashion_mnist": Path("/usr/share/datasets/fashion-mnist")}
DOWNLOAD_TIMEOUT_S = 5.0


class DataError(Exception):
    """A dataset could not be found or read; the message says what to do."""


@dataclass(frozen=True)
class Dataset:
    """A whole dataset held in memory.

    ``pixels`` is uint8 (N, C, H, W) in 0..255, ``images`` the same as float32 in [-1, 1] (made on first
    use; training converts one batch at a time instead, see :func:`to_model_range`); ``labels`` is int64
    (N,); ``source`` says where the images came from, for the console; ``hflip`` says whether mirror
    images are equally valid examples (true for photographs, not for digits), so training may flip them
    at random; ``class_names`` names the labels where the dataset is not one of ``CLASS_NAMES``' (a folder's
    class sub-folders).
    """

    name: str
    split: str
    pixels: torch.Tensor
    labels: torch.Tensor
    source: str
    hflip: bool = False
    class_names: tuple[str, ...] = ()

    @property
    def classes(self) -> tuple[str, ...]:
        """The names of the classes, in label order (none for a folder without class sub-folders)."""
        return self.class_names or CLASS_NAMES.get(self.name, ())

    def __len__(self) -> int:
        return len(self.labels)

    @cached_property
    def images(self) -> torch.Tensor:
        return to_model_range(self.pixels)

    def head(self, count: int) -> Dataset:
        """The first ``count`` images (the bundled files are shuffled, so this is a random subset)."""
        if count >= len(self):
            return self
        return self.subset(torch.arange(count), f"first {count:,} used")

    def subset(self, indices: torch.Tensor, what: str) -> Dataset:
        """The images at ``indices``; ``what`` says which, after the source."""
        return Dataset(
            self.name,
            self.split,
            self.pixels[indices],
            self.labels[indices],
            f"{self.source}, {what}",
            self.hflip,
            self.class_names,
        )

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return tuple(self.pixels.shape[1:])  # type: ignore[return-value]


MAX_FORWARD_ROWS = 32


def forward_examples(data: Dataset, count: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """``count`` random images of ``data`` and one fixed noise draw for each, (x_0, eps), to show the
    forward process with: every t uses the same eps, so the images dissolve smoothly. At most
    ``MAX_FORWARD_ROWS`` (what one figure can show); ``ValueError`` otherwise."""
    if not 1 <= count <= MAX_FORWARD_ROWS:
        raise ValueError(f"the forward process is shown for 1 to {MAX_FORWARD_ROWS} images, got {count}")
    x0 = pick_images(data, count, generator)
    return x0, torch.randn(x0.shape, generator=generator)


def pick_images(data: Dataset, count: int, generator: torch.Generator) -> torch.Tensor:
    """``count`` different images of ``data`` drawn at random; ``ValueError`` if it has fewer."""
    if not 1 <= count <= len(data):
        raise ValueError(
            f"the {data.name} {data.split} images number {len(data):,}; ask for 1 to that many, got {count}"
        )
    return data.images[torch.randperm(len(data), generator=generator)[:count]]


def cache_dir() -> Path:
    """Where downloads are kept: ``$DDPM_TUI_CACHE`` or ``~/.cache/ddpm-tui``."""
    return Path(os.environ.get("DDPM_TUI_CACHE", Path.home() / ".cache" / "ddpm-tui"))


def to_model_range(pixels: torch.Tensor) -> torch.Tensor:
    """uint8 pixels in 0..255 to float32 in [-1, 1]: x = p / 127.5 - 1."""
    return pixels.float().div(127.5).sub(1.0)


def as_pixels(images: np.ndarray) -> torch.Tensor:
    """uint8 gray images (N, H, W) as a (N, 1, H, W) tensor."""
    return torch.from_numpy(np.array(images, dtype=np.uint8)).unsqueeze(1)


def read_idx(path: Path) -> np.ndarray:
    """Read an IDX file (the MNIST format: big-endian header of dimensions, then uint8 data), plain or gzipped."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            data = f.read()
        if data[:2] != b"\x00\x00" or data[2] != 0x08:
            raise DataError(f"{path} is not an IDX file of unsigned bytes")
        ndim = data[3]
        shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
        return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape)
    except (OSError, ValueError, IndexError, EOFError) as err:
        raise DataError(f"cannot read {path}: {err}") from None


# Training on a bundled subset uses this many of its images, whatever the dataset, so the default run takes the
# same few minutes for MNIST (5,000 bundled) and Fashion-MNIST (10,000 bundled, all of which train the
# scoring classifier).
SUBSET_TRAINING_IMAGES = 5000


def load_bundled(name: str, split: str) -> Dataset:
    """The whole subset of ``name`` shipped with the package (see ``core/assets/NOTICE.md``)."""
    ref = resources.files("core") / "assets" / f"{name}_{split}.npz"
    with resources.as_file(ref) as path, np.load(path) as arrays:
        images, labels = arrays["images"], arrays["labels"]
    return Dataset(
        name,
        split,
        as_pixels(images),
        torch.as_tensor(labels).long(),
        f"bundled {name} {split} subset ({len(labels):,} images)",
    )


def _idx_prefix(split: str) -> str:
    return "train" if split == "train" else "t10k"


def find_idx_pair(root: Path, split: str) -> tuple[Path, Path] | None:
    """The image and label IDX files of ``split`` anywhere under ``root`` (plain preferred over ``.gz``)."""
    prefix = _idx_prefix(split)
    found = []
    for kind in ("images-idx3-ubyte", "labels-idx1-ubyte"):
        candidates = sorted(root.rglob(f"{prefix}-{kind}*"), key=lambda p: (p.suffix == ".gz", len(p.parts)))
        candidates = [p for p in candidates if p.name in (f"{prefix}-{kind}", f"{prefix}-{kind}.gz")]
        if not candidates:
            return None
        found.append(candidates[0])
    return found[0], found[1]


def load_idx_dir(name: str, split: str, root: Path) -> Dataset | None:
    """The full ``split`` of ``name`` from IDX files under ``root``, or None if they are not there."""
    if not root.is_dir():
        return None
    pair = find_idx_pair(root, split)
    if pair is None:
        return None
    images, labels = read_idx(pair[0]), read_idx(pair[1])
    if images.ndim != 3 or len(images) != len(labels):
        raise DataError(f"{pair[0]} and {pair[1]} do not hold matching images and labels")
    return Dataset(
        name,
        split,
        as_pixels(images),
        torch.as_tensor(labels.copy()).long(),
        f"{name} {split} from {pair[0].parent} ({len(labels):,} images)",
    )


class ArrayUnpickler(pickle.Unpickler):
    """Unpickles plain Python values and NumPy arrays only; any other class or function is refused.

    (``_codecs.encode`` is how protocol-2 pickles written by Python 3 store bytes.)"""

    ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "scalar"),
        ("_codecs", "encode"),
    }

    def find_class(self, module: str, name: str):
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}")
        return super().find_class(module, name)


def read_cifar_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """One CIFAR-10 python batch: uint8 images (N, 3, 32, 32) and int64 labels (N,)."""
    try:
        with open(path, "rb") as f:
            batch = ArrayUnpickler(f, encoding="latin1").load()
        batch = {k.decode() if isinstance(k, bytes) else k: v for k, v in batch.items()}
        images = np.asarray(batch["data"], dtype=np.uint8).reshape(-1, 3, 32, 32)
        labels = np.asarray(batch["labels"], dtype=np.int64)
    except (OSError, pickle.UnpicklingError, EOFError, AttributeError, KeyError, ValueError, TypeError) as err:
        raise DataError(f"cannot read CIFAR-10 batch {path}: {err}") from None
    if len(images) != len(labels):
        raise DataError(f"{path} does not hold matching images and labels")
    return images, labels


def load_cifar_dir(split: str, root: Path) -> Dataset | None:
    """CIFAR-10's ``split`` from the official python batches in ``root`` or ``root/cifar-10-batches-py``."""
    for folder in (root, root / CIFAR_FOLDER):
        paths = [folder / name for name in CIFAR_FILES[split]]
        if all(p.is_file() for p in paths):
            break
    else:
        return None
    parts = [read_cifar_batch(p) for p in paths]
    images = np.concatenate([p[0] for p in parts])
    labels = np.concatenate([p[1] for p in parts])
    return Dataset(
        "cifar10",
        split,
        torch.from_numpy(images),
        torch.from_numpy(labels),
        f"cifar10 {split} from {folder} ({len(labels):,} images)",
        hflip=True,
    )


def load_files(name: str, split: str, root: Path) -> Dataset | None:
    """The full ``split`` of ``name`` from its files under ``root`` (IDX, or CIFAR-10 batches), or None."""
    return load_cifar_dir(split, root) if name == "cifar10" else load_idx_dir(name, split, root)


def _torchvision_class(name: str):
    from torchvision import datasets

    return {"mnist": datasets.MNIST, "fashion_mnist": datasets.FashionMNIST, "cifar10": datasets.CIFAR10}[name]


def download(name: str, split: str) -> Dataset | None:
    """Fetch the full dataset with torchvision into the cache folder; None when offline.

    A short socket timeout makes an offline attempt give up within seconds instead of hanging.
    """
    root = cache_dir() / "torchvision"
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(DOWNLOAD_TIMEOUT_S)
    try:
        _torchvision_class(name)(root, train=split == "train", download=True)
    except (OSError, RuntimeError, ValueError):
        return None
    finally:
        socket.setdefaulttimeout(previous)
    return load_files(name, split, root)


def load_full(name: str, split: str, data_dir: Path | None = None, allow_download: bool = True) -> Dataset | None:
    """The full dataset from the first place that has it (see the module docstring), or None."""
    places = [data_dir] if data_dir is not None else []
    places += [DEBIAN_DIRS[name]] if name in DEBIAN_DIRS else []
    places.append(cache_dir() / "torchvision" / ("" if name == "cifar10" else _torchvision_class(name).__name__))
    for place in places:
        found = load_files(name, split, place)
        if found is not None:
            return found
    return download(name, split) if allow_download else None


def load_dataset(name: str, split: str = "train", data: str = "subset", data_dir: Path | None = None) -> Dataset:
    """Load ``split`` ("train" or "test") of dataset ``name``.

    ``data`` chooses the source: "subset" the bundled subset (offline, predictable training time),
    "full" the full dataset (an error if it cannot be found or downloaded), "auto" the full dataset when
    available, else the subset. A ``data_dir`` must hold the files: naming one that does not is an error.
    """
    if name not in DATASETS:
        raise DataError(f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)}")
    if data not in DATA_MODES:
        raise DataError(f"unknown data mode {data!r}; choose one of {', '.join(DATA_MODES)}")
    if data_dir is not None:
        found = load_files(name, split, data_dir)
        if found is None and name == "cifar10":
            raise DataError(
                f"--data_dir {data_dir} has no {', '.join(CIFAR_FILES[split])} "
                f"(the official python batches, in {CIFAR_FOLDER}/)"
            )
        if found is None:
            prefix = _idx_prefix(split)
            raise DataError(
                f"--data_dir {data_dir} has no {prefix}-images-idx3-ubyte[.gz] and {prefix}-labels-idx1-ubyte[.gz]"
            )
        return found
    if data == "subset" and name in BUNDLED:
        return _training_subset(load_bundled(name, split))
    found = load_full(name, split)
    if found is not None:
        return found
    if name not in BUNDLED:
        raise DataError(CIFAR_HELP)
    if data == "full":
        raise DataError(
            f"the full {name} dataset was not found and could not be downloaded; "
            f"pass --data_dir with its IDX files, or use --data subset"
        )
    return _training_subset(load_bundled(name, split))


def _training_subset(data: Dataset) -> Dataset:
    """The bundled training images a run uses (see ``SUBSET_TRAINING_IMAGES``); test splits stay whole."""
    return data.head(SUBSET_TRAINING_IMAGES) if data.split == "train" else data
