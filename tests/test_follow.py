"""The run-folder follower the Train screen and ``watch`` use: only new records, never a half-written line."""

from __future__ import annotations

import json
import time

from ddpm_tui.follow import RunFollower


def write_status(folder, state, heartbeat):
    (folder / "status.json").write_text(
        json.dumps({"pid": 1, "state": state, "step": 0, "epoch": 0, "heartbeat": heartbeat, "error": None})
    )


def test_each_poll_returns_only_the_new_records(tmp_path):
    follower = RunFollower(tmp_path)
    assert not follower.poll()  # an empty folder: nothing yet, and no error
    with (tmp_path / "metrics.jsonl").open("w") as f:
        f.write(json.dumps({"kind": "step", "step": 1}) + "\n" + json.dumps({"kind": "step", "step": 2}) + "\n")
    assert [r["step"] for r in follower.poll().records] == [1, 2]
    assert follower.poll().records == []
    with (tmp_path / "metrics.jsonl").open("a") as f:
        f.write(json.dumps({"kind": "epoch", "epoch": 1, "recognised": 0.5}) + "\n")
    assert follower.poll().records == [{"kind": "epoch", "epoch": 1, "recognised": 0.5}]


def test_a_half_written_line_waits_for_its_newline(tmp_path):
    follower = RunFollower(tmp_path)
    line = json.dumps({"kind": "step", "step": 7})
    with (tmp_path / "metrics.jsonl").open("w") as f:
        f.write(line[:10])
    assert follower.poll().records == []
    with (tmp_path / "metrics.jsonl").open("a") as f:
        f.write(line[10:] + "\n")
    assert follower.poll().records == [{"kind": "step", "step": 7}]


def test_a_rewritten_shorter_file_is_read_again_from_the_start(tmp_path):
    """A resumed run trims metrics.jsonl back to its checkpoint: the follower starts over."""
    follower = RunFollower(tmp_path)
    path = tmp_path / "metrics.jsonl"
    path.write_text("".join(json.dumps({"kind": "step", "step": s}) + "\n" for s in range(1, 6)))
    assert len(follower.poll().records) == 5
    path.write_text(json.dumps({"kind": "step", "step": 1}) + "\n")
    assert [r["step"] for r in follower.poll().records] == [1]


def test_status_config_and_samples_are_reported_when_they_change(tmp_path):
    follower = RunFollower(tmp_path)
    write_status(tmp_path, "running", time.time())
    (tmp_path / "config.json").write_text(json.dumps({"epochs": 3}))
    (tmp_path / "samples").mkdir()
    (tmp_path / "samples" / "epoch_001.png").write_bytes(b"png")
    first = follower.poll()
    assert first.status.state == "running" and first.config == {"epochs": 3}
    assert first.sample_path.name == "epoch_001.png"
    again = follower.poll()
    assert again.status is None and again.config is None and again.sample_path is None
    write_status(tmp_path, "finished", time.time() + 1)
    (tmp_path / "samples" / "epoch_002.png").write_bytes(b"png")
    later = follower.poll()
    assert later.status.state == "finished" and later.sample_path.name == "epoch_002.png"


def test_unreadable_files_are_skipped_not_raised(tmp_path):
    follower = RunFollower(tmp_path)
    (tmp_path / "status.json").write_text("{not json")
    (tmp_path / "config.json").write_text("{half")
    (tmp_path / "metrics.jsonl").write_text("garbage\n" + json.dumps({"kind": "step", "step": 1}) + "\n")
    update = follower.poll()
    assert update.status is None and update.config is None
    assert update.records == [{"kind": "step", "step": 1}]
