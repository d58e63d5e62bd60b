"""The training recipe's knobs: the learning-rate schedule and Min-SNR loss weighting."""

from __future__ import annotations

import argparse
import math

import pytest
import torch

import core
from core import NoiseSchedule, TrainConfig, Trainer, l_simple
from ddpm_tui.flags import add_setting_flags, setting_overrides


def test_learning_rate_warms_up_then_stays_or_decays_to_zero(tmp_path):
    config = dict(
        max_images=64, batch_size=8, epochs=25, warmup_steps=10, lr=1e-3, base_channels=8, output_dir=str(tmp_path)
    )
    constant = Trainer(TrainConfig(**config, lr_schedule="constant"))
    cosine = Trainer(TrainConfig(**config, lr_schedule="cosine"))
    assert constant.total_steps == 200
    for trainer in (constant, cosine):
        assert trainer.lr_at(0) == pytest.approx(1e-4)
        assert trainer.lr_at(9) == pytest.approx(1e-3)
    assert constant.lr_at(199) == pytest.approx(1e-3)
    assert cosine.lr_at(10 + 95) == pytest.approx(0.5e-3)  # halfway through the decay
    assert cosine.lr_at(200) == pytest.approx(0.0, abs=1e-12)
    rates = [cosine.lr_at(s) for s in range(10, 200)]
    assert rates == sorted(rates, reverse=True)


class Zero(torch.nn.Module):
    """Predicts no noise, so every example's squared error is the mean of eps^2, about 1."""

    def forward(self, x, t):
        return torch.zeros_like(x)


def test_min_snr_weighting_scales_each_example_by_min_snr_gamma_over_snr():
    s = NoiseSchedule.create("linear", 1000)
    x0 = torch.zeros(4000, 1, 32, 32)
    torch.manual_seed(0)
    plain = l_simple(Zero(), s, x0).item()
    torch.manual_seed(0)
    weighted = l_simple(Zero(), s, x0, min_snr_gamma=5.0).item()
    torch.manual_seed(0)
    t = torch.randint(0, 1000, (4000,))  # the same steps l_simple drew
    snr = s.snr()[t]
    expected = (snr.clamp(max=5.0) / snr).mean().item()
    assert plain == pytest.approx(1.0, abs=0.01)
    assert weighted == pytest.approx(expected, rel=0.01)
    assert weighted < 0.95 * plain  # low-noise steps (SNR > 5, about t < 100 here) count less
    assert not math.isclose(weighted, plain)


def test_clothes_train_class_conditionally_unless_asked_and_a_checkpoint_keeps_its_choice(monkeypatch):
    assert TrainConfig(dataset="fashion_mnist").conditional and not TrainConfig(dataset="mnist").conditional
    assert not TrainConfig(dataset="fashion_mnist", conditional=False).conditional
    assert not TrainConfig(dataset="folder", data_dir="x").conditional  # a folder may have no classes
    stored = TrainConfig(dataset="fashion_mnist").to_dict()
    monkeypatch.setattr(core.config, "DEFAULT_CONDITIONAL", {})
    assert TrainConfig.from_dict(stored).conditional and not TrainConfig(dataset="fashion_mnist").conditional
    parser = argparse.ArgumentParser()
    add_setting_flags(parser)
    assert setting_overrides(parser.parse_args(["--no-conditional"])) == {"conditional": False}
    assert setting_overrides(parser.parse_args([])) == {}  # no flag: the dataset's default applies


def test_the_guide_is_kept_where_it_was_measured_for_the_dataset_unless_asked(monkeypatch):
    monkeypatch.setattr(core.config, "DEFAULT_GUIDE_AT", {"mnist": 0.5, "fashion_mnist": 0.25})
    for dataset, at in (("mnist", 0.5), ("fashion_mnist", 0.25), ("cifar10", 0.5)):  # unmeasured: MNIST's
        assert TrainConfig(dataset=dataset).guide_at == at
    assert TrainConfig(dataset="fashion_mnist", guide_at=0.0).guide_at == 0.0
    stored = TrainConfig(dataset="fashion_mnist").to_dict()
    monkeypatch.setattr(core.config, "DEFAULT_GUIDE_AT", {"mnist": 0.4})
    assert TrainConfig.from_dict(stored).guide_at == 0.25  # a checkpoint keeps the epoch it was trained with


def _train(config: TrainConfig) -> Trainer:
    trainer = Trainer(config)
    for _ in trainer.run():
        pass
    return trainer


def test_the_guide_is_the_ema_at_its_epoch_and_every_checkpoint_after_keeps_it(tmp_path):
    """A constant learning rate makes the first epochs of a 2-epoch and a 4-epoch run identical, so the
    4-epoch run's guide (kept at half its epochs) must equal the 2-epoch run's final EMA weights."""
    common = dict(
        max_images=32, batch_size=16, timesteps=20, base_channels=8, lr_schedule="constant", sample_every=100, seed=3
    )
    short = _train(TrainConfig(**common, epochs=2, guide_at=0.0, output_dir=str(tmp_path / "short")))
    long = _train(TrainConfig(**common, epochs=4, guide_at=0.5, output_dir=str(tmp_path / "long")))
    assert short.guide is None and long.guide_epoch == 2
    for name, value in short.ema.state_dict().items():
        assert torch.equal(long.guide[name], value), name
    assert not torch.equal(long.guide["conv_out.weight"], long.ema.state_dict()["conv_out.weight"])
    for file in ("checkpoint.pt", "model_final.pt"):
        saved = torch.load(tmp_path / "long" / file, weights_only=True)["guide"]
        assert torch.equal(saved["conv_out.weight"], long.guide["conv_out.weight"])
    resumed = Trainer(TrainConfig(), resume=tmp_path / "long" / "checkpoint.pt")
    assert torch.equal(resumed.guide["conv_out.weight"], long.guide["conv_out.weight"])


def test_a_training_step_trains_in_training_mode_even_after_the_model_was_set_to_evaluate(tmp_path):
    trainer = Trainer(TrainConfig(max_images=16, batch_size=8, base_channels=8, output_dir=str(tmp_path)))
    x0 = trainer.images_at(torch.arange(8))
    trainer.model.eval()
    trainer.train_step(x0)
    assert all(module.training for module in trainer.model.modules())  # dropout and the like as training needs
