"""Your own images: decoding a folder, training on it as on a bundled dataset, and whether the model copies.

    .venv/bin/python benchmarks/own_images.py --parts decode throughput
    .venv/bin/python benchmarks/own_images.py --parts conditional --seeds 0 1
    .venv/bin/python benchmarks/own_images.py --parts memorisation --checkpoints outputs/headline/seed*/model_final.pt

Each part appends records to ``docs/records/own-images/PART.jsonl`` (``--out``):

- ``decode``: 10,000 generated JPEG and PNG files of mixed sizes, gray and colour; seconds of the first
  ``core.load_folder`` (headers read, then every image decoded and cached) and of a second, cached one.
- ``conditional``: the 5,000 bundled MNIST training digits written as PNGs in ten class sub-folders, and
  the same digits as the bundled dataset, each trained ``--conditional`` for ``--epochs`` (both at once, one
  core each); 1,000 samples of each model, every class equally often, scored by the MNIST classifier.
- ``throughput``: a folder of RGB images at ``--image_size 32`` against CIFAR-10's loader on a set in
  CIFAR-10's own file format (the real data is not bundled; pixel values do not change a step's time),
  images/s of the same model, alternating, medians.
- ``memorisation``: ``ddpm-tui eval --json``'s memorised share for ``--checkpoints`` (the default MNIST run),
  and for a folder of 64 training digits trained for 20 and for 300 epochs.
"""

from __future__ import annotations

import json
import os
import pickle
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import harness  # benchmarks/ is on the path when a script in it runs
import numpy as np
import torch
from PIL import Image

import core

PARTS = ("decode", "conditional", "throughput", "memorisation")
CLI = [sys.executable, "-m", "ddpm_tui"]


def write_digits(root: Path, data: core.Dataset, count: int, classes: bool) -> Path:
    """The first ``count`` images of ``data`` as PNGs, in a sub-folder per class named by its digit."""
    for i in range(count):
        path = root / (str(int(data.labels[i])) if classes else "") / f"{i:05d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(data.pixels[i, 0].numpy()).save(path)
    return root


def write_mixed(root: Path, count: int, seed: int = 0) -> Path:
    """``count`` files made from bundled clothes: sides 28 to 160 pixels, half JPEG and half PNG, a third
    tinted to colour, in ten sub-folders."""
    rng = np.random.default_rng(seed)
    data = core.load_dataset("fashion_mnist", "train")
    for i in range(count):
        side = int(rng.integers(28, 161))
        image = Image.fromarray(data.pixels[i % len(data), 0].numpy()).resize((side, side + int(rng.integers(0, 20))))
        if i % 3 == 0:
            image = Image.merge("RGB", [image.point(lambda v, k=k: int(v * k)) for k in rng.uniform(0.3, 1.0, 3)])
        path = root / f"part{i % 10}" / f"{i:05d}.{'jpg' if i % 2 else 'png'}"
        path.parent.mkdir(parents=True, exist_ok=True)
        image.save(path, quality=90) if path.suffix == ".jpg" else image.save(path)
    return root


def decode_rows(args, work: Path) -> list[dict]:
    """First and cached load of a folder of ``args.files`` mixed files, with a fresh cache folder."""
    folder = write_mixed(work / "mixed", args.files)
    os.environ["DDPM_TUI_CACHE"] = str(work / "cache")
    start = time.perf_counter()
    first = core.load_folder(folder)
    first_s = time.perf_counter() - start
    start = time.perf_counter()
    again = core.load_folder(folder)
    cached_s = time.perf_counter() - start
    assert torch.equal(first.pixels, again.pixels)
    figures = {"first_s": round(first_s, 2), "cached_s": round(cached_s, 3), "shape": list(first.image_shape)}
    config = {"files": args.files, "formats": "jpg png", "sides": "28-160"}
    return [{"part": "decode", "config": config, "figures": figures, "wall_s": first_s + cached_s}]


def class_scores(checkpoint: Path, evaluator: core.Evaluator, count: int, device: torch.device) -> dict:
    """Per-class accuracy, recognised share and distance of ``count`` samples, every class equally often."""
    loaded = core.load_model(checkpoint, device)
    images, labels, seconds = harness.draw(
        loaded.model, loaded.schedule, loaded.image_shape, core.FAST_SAMPLER, None, count, device
    )
    scores = evaluator.score(images, labels)
    accuracy = [round(a, 4) for a in scores.class_accuracy]
    return {**harness.figures(scores), "class_accuracy": accuracy, "min_class_accuracy": min(accuracy)}


def train_together(runs: dict[str, list[str]], threads: int) -> dict[str, float]:
    """Train every run of ``runs`` (name -> train flags) at once, each pinned to its own core; minutes each."""
    processes, start = {}, time.perf_counter()
    for core_index, (name, flags) in enumerate(runs.items()):
        pin = ["taskset", "-c", str(core_index % os.cpu_count())] if threads == 1 else []
        share = ["--threads", str(threads)] if threads else []
        processes[name] = subprocess.Popen(
            [*pin, *CLI, "train", *flags, *share], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
    minutes = {}
    for name, process in processes.items():
        _, err = process.communicate()
        if process.returncode:
            raise SystemExit(f"{name} failed: {err.decode()[-500:]}")
        minutes[name] = round((time.perf_counter() - start) / 60, 2)
    return minutes


def conditional_rows(args, work: Path, device: torch.device) -> list[dict]:
    """A class folder of the bundled digits against the bundled digits, both trained conditionally."""
    folder = write_digits(work / "digits", core.load_dataset("mnist", "train"), 5000, classes=True)
    evaluator = core.Evaluator(core.load_classifier("mnist"))
    rows = []
    for seed in args.seeds:
        common = ["--conditional", "--epochs", str(args.epochs), "--seed", str(seed)]
        runs = {
            "folder": [*common, "--dataset", "folder", "--data_dir", str(folder), "--output_dir", str(work / "f")],
            "bundled": [*common, "--output_dir", str(work / "b")],
        }
        minutes = train_together(runs, args.train_threads)
        for name, run in (("folder", work / "f"), ("bundled", work / "b")):
            figures = class_scores(run / "model_final.pt", evaluator, args.num_images, device)
            config = {"data": name, "epochs": args.epochs, "seed": seed, "num_images": args.num_images}
            rows.append({"part": "conditional", "config": config, "figures": figures, "wall_s": minutes[name] * 60})
    return rows


def write_cifar_format(root: Path, per_batch: int) -> Path:
    """Random images in CIFAR-10's python batches (five training batches and a test batch)."""
    rng = np.random.default_rng(0)
    root.mkdir(parents=True, exist_ok=True)
    for name in (*core.data.CIFAR_FILES["train"], *core.data.CIFAR_FILES["test"]):
        batch = {b"data": rng.integers(0, 256, (per_batch, 3072), dtype=np.uint8), b"labels": [0] * per_batch}
        (root / name).write_bytes(pickle.dumps(batch, protocol=2))
    return root


def median_rate(config: core.TrainConfig) -> float:
    """The median images/s of one epoch of ``config`` after its first five steps."""
    rates = [e.images_per_sec for e in core.Trainer(config).run() if isinstance(e, core.StepEvent)]
    return statistics.median(rates[5:])


def throughput_rows(args, work: Path) -> list[dict]:
    """An RGB folder at 32x32 against the CIFAR-10 loader at the same model size, alternating."""
    folder = work / "rgb"
    for i in range(args.rgb_images):
        pixels = np.random.default_rng(i).integers(0, 256, (40 + i % 30, 48, 3), dtype=np.uint8)
        (folder / f"{i:05d}.png").parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(pixels).save(folder / f"{i:05d}.png")
    cifar = write_cifar_format(work / "cifar", args.rgb_images // 5)
    common = {"epochs": 1, "sample_every": 1000, "output_dir": str(work / "run"), "guide_at": 0.0}
    configs = {
        "folder": core.TrainConfig(dataset="folder", data_dir=str(folder), image_size=32, **common),
        "cifar10": core.TrainConfig(dataset="cifar10", data_dir=str(cifar), data="full", **common),
    }
    rates: dict[str, list[float]] = {name: [] for name in configs}
    for _ in range(args.repeats):
        for name, config in configs.items():
            rates[name].append(median_rate(config))
    folder_rate, cifar_rate = (statistics.median(rates[name]) for name in configs)
    figures = {"folder_img_s": round(folder_rate, 1), "cifar_img_s": round(cifar_rate, 1)}
    figures["ratio"] = round(folder_rate / cifar_rate, 3)
    config = {"images": args.rgb_images, "image_size": 32, "model": "small", "repeats": args.repeats}
    return [{"part": "throughput", "config": config, "figures": figures, "wall_s": 0.0}]


def memorised(checkpoint: Path, count: int) -> dict:
    """``ddpm-tui eval --json``'s copying figures for a checkpoint."""
    done = subprocess.run(
        [*CLI, "eval", "--checkpoint", str(checkpoint), "--num_images", str(count), "--json"],
        capture_output=True,
        text=True,
        check=True,
    )
    result = json.loads(done.stdout)
    keys = ("memorised", "threshold", "median_distance", "held_out_median", "held_out")
    return {key: round(result[key], 4) if isinstance(result[key], float) else result[key] for key in keys}


def memorisation_rows(args, work: Path) -> list[dict]:
    """The memorised share of the given checkpoints, and of a 64-digit folder trained for 20 and 300 epochs
    (71 files: one in ten is held out)."""
    rows = []
    for checkpoint in args.checkpoints:
        config = {"checkpoint": str(checkpoint), "num_images": args.num_images, "data": "bundled mnist"}
        figures = memorised(checkpoint, args.num_images)
        rows.append({"part": "memorisation", "config": config, "figures": figures, "wall_s": 0.0})
    folder = write_digits(work / "small", core.load_dataset("mnist", "train"), 71, classes=False)
    for epochs in args.small_epochs:
        run = work / f"small_{epochs}"
        flags = ["--dataset", "folder", "--data_dir", str(folder), "--epochs", str(epochs), "--sample_every", "1000"]
        minutes = train_together({"small": [*flags, "--output_dir", str(run)]}, 0)["small"]
        config = {"data": "64 digits", "epochs": epochs, "num_images": args.num_images}
        figures = memorised(run / "model_final.pt", args.num_images)
        rows.append({"part": "memorisation", "config": config, "figures": figures, "wall_s": minutes * 60})
    return rows


def main() -> None:
    parser = harness.parser(__doc__)
    parser.add_argument("--parts", nargs="+", choices=PARTS, default=list(PARTS))
    parser.add_argument("--files", type=int, default=10_000, help="files of the decode part")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--train_threads", type=int, default=1, help="threads per training (1: each on a core)")
    parser.add_argument("--rgb_images", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--checkpoints", type=Path, nargs="*", default=[])
    parser.add_argument("--small_epochs", type=int, nargs="+", default=[20, 300])
    parser.add_argument("--out", type=Path, default=harness.RECORDS / "own-images")
    args = parser.parse_args()
    device = harness.setup(args)
    env = harness.environment(device)
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        os.environ.setdefault("DDPM_TUI_CACHE", str(work / "cache"))
        rows: list[dict] = []
        if "decode" in args.parts:
            rows += decode_rows(args, work)
        if "throughput" in args.parts:
            rows += throughput_rows(args, work)
        if "conditional" in args.parts:
            rows += conditional_rows(args, work, device)
        if "memorisation" in args.parts:
            rows += memorisation_rows(args, work)
        for row in rows:
            harness.record(args.out / f"{row['part']}.jsonl", row, env)


if __name__ == "__main__":
    main()
