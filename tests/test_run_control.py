"""A training process obeys pause, resume and stop requests and reports its state in status.json."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from core.run_control import RunControl, read_status, send_request


def wait_for(predicate, timeout: float = 90.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def test_pause_resume_and_stop_are_obeyed(start_training, tmp_path: Path):
    run = tmp_path / "run"
    proc = start_training(run, "--epochs", "100", "--batch_size", "8")
    try:
        wait_for(lambda: (s := read_status(run)) and s.state == "running" and s.step > 0, what="running")
        send_request(run, "pause")
        paused = wait_for(lambda: (s := read_status(run)) and s.state == "paused" and s, what="paused")
        assert paused.pid == proc.pid and paused.active
        time.sleep(1.5)
        still = read_status(run)
        assert still.state == "paused" and still.step == paused.step
        assert still.heartbeat > paused.heartbeat  # a paused run keeps its heartbeat
        send_request(run, "resume")
        wait_for(lambda: (s := read_status(run)) and s.state == "running" and s.step > paused.step, what="resumed")
        send_request(run, "stop")
        assert proc.wait(timeout=60) == 130, proc.stderr.read()
        final = read_status(run)
        assert final.state == "stopped" and not final.active
        assert (run / "checkpoint.pt").exists()
    finally:
        proc.kill()
        proc.wait()


def test_a_failed_run_reports_its_error(tmp_path, monkeypatch):
    import torch

    import core.trainer
    from core import TrainConfig, Trainer, TrainingError

    monkeypatch.setattr(
        core.trainer, "example_losses", lambda *a, **k: torch.tensor([float("inf")], requires_grad=True)
    )
    trainer = Trainer(
        TrainConfig(epochs=1, batch_size=8, max_images=16, timesteps=10, base_channels=8, output_dir=str(tmp_path))
    )
    with pytest.raises(TrainingError):
        list(trainer.run())
    status = read_status(tmp_path)
    assert status.state == "failed" and "loss became inf" in status.error


def test_requests_are_read_once_and_garbage_is_ignored(tmp_path):
    control = RunControl(tmp_path)
    assert control.pending_request() is None
    send_request(tmp_path, "pause")
    assert control.pending_request() == "pause"
    assert control.pending_request() is None
    (tmp_path / "control.json").write_text("{not json")
    assert control.pending_request() is None
    with pytest.raises(ValueError):
        send_request(tmp_path, "explode")
    assert read_status(tmp_path / "nowhere") is None
