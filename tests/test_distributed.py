"""Training on several processes with torchrun and DistributedDataParallel, on the CPU (gloo).

Every test starts real ``torchrun`` processes (``python -m torch.distributed.run``) on tiny runs: the
shards and the gradient averaging are right when 2 processes end with the parameters 1 process reaches
on the same global batch; rank 0 alone writes the run folder, which the app follows as any other; pause,
resume and stop requests and signals reach every process; a checkpoint resumes under another number of processes.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

import core
from core.distributed import Processes

TINY = "--batch_size 16 --max_images 48 --timesteps 20 --base_channels 8 --warmup_steps 0 --seed 0".split()
TINY += ["--precision", "fp32"]


def torchrun(*args: str) -> list[str]:
    return [sys.executable, "-m", "torch.distributed.run", *args, "-m", "ddpm_tui", "train"]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def local_torchrun(processes: int) -> list[str]:
    """torchrun on this machine only, its rendezvous on a free port (tests may run side by side)."""
    return torchrun("--nproc_per_node", str(processes), "--master_port", str(free_port()))


def run(command: list[str], cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=timeout)


def steps(folder: Path) -> list[int]:
    records = map(json.loads, (folder / "metrics.jsonl").read_text().splitlines())
    return [r["step"] for r in records if r["kind"] == "step"]


def step_losses(folder: Path) -> list[float]:
    records = map(json.loads, (folder / "metrics.jsonl").read_text().splitlines())
    return [r["loss"] for r in records if r["kind"] == "step"]


def test_rows_of_a_batch_are_split_in_contiguous_shards_that_cover_it():
    for count, world in ((16, 2), (8, 3), (1, 2), (33, 4)):
        shards = [Processes(rank, world).shard(count) for rank in range(world)]
        rows = [i for s in shards for i in range(count)[s]]
        assert rows == list(range(count))
        assert max(s.stop - s.start for s in shards) - min(s.stop - s.start for s in shards) <= 1


@pytest.fixture(scope="module")
def one_and_two(tmp_path_factory) -> tuple[Path, Path]:
    """The same tiny run (1 epoch, 3 steps of a global batch of 16) on 1 process and on 2 under torchrun."""
    folder = tmp_path_factory.mktemp("ddp")
    single = run([sys.executable, "-m", "ddpm_tui", "train", *TINY, "--epochs", "1", "--output_dir", "one"], folder)
    assert single.returncode == 0, single.stderr
    double = run([*local_torchrun(2), *TINY, "--epochs", "1", "--output_dir", "two"], folder)
    assert double.returncode == 0, double.stdout + double.stderr
    return folder / "one", folder / "two"


def test_two_processes_reach_the_parameters_of_one_on_the_same_global_batch(one_and_two):
    """Same parameters (to fp32 reduction order, which AdamW amplifies in near-zero gradients: 0.06% of how
    far the weights moved, where any wrong shard or noise draw moves them apart by tens of percent), and
    the same logged losses (a process counting its rows twice, or not averaging, would log a multiple)."""
    one, two = (torch.load(f / "checkpoint.pt", weights_only=True) for f in one_and_two)
    assert one["step"] == two["step"] == 3
    assert step_losses(one_and_two[1]) == pytest.approx(step_losses(one_and_two[0]), rel=1e-5)
    torch.manual_seed(0)  # the trainer's initialisation
    initial = core.build_model(core.TrainConfig(base_channels=8, timesteps=20), (1, 28, 28)).state_dict()

    def flat(state: dict[str, torch.Tensor]) -> torch.Tensor:
        return torch.cat([state[name].flatten().float() for name in initial])

    moved = (flat(one["model"]) - flat(initial)).norm()
    assert moved > 0.05
    for key in ("model", "ema"):
        assert (flat(two[key]) - flat(one[key])).norm() < 1e-2 * moved, key


def test_rank_0_alone_writes_one_run_folder_that_sample_loads(one_and_two, tmp_path):
    _, two = one_and_two
    assert steps(two) == [1, 2, 3]  # one line per step, not one per process
    assert json.loads((two / "config.json").read_text())["world_size"] == 2
    assert core.read_status(two).state == "finished"
    assert sorted(p.name for p in two.glob("*.pt")) == ["checkpoint.pt", "model_final.pt"]
    out = tmp_path / "grid.png"
    sample = run(
        [sys.executable, "-m", "ddpm_tui", "sample", "--checkpoint", str(two / "model_final.pt"), "--num_images", "4"]
        + ["--output", str(out)],
        tmp_path,
    )
    assert sample.returncode == 0, sample.stderr
    assert out.exists()


async def test_the_train_screen_follows_a_distributed_run_as_any_other(one_and_two):
    from ddpm_tui.app import DdpmApp

    _, two = one_and_two
    app = DdpmApp(watch=str(two))
    async with app.run_test(size=(100, 32)) as pilot:
        screen = app.screen
        for _ in range(100):
            if screen.loss_chart.steps == [1, 2, 3] and screen.status is not None:
                break
            await pilot.pause(0.1)
        assert screen.loss_chart.steps == [1, 2, 3]
        assert screen.status.state == "finished"
        assert screen.config["world_size"] == 2


def test_two_nodes_on_localhost_train_together_through_a_c10d_rendezvous(tmp_path):
    endpoint = f"127.0.0.1:{free_port()}"

    def node(rank: int) -> subprocess.Popen:
        rendezvous = ["--rdzv-backend", "c10d", "--rdzv-endpoint", endpoint, "--rdzv-id", "ddpm-test"]
        command = torchrun("--nnodes", "2", "--node_rank", str(rank), "--nproc_per_node", "1", *rendezvous)
        return subprocess.Popen(
            [*command, *TINY, "--epochs", "1", "--output_dir", "run"],
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )

    nodes = [node(0), node(1)]
    outputs = [n.communicate(timeout=120)[0] for n in nodes]
    assert [n.returncode for n in nodes] == [0, 0], "\n".join(outputs)
    assert json.loads((tmp_path / "run" / "config.json").read_text())["world_size"] == 2
    assert steps(tmp_path / "run") == [1, 2, 3]


def test_a_batch_that_does_not_divide_among_the_processes_is_one_line(tmp_path):
    result = run([*local_torchrun(2), *TINY, "--batch_size", "15", "--output_dir", "run"], tmp_path)
    assert result.returncode != 0
    lines = [line for line in result.stderr.splitlines() if "ddpm-tui train: error" in line]
    assert lines == [
        "ddpm-tui train: error: --batch_size 15 is the global batch and must divide evenly among the 2 processes"
    ], result.stderr
    # torchrun reports the failed processes itself; no traceback comes from ddpm-tui's code
    assert not re.search(r'File ".*/(core|ddpm_tui)/', result.stderr), result.stderr


def start_long_run(folder: Path) -> subprocess.Popen:
    proc = subprocess.Popen(
        [*local_torchrun(2), *TINY, "--epochs", "400", "--output_dir", "run"],
        cwd=folder,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    deadline = time.monotonic() + 90
    while not ((s := core.read_status(folder / "run")) and s.state == "running" and s.step >= 4):
        assert time.monotonic() < deadline and proc.poll() is None, proc.stdout.read() if proc.poll() else "slow"
        time.sleep(0.2)
    return proc


def wait_for(condition, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def worker_pids(proc: subprocess.Popen) -> list[int]:
    """The training processes torchrun started (its children)."""
    children = Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()
    return [int(p) for p in children]


@pytest.fixture
def long_run(tmp_path: Path):
    """A 2-process run of 400 tiny epochs under torchrun, running; killed with its workers after the test."""
    proc = start_long_run(tmp_path)
    yield proc
    if proc.poll() is None:  # a failed test leaves no training behind (torchrun's workers are in their own sessions)
        for pid in [*worker_pids(proc), proc.pid]:
            os.kill(pid, signal.SIGKILL)
        proc.wait()


@pytest.mark.parametrize("how", ["stop request", "SIGTERM to rank 1"])
def test_a_stop_reaches_every_process_and_one_process_resumes_the_step_count(tmp_path, how, long_run):
    proc = long_run
    workers = worker_pids(proc)
    assert len(workers) == 2
    if how == "stop request":
        run_folder = tmp_path / "run"
        core.send_request(run_folder, "pause")
        wait_for(lambda: core.read_status(run_folder).state == "paused")
        paused_at = core.read_status(run_folder).step
        time.sleep(1.5)
        assert core.read_status(run_folder).step == paused_at and steps(run_folder)[-1] == paused_at
        core.send_request(run_folder, "resume")
        wait_for(lambda: core.read_status(run_folder).step > paused_at + 2)
        core.send_request(run_folder, "stop")
    else:
        rank_1 = next(p for p in workers if "LOCAL_RANK=1" in Path(f"/proc/{p}/environ").read_text().replace("\0", " "))
        os.kill(rank_1, signal.SIGTERM)
    output = proc.communicate(timeout=60)[0]
    assert proc.returncode == 0, output
    status = core.read_status(tmp_path / "run")
    assert status.state == "stopped"
    saved = torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=True)
    assert saved["step"] == status.step
    assert steps(tmp_path / "run") == list(range(1, status.step + 1))

    resumed = run(
        [
            sys.executable,
            "-m",
            "ddpm_tui",
            "train",
            "--resume",
            "run/checkpoint.pt",
            "--epochs",
            str(saved["epoch"] + 1),
        ],
        tmp_path,
    )
    assert resumed.returncode == 0, resumed.stderr
    final = steps(tmp_path / "run")
    assert final == list(range(1, len(final) + 1)) and len(final) > status.step
    assert json.loads((tmp_path / "run" / "config.json").read_text())["world_size"] == 1
