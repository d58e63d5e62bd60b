"""Checkpoints: identical round trips, atomic writes, and safe, clear refusals."""

import os
import pickle
from pathlib import Path

import pytest
import torch

from core import CheckpointError, TrainConfig, atomic_save, build_model, load_checkpoint, load_model, noise_predictor
from core.checkpoint import make_payload


def small_model_file(path: Path) -> torch.nn.Module:
    config = TrainConfig(base_channels=8, timesteps=50, schedule="cosine")
    model = build_model(config, (1, 28, 28))
    for p in model.parameters():
        torch.nn.init.normal_(p, std=0.02)
    atomic_save(make_payload(config, (1, 28, 28), model.state_dict()), path)
    return model.eval()


def test_round_trip_gives_identical_outputs(tmp_path):
    model = small_model_file(tmp_path / "m.pt")
    loaded = load_model(tmp_path / "m.pt")
    assert loaded.schedule.timesteps == 50 and loaded.schedule.name == "cosine"
    assert loaded.config.base_channels == 8
    x, t = torch.randn(3, 1, 28, 28), torch.tensor([0, 10, 49])
    with torch.no_grad():  # the loaded model predicts eps, whatever the network was trained to predict
        expected = noise_predictor(model, loaded.schedule, loaded.config.prediction)(x, t)
        torch.testing.assert_close(loaded.model(x, t), expected, rtol=0, atol=0)


def test_atomic_save_leaves_the_old_file_when_a_write_fails(tmp_path):
    path = tmp_path / "m.pt"
    small_model_file(path)
    before = path.read_bytes()
    with pytest.raises((AttributeError, TypeError, pickle.PicklingError)):  # a lambda cannot be pickled
        atomic_save({"format": "ddpm-tui", "bad": lambda: None}, path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["m.pt"]


class RunsCode:
    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_a_pickle_that_runs_code_is_refused(tmp_path):
    marker = tmp_path / "pwned"
    evil = RunsCode()
    evil.marker = marker
    path = tmp_path / "evil.pt"
    torch.save({"format": "ddpm-tui", "model": evil}, path)
    with pytest.raises(CheckpointError, match="refused"):
        load_checkpoint(path)
    assert not marker.exists()


def test_truncated_checkpoint(tmp_path):
    path = tmp_path / "m.pt"
    small_model_file(path)
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(CheckpointError, match="corrupt or truncated"):
        load_checkpoint(path)


def test_garbage_file(tmp_path):
    path = tmp_path / "m.pt"
    path.write_bytes(b"garbage")
    with pytest.raises(CheckpointError, match="corrupt or truncated"):
        load_checkpoint(path)
    path.write_bytes(pickle.dumps([1, 2, 3]))
    with pytest.raises(CheckpointError):
        load_checkpoint(path)


def test_a_foreign_pt_file(tmp_path):
    path = tmp_path / "other.pt"
    torch.save({"state_dict": {"w": torch.zeros(2)}}, path)
    with pytest.raises(CheckpointError, match="not a ddpm-tui checkpoint"):
        load_checkpoint(path)


def test_missing_and_folder(tmp_path):
    with pytest.raises(CheckpointError, match="not found"):
        load_checkpoint(tmp_path / "nope.pt")
    with pytest.raises(CheckpointError, match="is a folder"):
        load_checkpoint(tmp_path)


def test_the_guide_loads_as_a_second_noise_predictor_and_old_checkpoints_have_none(tmp_path):
    config = TrainConfig(base_channels=8)
    torch.manual_seed(0)
    model, guide = build_model(config, (1, 28, 28)), build_model(config, (1, 28, 28))
    for p in guide.parameters():
        torch.nn.init.normal_(p, std=0.02)
    with_guide, without = tmp_path / "with.pt", tmp_path / "without.pt"
    atomic_save(make_payload(config, (1, 28, 28), model.state_dict(), guide=guide.state_dict()), with_guide)
    atomic_save(make_payload(config, (1, 28, 28), model.state_dict()), without)
    loaded = load_model(with_guide)
    x, t = torch.randn(2, 1, 28, 28), torch.tensor([10, 500])
    expected = noise_predictor(guide.eval(), loaded.schedule, config.prediction)(x, t)
    assert torch.allclose(loaded.guide(x, t), expected)
    assert load_model(without).guide is None


def test_a_checkpoint_from_before_the_attention_setting_loads_with_attention_where_it_was(tmp_path):
    config = TrainConfig(base_channels=8, attention="lowest")  # every network had it then
    model = build_model(config, (1, 28, 28))
    old = {k: v for k, v in config.to_dict().items() if k != "attention"}
    atomic_save({**make_payload(config, (1, 28, 28), model.state_dict()), "config": old}, tmp_path / "old.pt")
    assert load_model(tmp_path / "old.pt").config.attention == "lowest"
    bare = TrainConfig(base_channels=8, attention="none")
    atomic_save(make_payload(bare, (1, 28, 28), build_model(bare, (1, 28, 28)).state_dict()), tmp_path / "bare.pt")
    assert load_model(tmp_path / "bare.pt").config.attention == "none"
