"""Your own pictures as a dataset: a folder of image files, decoded once and cached.

Every file Pillow can read with one of :data:`SUFFIXES` is found, in the folder and its sub-folders
(hidden ones are skipped). When the folder holds no images itself but two or more sub-folders, each
sub-folder is a class, named by the folder and numbered in sorted order.

Each image is decoded once, in parallel threads (Pillow decodes and resizes outside Python's lock): its
shorter side is resized to ``image_size`` with an antialiasing (Lanczos) filter and the centre square is
kept; alpha is composited onto black. A JPEG much larger than needed is decoded at a reduced scale first
(``Image.draft``). A file whose header declares more than :data:`MAX_PIXELS` pixels is refused unread (a
decompression bomb), and a file that cannot be decoded is skipped and counted.

The decoded uint8 pixels are cached in the cache folder, keyed by the list of files with their sizes and
modification times, so a second start on an unchanged folder reads one file instead of decoding again.

One image in ten (at most :data:`MAX_HELD_OUT`) is held out of training, chosen by a hash of its path so
the split stays the same while the folder does: :mod:`core.memorisation` compares the model's samples
with the training images against the held-out ones.
"""

from __future__ import annotations

import hashlib
import os
import pickle
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from .checkpoint import atomic_save
from .config import TrainConfig
from .data import DEFAULT_SIZE_CAP, FOLDER, IMAGE_SIZES, DataError, Dataset, cache_dir, load_dataset
from .memorisation import Memorisation, memorisation

SUFFIXES: tuple[str, ...] = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff")
MAX_PIXELS = 50_000_000  # a header declaring more (e.g. 100,000 x 100,000) is refused without decoding
SIZE_STEP = 4  # default sizes are a multiple of 4, which the default U-Net halves twice without rounding
HELD_OUT_SHARE = 0.1
MAX_HELD_OUT = 1000
LUMA = (299, 587, 114)  # ITU-R 601-2 luma weights (per mille), as Pillow converts RGB to gray

Progress = Callable[[int, int], None]  # called with (done, total) as images decode


@dataclass(frozen=True)
class Listing:
    """The image files of a folder: paths relative to ``root`` (sorted), each one's class index into
    ``classes`` (empty when the folder has no class sub-folders), and a ``stamp`` that changes whenever a
    file is added, removed, resized or modified."""

    root: Path
    files: tuple[str, ...]
    labels: tuple[int, ...]
    classes: tuple[str, ...]
    stamp: str


def _visible(name: str) -> bool:
    return not name.startswith(".")


def _image_files(root: Path) -> list[tuple[str, int, int]]:
    """(relative path, bytes, modification time in ns) of every image file under ``root``, sorted."""
    found = []
    for folder, dirs, names in os.walk(root):
        dirs[:] = sorted(d for d in dirs if _visible(d))
        for name in names:
            if _visible(name) and Path(name).suffix.lower() in SUFFIXES:
                path = Path(folder) / name
                stat = path.stat()
                found.append((path.relative_to(root).as_posix(), stat.st_size, stat.st_mtime_ns))
    return sorted(found)


def list_folder(root: str | Path) -> Listing:
    """The image files under ``root`` and their classes; :class:`DataError` for a folder that does not
    exist, holds no image file, or has a class sub-folder without images."""
    root = Path(root).expanduser()
    if not root.is_dir():
        raise DataError(f"--data_dir {root} {'is not a folder' if root.exists() else 'does not exist'}")
    entries = _image_files(root)
    if not entries:
        raise DataError(f"--data_dir {root} holds no images ({' '.join(SUFFIXES)}), in it or its sub-folders")
    subfolders = sorted(p.name for p in root.iterdir() if p.is_dir() and _visible(p.name))
    classes: tuple[str, ...] = ()
    if len(subfolders) >= 2 and all("/" in name for name, _, _ in entries):
        counts = Counter(name.split("/", 1)[0] for name, _, _ in entries)
        empty = [name for name in subfolders if counts[name] == 0]
        if empty:
            raise DataError(
                f"the class sub-folder {root / empty[0]} holds no images; each sub-folder of --data_dir is a class, "
                "so add images to it or move it out"
            )
        classes = tuple(subfolders)
    index = {name: i for i, name in enumerate(classes)}
    labels = tuple(index[name.split("/", 1)[0]] if classes else 0 for name, _, _ in entries)
    stamp = hashlib.sha256(repr(entries).encode()).hexdigest()[:20]
    return Listing(root, tuple(name for name, _, _ in entries), labels, classes, stamp)


def oversized(width: int, height: int) -> str | None:
    """Why an image whose header declares ``width`` x ``height`` is refused unread (None when it is not)."""
    if width * height > MAX_PIXELS:
        return f"refused unread: its header declares {width:,}x{height:,} pixels, over {MAX_PIXELS:,}"
    return None


def probe(path: Path) -> tuple[int, int] | str:
    """An image file's (width, height) from its header alone, or why it cannot be used."""
    try:
        with Image.open(path) as image:
            width, height = image.size
    except Image.DecompressionBombError as err:
        return f"refused unread: {err}"
    except (OSError, SyntaxError, ValueError) as err:  # PIL's UnidentifiedImageError is an OSError
        return f"not a readable image ({type(err).__name__})"
    return oversized(width, height) or (width, height)


def default_image_size(sizes: list[tuple[int, int]]) -> int:
    """The folder's most common image size's shorter side, rounded to a multiple of :data:`SIZE_STEP`,
    between the smallest size and :data:`DEFAULT_SIZE_CAP`."""
    (width, height), _ = Counter(sizes).most_common(1)[0]
    rounded = SIZE_STEP * round(min(width, height) / SIZE_STEP)
    return int(min(max(rounded, IMAGE_SIZES[0]), DEFAULT_SIZE_CAP))


def centre_square(width: int, height: int) -> tuple[int, int, int, int]:
    """The box (left, top, right, bottom) of the largest square in the middle of a width x height image."""
    side = min(width, height)
    left, top = (width - side) // 2, (height - side) // 2
    return left, top, left + side, top + side


def as_rgb(image: Image.Image) -> Image.Image:
    """``image`` in RGB, with any transparency composited onto black."""
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La") or image.has_transparency_data:
        rgba = image.convert("RGBA")
        black = Image.new("RGB", rgba.size)
        black.paste(rgba, mask=rgba.getchannel("A"))
        return black
    return image.convert("RGB")


def decode(path: Path, size: int) -> np.ndarray | str:
    """The image at ``path`` as (size, size, 3) uint8: its centre square resized to ``size`` with
    antialiasing (GIFs: the first frame); or why it cannot be decoded."""
    try:
        with Image.open(path) as image:
            refused = oversized(*image.size)
            if refused:
                return refused
            image.draft("RGB", (size, size))  # JPEG only: decode at 1/2, 1/4 or 1/8 scale when that is enough
            rgb = as_rgb(image)
            box = centre_square(*rgb.size)
            return np.asarray(rgb.resize((size, size), Image.Resampling.LANCZOS, box=box, reducing_gap=3.0))
    except Image.DecompressionBombError as err:
        return f"refused unread: {err}"
    except (OSError, SyntaxError, ValueError, EOFError) as err:
        return f"not a readable image ({type(err).__name__})"


def _parallel(work: Callable, paths: list[Path], progress: Progress | None) -> list:
    """``work`` on every path in threads (as many as this job's share of the cores), in order."""
    results = []
    with ThreadPoolExecutor(max(1, torch.get_num_threads())) as pool:
        for done, result in enumerate(pool.map(work, paths), start=1):
            results.append(result)
            if progress is not None and (done % 64 == 0 or done == len(paths)):
                progress(done, len(paths))
    return results


def _cache_file(listing: Listing, what: str) -> Path:
    return cache_dir() / "folders" / f"{listing.stamp}-{what}.pt"


def _read_cache(path: Path) -> dict | None:
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except (OSError, RuntimeError, ValueError, EOFError, pickle.UnpicklingError):
        return None


def _write_cache(path: Path, payload: dict) -> None:
    """Keep ``payload`` for the next start; a cache folder that cannot be written only costs time."""
    try:
        atomic_save(payload, path)
    except OSError:
        pass


def image_sizes(listing: Listing) -> list[tuple[int, int] | str]:
    """Each file's (width, height) from its header, or why it cannot be used (cached)."""
    path = _cache_file(listing, "headers")
    cached = _read_cache(path)
    if cached is None:
        found = _parallel(probe, [listing.root / name for name in listing.files], None)
        cached = {"headers": [list(h) if isinstance(h, tuple) else h for h in found]}
        _write_cache(path, cached)
    return [tuple(h) if isinstance(h, list) else h for h in cached["headers"]]  # type: ignore[misc]


@dataclass(frozen=True)
class Decoded:
    """A folder decoded at one size: the readable images as uint8 (N, 3, size, size), the index of each
    in the listing, and each skipped file with the reason."""

    pixels: torch.Tensor
    kept: tuple[int, ...]
    skipped: tuple[tuple[str, str], ...]


def decode_folder(listing: Listing, size: int, progress: Progress | None = None) -> Decoded:
    """Every image of ``listing`` as (size, size) RGB, decoded in parallel, or read from the cache."""
    path = _cache_file(listing, f"{size}px")
    cached = _read_cache(path)
    if cached is not None:
        return Decoded(cached["pixels"], tuple(cached["kept"]), tuple(map(tuple, cached["skipped"])))
    results = _parallel(lambda p: decode(p, size), [listing.root / name for name in listing.files], progress)
    kept = tuple(i for i, r in enumerate(results) if not isinstance(r, str))
    skipped = tuple((listing.files[i], r) for i, r in enumerate(results) if isinstance(r, str))
    stacked = np.stack([results[i] for i in kept]) if kept else np.zeros((0, size, size, 3), np.uint8)
    pixels = torch.from_numpy(stacked).permute(0, 3, 1, 2).contiguous()
    _write_cache(path, {"pixels": pixels, "kept": list(kept), "skipped": [list(s) for s in skipped]})
    return Decoded(pixels, kept, skipped)


def to_gray(rgb: torch.Tensor) -> torch.Tensor:
    """uint8 (N, 3, H, W) to (N, 1, H, W): L = (299 R + 587 G + 114 B) / 1000, rounded."""
    weights = torch.tensor(LUMA, dtype=torch.int32).view(1, 3, 1, 1)
    return ((rgb.int() * weights).sum(1, keepdim=True) + 500).div(1000, rounding_mode="floor").to(torch.uint8)


def is_gray(rgb: torch.Tensor) -> bool:
    """Whether every pixel of uint8 (N, 3, H, W) has equal red, green and blue."""
    return bool((rgb[:, :1] == rgb[:, 1:]).all())


def held_out(files: list[str]) -> torch.Tensor:
    """Which of ``files`` are held out of training: the :data:`HELD_OUT_SHARE` whose path hashes lowest
    (at most :data:`MAX_HELD_OUT`, none of fewer than two), the same for as long as the files are."""
    count = min(MAX_HELD_OUT, round(HELD_OUT_SHARE * len(files))) if len(files) >= 2 else 0
    order = sorted(range(len(files)), key=lambda i: hashlib.sha1(files[i].encode()).hexdigest())
    mask = torch.zeros(len(files), dtype=torch.bool)
    mask[order[:count]] = True
    return mask


def skipped_note(skipped: tuple[tuple[str, str], ...]) -> str:
    """'2 files skipped (first: a.png, not a readable image (...))', or "" when none were."""
    if not skipped:
        return ""
    name, why = skipped[0]
    return f"{len(skipped):,} file{'s' if len(skipped) > 1 else ''} skipped (first: {name}, {why})"


def load_folder(
    root: str | Path,
    split: str = "train",
    image_size: int | None = None,
    channels: int | None = None,
    progress: Progress | None = None,
) -> Dataset:
    """The training images (``split`` "train") or the held-out ones ("test") of the folder ``root``, at
    ``image_size`` (default: see :func:`default_image_size`) with ``channels`` (1 or 3; default gray when
    every image is gray). ``progress(done, total)`` is called while images decode for the first time.
    :class:`DataError` when no file can be read."""
    listing = list_folder(root)
    if image_size is None:
        sizes = [s for s in image_sizes(listing) if not isinstance(s, str)]
        image_size = default_image_size(sizes) if sizes else DEFAULT_SIZE_CAP
    decoded = decode_folder(listing, image_size, progress)
    if not decoded.kept:
        name, why = decoded.skipped[0]
        raise DataError(
            f"none of the {len(listing.files):,} image files in {listing.root} can be used (first: {name}, {why})"
        )
    gray = is_gray(decoded.pixels) if channels is None else channels == 1
    pixels = to_gray(decoded.pixels) if gray else decoded.pixels
    files = [listing.files[i] for i in decoded.kept]
    labels = torch.tensor([listing.labels[i] for i in decoded.kept], dtype=torch.long)
    held = held_out(files)
    chosen = held if split == "test" else ~held
    what = [
        f"{int((~held).sum()):,} training images, {int(held.sum()):,} held out",
        f"{len(listing.classes)} classes" if listing.classes else "",
        f"{image_size}x{image_size} {'gray' if gray else 'RGB'}",
        skipped_note(decoded.skipped),
    ]
    source = f"folder {listing.root} ({', '.join(w for w in what if w)})"
    return Dataset(FOLDER, split, pixels[chosen], labels[chosen], source, class_names=listing.classes)


def run_data(config: TrainConfig, split: str = "train", progress: Progress | None = None) -> Dataset:
    """The images a run of ``config`` trains on (``split`` "train") or that were held out of it ("test"):
    a folder's (see :func:`load_folder`), or a named dataset's (its test split is always the bundled one)."""
    if config.dataset == FOLDER:
        return load_folder(config.data_dir or ".", split, config.image_size, config.channels, progress)
    if split == "train":
        return load_dataset(config.dataset, split, config.data, Path(config.data_dir) if config.data_dir else None)
    return load_dataset(config.dataset, split)


def run_memorisation(config: TrainConfig, images: torch.Tensor) -> tuple[Dataset, Memorisation]:
    """The images a run of ``config`` trained on (its ``max_images`` included), and how near ``images`` come
    to them against the run's held-out images (see :mod:`core.memorisation`)."""
    training = run_data(config, "train")
    if config.max_images is not None:
        training = training.head(config.max_images)
    return training, memorisation(images, training.pixels, run_data(config, "test").pixels)
