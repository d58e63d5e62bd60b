"""Shared fixtures: a tiny, fast training configuration and a trained tiny run."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from PIL import Image

import core
from core.jobs import machine_cores as cores_of_this_process

MACHINE_CORES: list[int] = cores_of_this_process()  # before _pin_this_worker


def _pin_this_worker() -> None:
    """Under pytest-xdist (``make test`` runs one worker per core), keep each worker and the processes its tests
    start on a core of their own, one thread each, as the docs advise for two jobs on one machine: workers that
    each ran two threads on every core would slow each other several times over. Alone, use two threads."""
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    torch.set_num_threads(2 if worker is None else 1)
    if worker is not None and hasattr(os, "sched_setaffinity"):  # not on macOS: there the workers share the cores
        os.sched_setaffinity(0, {MACHINE_CORES[int(worker.removeprefix("gw")) % len(MACHINE_CORES)]})


_pin_this_worker()

_TINY_TRAIN_ARGS = "--epochs 1 --batch_size 32 --max_images 64 --timesteps 20 --base_channels 8 --seed 0".split()


@pytest.fixture
def tiny_train_args() -> list[str]:
    """``ddpm-tui train`` flags for a run of a few seconds: 64 images, T = 20, a width-8 U-Net."""
    return list(_TINY_TRAIN_ARGS)


@pytest.fixture
def train_command(tiny_train_args: list[str]):
    """The real ``ddpm-tui train`` command line for a tiny run into ``run``, with ``extra`` flags (later flags
    win), for tests that start training as its own process."""

    def command(run: Path, *extra: str) -> list[str]:
        return [sys.executable, "-m", "ddpm_tui", "train", *tiny_train_args, *extra, "--output_dir", str(run)]

    return command


@pytest.fixture
def machine_cores() -> list[int]:
    """Every core the suite was started on, before :func:`_pin_this_worker` kept this worker to one."""
    return MACHINE_CORES


@pytest.fixture
def start_training(train_command):
    """Start :func:`train_command`'s run as its own process, its stderr captured as text; with ``cores``, on
    those cores (otherwise on this worker's)."""

    def start(
        run: Path, *extra: str, stdout: int = subprocess.DEVNULL, cores: list[int] | None = None
    ) -> subprocess.Popen:
        command = train_command(run, *extra)
        if cores is None or not hasattr(os, "sched_setaffinity"):
            return subprocess.Popen(command, stdout=stdout, stderr=subprocess.PIPE, text=True)
        own = os.sched_getaffinity(0)
        os.sched_setaffinity(0, cores)  # the child inherits the cores at its start (no preexec_fn: threads)
        try:
            return subprocess.Popen(command, stdout=stdout, stderr=subprocess.PIPE, text=True)
        finally:
            os.sched_setaffinity(0, own)

    return start


@pytest.fixture(autouse=True)
def offline_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep downloads and caches (compiled networks too) out of the user's home folder, and the jobs of each
    test to themselves."""
    monkeypatch.setenv("DDPM_TUI_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))
    monkeypatch.setenv("DDPM_TUI_RUNTIME", str(tmp_path_factory.mktemp("jobs")))
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", str(tmp_path_factory.mktemp("compiled")))


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run folder produced by the real command line on a tiny configuration (trained once per session)."""
    from ddpm_tui.cli import main

    run = tmp_path_factory.mktemp("tiny_run")
    assert main(["train", *_TINY_TRAIN_ARGS, "--output_dir", str(run)]) == 0
    return run


@pytest.fixture(scope="session")
def tiny_conditional_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Like ``tiny_run``, trained with ``--conditional``."""
    from ddpm_tui.cli import main

    run = tmp_path_factory.mktemp("tiny_conditional_run")
    assert main(["train", *_TINY_TRAIN_ARGS, "--conditional", "--output_dir", str(run)]) == 0
    return run


class ServedApp:
    """A real ``ddpm-tui serve`` process on a free loopback port, in ``folder``; its app processes are its
    children."""

    def __init__(self, folder: Path) -> None:
        import os
        import socket

        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = folder / "serve.log"
        self.process = subprocess.Popen(
            [sys.executable, "-m", "ddpm_tui", "serve", "--port", str(self.port)],
            cwd=folder,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},  # the log as it happens
            stdout=self.log.open("w"),
            stderr=subprocess.STDOUT,
        )
        self.wait_for(lambda: "served at" in self.log.read_text(), "the server to start", timeout=60)

    def wait_for(self, condition, what: str, timeout: float = 30) -> None:
        import time

        deadline = time.monotonic() + timeout
        while not condition():
            if self.process.poll() is not None and "served at" not in self.log.read_text():
                raise AssertionError(f"ddpm-tui serve exited: {self.log.read_text()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}; server log:\n{self.log.read_text()}")
            time.sleep(0.1)

    def apps(self) -> list[int]:
        """The pids of the app processes the server is running now."""
        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        return [int(p) for p in children.read_text().split()] if children.exists() else []

    def stop(self, signum: int) -> None:
        self.process.send_signal(signum)
        self.process.wait(timeout=15)


@pytest.fixture
def served_app(tmp_path: Path):
    """Start ``ddpm-tui serve`` (see :class:`ServedApp`); it and its apps are stopped after the test."""
    import os
    import signal

    server = ServedApp(tmp_path)
    yield server
    leftover = server.apps()
    if server.process.poll() is None:
        server.stop(signal.SIGTERM)
    for pid in leftover:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def write_digits(root: Path, count: int, classes: bool = True) -> Path:
    """``count`` bundled MNIST training digits as PNGs in ``root``, one sub-folder per class (or flat)."""
    data = core.load_dataset("mnist", "train")
    for i in range(count):
        label = int(data.labels[i])
        path = root / (f"digit_{label}" if classes else "") / f"{i:05d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(data.pixels[i, 0].numpy()).save(path)
    return root


@pytest.fixture
def digits_folder():
    """:func:`write_digits`: a folder of digit PNGs, the way a learner keeps their own images."""
    return write_digits


@pytest.fixture(scope="session")
def folder_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny class-conditional run on a folder of 120 digit PNGs in ten class sub-folders."""
    from ddpm_tui.cli import main

    root = tmp_path_factory.mktemp("folder_run")
    folder = write_digits(root / "digits", 120)
    argv = ["train", *_TINY_TRAIN_ARGS, "--dataset", "folder", "--data_dir", str(folder), "--conditional"]
    assert main([*argv, "--output_dir", str(root / "run")]) == 0
    return root / "run"
