"""What following a run costs: the app's CPU use, and training images/s with and without the app.

Starts a training run, measures its images/s alone, then opens ``ddpm-tui watch`` on it inside tmux
(a real terminal) and measures the app's CPU time and the training images/s over the same window:

    .venv/bin/python benchmarks/app_overhead.py          # needs tmux
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

WINDOW_S = 20.0
TICKS = os.sysconf("SC_CLK_TCK")


def images_per_second(run: Path, start: float, end: float) -> float:
    """Training images/s between two moments of the run's clock, from the steps logged in between (at the
    run's own batch size, read from its config.json)."""
    batch = json.loads((run / "config.json").read_text())["batch_size"]
    steps = [
        r
        for r in map(json.loads, (run / "metrics.jsonl").read_text().splitlines())
        if r["kind"] == "step" and start <= r["elapsed"] <= end
    ]
    return (steps[-1]["step"] - steps[0]["step"]) * batch / (steps[-1]["elapsed"] - steps[0]["elapsed"])


def run_elapsed(run: Path) -> float:
    """The run's own clock at its last logged record (0 before the first)."""
    lines = (run / "metrics.jsonl").read_text().splitlines() if (run / "metrics.jsonl").exists() else []
    return json.loads(lines[-1])["elapsed"] if lines else 0.0


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def main() -> None:
    if shutil.which("tmux") is None:
        sys.exit("this benchmark needs tmux")
    run = Path(tempfile.mkdtemp()) / "run"
    cli = [sys.executable, "-m", "ddpm_tui"]
    # Fashion-MNIST's 10,000 bundled images make one epoch long enough that both windows fall inside
    # it, away from the per-epoch sampling.
    train = subprocess.Popen(
        [*cli, "train", "--dataset", "fashion_mnist", "--epochs", "1", "--output_dir", str(run)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        while run_elapsed(run) < 10:
            time.sleep(1)
        t0 = run_elapsed(run)
        time.sleep(WINDOW_S)
        alone = images_per_second(run, t0, run_elapsed(run))

        session = f"ddpm-overhead-{os.getpid()}"
        subprocess.run(
            ["tmux", "new-session", "-d", "-s", session, "-x", "100", "-y", "32", " ".join([*cli, "watch", str(run)])],
            check=True,
        )
        time.sleep(8)
        app_pid = int(
            subprocess.run(
                ["tmux", "list-panes", "-t", session, "-F", "#{pane_pid}"], capture_output=True, text=True, check=True
            ).stdout.split()[0]
        )
        c0, w0, t1 = cpu_seconds(app_pid), time.monotonic(), run_elapsed(run)
        time.sleep(WINDOW_S)
        app_cpu = (cpu_seconds(app_pid) - c0) / (time.monotonic() - w0)
        watched = images_per_second(run, t1, run_elapsed(run))
        subprocess.run(["tmux", "kill-session", "-t", session], check=False)
    finally:
        train.terminate()
        train.wait()
    print(f"training alone:          {alone:.0f} images/s")
    print(f"training with app:       {watched:.0f} images/s ({watched / alone:.2f}x)")
    print(f"app CPU while following: {100 * app_cpu:.1f}% of one core")


if __name__ == "__main__":
    main()
