"""core/jobs.py: computing processes register, see each other, and share the cores between steps."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

import core
from core import jobs


def last_step(run: Path) -> dict:
    """The newest step record of a run's metrics.jsonl ({} before the first)."""
    path = run / "metrics.jsonl"
    lines = (
        [json.loads(line) for line in path.read_text().splitlines() if '"kind": "step"' in line]
        if path.exists()
        else []
    )
    return lines[-1] if lines else {}


def wait_for(condition, what: str, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def test_two_training_processes_share_the_cores_and_the_survivor_takes_them_all(
    start_training, machine_cores, tmp_path
):
    """On every core of the machine, not only this test worker's one, so that the survivor has more to take."""
    runs = [tmp_path / "first", tmp_path / "second"]
    processes = [start_training(run, "--epochs", "200", "--batch_size", "8", cores=machine_cores) for run in runs]
    try:
        half = max(1, len(machine_cores) // 2)
        both = lambda: all(last_step(run).get("sharing", "").startswith("2 jobs") for run in runs)  # noqa: E731
        wait_for(both, "both runs to see two jobs")
        assert [last_step(run)["threads"] for run in runs] == [half, half]
        core.send_request(runs[1], "stop")
        processes[1].wait(timeout=60)
        wait_for(lambda: last_step(runs[0]).get("threads") == len(machine_cores), "the first run to take every core")
        assert "the only job" in last_step(runs[0])["sharing"]
    finally:
        for process in processes:
            process.kill()
            process.wait(timeout=30)


def test_threads_fixes_a_jobs_threads_and_it_still_counts_for_the_others():
    with core.computing("test", threads=1) as share:
        assert torch.get_num_threads() == 1 and share.tick().fixed
        assert [job.pid for job in core.live_jobs()] == [os.getpid()]
    assert core.live_jobs() == []


def test_entries_of_dead_processes_are_ignored_and_removed():
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    folder = jobs.job_folder()
    folder.mkdir(parents=True, exist_ok=True)
    stale = folder / "stale.json"
    stale.write_text(json.dumps({"pid": int(dead.stdout), "kind": "train", "started": 0.0}))
    assert core.live_jobs() == [] and not stale.exists()


@pytest.mark.parametrize(
    "share,text",
    [
        (jobs.Share(1, 2, 2), "2 jobs share 2 cores: 1 thread each"),
        (jobs.Share(4, 1, 4), "4 threads, the only job on 4 cores"),
        (jobs.Share(3, 2, 8, fixed=True), "3 threads, as --threads asks"),
    ],
)
def test_the_dashboard_says_why(share, text):
    assert share.describe() == text
