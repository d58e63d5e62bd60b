"""What every benchmark shares: its flags, seeding, drawing and scoring images, timing, and its records.

A record is one JSON line per run: the command line, the full config, the seed, the figures, the wall time,
the commit (and whether the tree had uncommitted changes), the torch version, the device, the CPU model and
the date. ``scripts/render_results.py`` turns the records under ``docs/records/`` into the tables of the
docs, so every number there names the run that measured it. ``benchmarks/`` is on ``sys.path`` when a
script in it runs, so each imports this module as ``harness``, first: it puts the tree it lies in first on
``sys.path``, so that the ``core`` every benchmark imports is this tree's, the code its records name.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shlex
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch

ROOT = Path(__file__).resolve().parent.parent
# This tree's core, not the one the environment installed: a benchmark run in a git worktree of another commit
# (with the main checkout's .venv, whose editable install points at the main checkout) measures its own code.
sys.path.insert(0, str(ROOT))
import core  # noqa: E402

RECORDS = ROOT / "docs" / "records"


def parser(doc: str | None, results: Path | None = None) -> argparse.ArgumentParser:
    """An argument parser described by the first line of the script's docstring, with the flags every
    benchmark shares: ``--threads``, ``--device``, ``--num_images`` and, given a default ``results`` file,
    ``--results`` and ``--show``."""
    parsed = argparse.ArgumentParser(description=(doc or "").splitlines()[0])
    parsed.add_argument("--threads", type=int, default=0, help="torch threads (0: one per core)")
    parsed.add_argument("--device", default="auto")
    parsed.add_argument("--num_images", type=int, default=1000, help="images per score")
    if results is not None:
        parsed.add_argument("--results", type=Path, default=results, help="the JSON-lines records file")
        parsed.add_argument("--show", type=Path, help="only print the table of this records file")
    return parsed


def only_show(args: argparse.Namespace, show: Callable[[Path, Any], None], console: Any) -> bool:
    """With ``--show FILE``, print that records file's table and say so (the script then stops); otherwise
    set the threads ``--threads`` asks for."""
    if getattr(args, "show", None):
        show(args.show, console)
        return True
    if args.threads:
        torch.set_num_threads(args.threads)
    return False


def setup(args: argparse.Namespace, seed: int = 0) -> torch.device:
    """Threads, seed and the device's fast paths, as ``args`` ask; returns the device."""
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(seed)
    device = core.resolve_device(args.device)
    core.configure_for_speed(device)
    return device


def draw(
    model: Callable[..., torch.Tensor],
    schedule: core.NoiseSchedule,
    image_shape: tuple[int, ...],
    sampler: str,
    steps: int | None,
    count: int,
    device: torch.device,
    seed: int = 0,
    **sampling: Any,
) -> tuple[torch.Tensor, torch.Tensor | None, float]:
    """``count`` images as ``ddpm-tui eval`` draws them (batch i seeded ``seed + i``, bf16 where the device
    has it; ``sampling`` passes on, e.g. ``guide``, ``autoguidance``, ``eta``), their labels and the
    seconds taken."""
    start = time.perf_counter()
    with torch.no_grad(), core.autocast(device, core.use_bf16(device)):
        images, labels = core.generate(
            model, schedule, count, image_shape, sampler, steps, seed=seed, device=device, **sampling
        )
    return images, labels, time.perf_counter() - start


def figures(scores: core.Scores) -> dict[str, float]:
    """A score's figures, rounded for a record: Frechet distance, recognised share, class entropy."""
    return {
        "fd": round(scores.frechet_distance, 2),
        "recognised": round(scores.recognised, 4),
        "entropy": round(scores.class_entropy, 4),
    }


def score_cells(row: dict[str, Any]) -> list[str]:
    """A scored row's table cells: images, FD, recognised share, class entropy."""
    return [str(row["num_images"]), f"{row['fd']:.1f}", f"{row['recognised']:.1%}", f"{row['entropy']:.3f}"]


def timings_in_turn(runs: dict[str, Callable[[], object]], repeats: int, warmup: int = 1) -> dict[str, list[float]]:
    """The wall seconds of each of ``runs`` in ``repeats`` rounds that time every run once, in turn, after
    ``warmup`` untimed rounds: all of them see the same drifts of a shared machine's load, which timing one
    after the other does not (a run timed in a slow minute looks slow). CUDA work is waited for."""
    for _ in range(warmup):
        for run in runs.values():
            run()
    timings: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(repeats):
        for name, run in runs.items():
            start = time.perf_counter()
            run()
            if torch.cuda.is_available():
                torch.cuda.synchronize()
            timings[name].append(time.perf_counter() - start)
    return timings


def median_seconds(run: Callable[[], object], repeats: int, warmup: int = 1) -> tuple[float, list[float]]:
    """The median wall time of ``repeats`` calls of ``run`` after ``warmup`` untimed ones, and every timing:
    single timings on a shared machine vary by 2-3x, medians by far less."""
    timings = timings_in_turn({"run": run}, repeats, warmup)["run"]
    return statistics.median(timings), timings


def alternating_medians(runs: dict[str, Callable[[], object]], repeats: int, warmup: int = 1) -> dict[str, float]:
    """The median wall seconds of each of ``runs`` over :func:`timings_in_turn`'s rounds."""
    return {name: statistics.median(seconds) for name, seconds in timings_in_turn(runs, repeats, warmup).items()}


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo`` on Linux; the platform's word elsewhere)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def git(*args: str) -> str:
    try:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return ""


MEASURED_CODE = ("core", "ddpm_tui", "benchmarks", "pyproject.toml")


def environment(device: torch.device | str = "cpu") -> dict[str, Any]:
    """Where and when a measurement ran: commit, uncommitted changes to the code that runs (:data:`MEASURED_CODE`;
    docs, records, tests and the table renderer do not count), torch, device, CPU, threads, date."""
    device = torch.device(device)
    return {
        "commit": git("rev-parse", "--short=12", "HEAD") or "unknown",
        "dirty": bool(git("status", "--porcelain", "--untracked-files=no", "--", *MEASURED_CODE)),
        "torch": torch.__version__,
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else device.type,
        "cpu": cpu_model(),
        "cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "threads": torch.get_num_threads(),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }


def record(path: Path, row: dict[str, Any], environment_: dict[str, Any] | None = None) -> dict[str, Any]:
    """Append ``row`` to the JSON-lines file ``path`` (several runs may share it) with the command line and
    the :func:`environment`, print it, and return the whole record. The commit, whether the tree has
    uncommitted changes, and the date are read as the record is written (a long run can outlast an edit of
    the code); the device and threads come from ``environment_``, measured where the run began, if given."""
    whole = {"command": shlex.join([Path(sys.argv[0]).as_posix(), *sys.argv[1:]]), **row, **environment()}
    if environment_:
        whole.update({key: environment_[key] for key in ("device", "cpu", "cores", "threads", "torch")})
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as f:
        f.write(json.dumps(whole, default=str) + "\n")  # paths and the like as text
    print(json.dumps(whole, default=str), flush=True)
    return whole


def read(path: Path) -> Iterator[dict[str, Any]]:
    """The records of a JSON-lines file, in the order they were written."""
    for line in path.read_text().splitlines():
        if line.strip():
            yield json.loads(line)


def diffusers_unet(image_shape: tuple[int, ...], width: int, mults: tuple[int, ...], blocks: int, attention: str):
    """Hugging Face diffusers' ``UNet2DModel`` with the blocks of ours (``core.UNet``): the same widths, levels,
    residual blocks per level and GroupNorm groups, and self-attention where ours has it: ``"lowest"`` after
    every block of the lowest level and in the bottleneck, ``"middle"`` in the bottleneck only, ``"none"``
    nowhere. At equal blocks the two have the same parameter count."""
    from diffusers import UNet2DModel

    levels = len(mults)
    lowest = attention == "lowest"
    return UNet2DModel(
        sample_size=image_shape[-1],
        in_channels=image_shape[0],
        out_channels=image_shape[0],
        block_out_channels=tuple(width * m for m in mults),
        layers_per_block=blocks,
        down_block_types=("DownBlock2D",) * (levels - 1) + ("AttnDownBlock2D" if lowest else "DownBlock2D",),
        up_block_types=("AttnUpBlock2D" if lowest else "UpBlock2D",) + ("UpBlock2D",) * (levels - 1),
        norm_num_groups=8,
        add_attention=attention != "none",
    )


def calls(schedule: core.NoiseSchedule, plan: core.SamplingPlan) -> int:
    """Network calls per image: one a step, two on each step that autoguidance guides."""
    if plan.autoguidance is None:
        return len(plan.timesteps)
    return core.guided_calls(core.guidance_interval(schedule), plan.timesteps)
