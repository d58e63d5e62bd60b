"""Two jobs at once: how much slower each runs beside another than alone, as a learner runs them.

    .venv/bin/python benchmarks/sharing.py
    .venv/bin/python benchmarks/sharing.py --checkpoint outputs/model_final.pt --repeats 2

Every job is a real ``ddpm-tui`` process, so each registers with the others (``core.jobs``) exactly as in
use. Two parts, each timed alone and then beside another job, ratios printed and appended as records to
``docs/records/sharing/sharing.jsonl`` (``--out``):

- two ``train --epochs 2 --max_images 1280`` runs started together, against one alone;
- ``sample --sampler dpm++sde --num_images 64`` while a training run goes on, against the same alone.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

import harness  # benchmarks/ is on the path when a script in it runs

CLI = [sys.executable, "-m", "ddpm_tui"]
TRAIN = ["train", "--epochs", "2", "--max_images", "1280", "--sample_every", "100"]


def start(args: list[str]) -> subprocess.Popen:
    return subprocess.Popen([*CLI, *args], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def timed(*processes: subprocess.Popen) -> list[float]:
    """Wall seconds until each of ``processes`` (started just now) ends; a failure stops the benchmark."""
    began, ended = time.perf_counter(), {}
    while len(ended) < len(processes):
        for i, process in enumerate(processes):
            if i not in ended and process.poll() is not None:
                if process.returncode:
                    raise SystemExit(f"{process.args} failed: {process.stderr.read()}")
                ended[i] = time.perf_counter() - began
        time.sleep(0.05)
    return [ended[i] for i in range(len(processes))]


def training(folder: Path, name: str) -> list[str]:
    return [*TRAIN, "--output_dir", str(folder / name)]


def main() -> None:
    parser = harness.parser(__doc__)
    parser.add_argument("--checkpoint", help="the model to sample (default: the first training run's)")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--out", type=Path, default=harness.RECORDS / "sharing")
    args = parser.parse_args()
    env = harness.environment()
    folder = Path(tempfile.mkdtemp(prefix="sharing-"))
    for repeat in range(args.repeats):
        alone = timed(start(training(folder, f"alone{repeat}")))[0]
        pair = timed(start(training(folder, f"a{repeat}")), start(training(folder, f"b{repeat}")))
        figures = {"alone_s": round(alone, 1), "together_s": [round(s, 1) for s in pair]}
        figures["slowdown"] = round(max(pair) / alone, 2)
        harness.record(
            args.out / "sharing.jsonl", {"part": "two trainings", "config": {"argv": TRAIN}, "figures": figures}, env
        )
        checkpoint = args.checkpoint or str(folder / f"alone{repeat}" / "model_final.pt")
        sample = ["sample", "--checkpoint", checkpoint, "--sampler", "dpm++sde", "--num_images", "64"]
        sample += ["--output", str(folder / "samples.png")]
        solo = timed(start(sample))[0]
        background = start([*TRAIN[:2], "20", *TRAIN[3:], "--output_dir", str(folder / f"busy{repeat}")])
        time.sleep(8)  # past its start-up: training is running
        beside = timed(start(sample))[0]
        background.kill()
        background.wait()
        figures = {
            "alone_s": round(solo, 1),
            "beside_training_s": round(beside, 1),
            "slowdown": round(beside / solo, 2),
        }
        harness.record(
            args.out / "sharing.jsonl",
            {"part": "sample during training", "config": {"argv": sample[:6]}, "figures": figures},
            env,
        )


if __name__ == "__main__":
    main()
