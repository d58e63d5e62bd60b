"""The objective's choices: v-prediction, the log-normal density of training steps, gradient clipping, and
checkpoints from before those choices existed."""

from __future__ import annotations

import math

import pytest
import torch

from core import NoiseSchedule, TrainConfig, Trainer, l_simple, noise_predictor, timestep_probabilities
from core.objective import LOGNORMAL_MEAN, LOGNORMAL_STD, v_target


def normal_cdf(x: float) -> float:
    return 0.5 * (1 + math.erf(x / math.sqrt(2)))


@pytest.mark.parametrize("name", ["linear", "cosine"])
@pytest.mark.parametrize("mean,std", [(LOGNORMAL_MEAN, LOGNORMAL_STD), (0.5, 1.2), (0.0, 0.8)])
def test_lognormal_density_puts_the_closed_form_mass_on_each_band_of_noise_levels(name, mean, std):
    s = NoiseSchedule.create(name, 1000)
    p = timestep_probabilities(s, "lognormal", mean, std)
    assert p.sum().item() == pytest.approx(1.0, abs=1e-9) and (p >= 0).all()
    sigma = s.log_sigmas().double().exp()
    for low, high in ((0.15, 2.5), (0.5, 1.0), (0.02, 0.1), (2.0, 8.0)):
        band = (sigma > low) & (sigma < high)
        closed = normal_cdf((math.log(high) - mean) / std) - normal_cdf((math.log(low) - mean) / std)
        assert p[band].sum().item() == pytest.approx(closed, abs=0.01)  # rounding to whole steps
    log_sigma_mean = (p * sigma.log()).sum().item()
    assert log_sigma_mean == pytest.approx(mean, abs=0.05)


def test_lognormal_spends_far_less_on_almost_pure_noise_than_uniform():
    s = NoiseSchedule.create("linear", 1000)
    sigma = s.log_sigmas().exp()
    uniform, lognormal = timestep_probabilities(s, "uniform"), timestep_probabilities(s, "lognormal")
    assert uniform[sigma > 5].sum().item() == pytest.approx(0.434, abs=0.005)
    assert lognormal[sigma > 5].sum().item() < 0.02
    band = (sigma > 0.15) & (sigma < 2.5)
    assert uniform[band].sum().item() == pytest.approx(0.398, abs=0.005)
    assert lognormal[band].sum().item() == pytest.approx(0.683, abs=0.01)
    with pytest.raises(ValueError, match="unknown timestep density"):
        timestep_probabilities(s, "beta")


def test_the_default_recipe_draws_steps_around_sigma_1_65(tmp_path):
    trainer = Trainer(TrainConfig(max_images=32, base_channels=8, output_dir=str(tmp_path)))
    expected = timestep_probabilities(trainer.schedule, "lognormal", 0.5, 0.8).float()
    torch.testing.assert_close(trainer.t_probabilities, expected)
    sigma = trainer.schedule.log_sigmas().exp()
    # ln(sigma) ~ N(0.5, 0.8^2): 95% of the steps within 1.96 standard deviations, sigma 0.34 to 7.9
    assert trainer.t_probabilities[(sigma > 0.344) & (sigma < 7.91)].sum().item() == pytest.approx(0.95, abs=0.01)


def test_l_simple_draws_training_steps_from_the_given_density():
    s = NoiseSchedule.create("linear", 100)
    p = timestep_probabilities(s, "lognormal").float()
    seen = []

    def spy(x, t):
        seen.append(t)
        return torch.zeros_like(x)

    torch.manual_seed(0)
    l_simple(spy, s, torch.zeros(40_000, 1, 1, 1), t_probabilities=p)
    counts = torch.bincount(seen[0], minlength=100).double() / 40_000
    assert (counts - p.double()).abs().max().item() < 0.01


def test_v_target_and_its_noise_predictor_recover_eps_and_x0_exactly():
    s = NoiseSchedule.create("cosine", 1000)
    gen = torch.Generator().manual_seed(0)
    x0, eps = torch.rand(8, 1, 4, 4, generator=gen) * 2 - 1, torch.randn(8, 1, 4, 4, generator=gen)
    t = torch.tensor([0, 1, 10, 100, 500, 900, 990, 999])
    x_t = s.q_sample(x0, t, eps)
    v = v_target(s, x0, t, eps)
    a = s.sqrt_alpha_bars[t].reshape(-1, 1, 1, 1)
    torch.testing.assert_close(a * x_t - (1 - a**2).sqrt() * v, x0, atol=1e-5, rtol=0)  # x_0 = a x_t - s v

    class Oracle(torch.nn.Module):
        num_classes = 0

        def forward(self, x, tt):
            return v

    predictor = noise_predictor(Oracle(), s, "v")
    torch.testing.assert_close(predictor(x_t, t), eps, atol=1e-4, rtol=0)
    torch.testing.assert_close(s.predict_x0(x_t[:6], t[:6], predictor(x_t, t)[:6]), x0[:6], atol=1e-3, rtol=0)
    assert noise_predictor(Oracle(), s, "eps").__class__ is Oracle
    with pytest.raises(ValueError, match="unknown prediction"):
        noise_predictor(Oracle(), s, "x0")


def test_v_loss_is_the_x0_error_over_one_minus_alpha_bar():
    """A network that predicts v = 0 makes the v-loss the mean of a^2 eps^2 + (1 - a^2) x0^2 over steps."""
    s = NoiseSchedule.create("linear", 1000)
    x0 = torch.full((20_000, 1, 2, 2), 0.5)
    torch.manual_seed(0)
    loss = l_simple(lambda x, t: torch.zeros_like(x), s, x0, prediction="v").item()
    ab = s.alpha_bars.double()
    expected = (ab * 1.0 + (1 - ab) * 0.25).mean().item()
    assert loss == pytest.approx(expected, rel=0.02)


def test_gradient_clipping_bounds_the_update_norm(tmp_path):
    config = dict(max_images=32, batch_size=32, epochs=1, base_channels=8, timesteps=20, output_dir=str(tmp_path))
    trainer = Trainer(TrainConfig(**config, grad_clip=1e-3))
    trainer.train_step(trainer.images_at(torch.arange(32)))
    norm = torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in trainer.model.parameters()]))
    assert norm.item() == pytest.approx(1e-3, rel=1e-3)


def test_checkpoints_from_before_a_choice_existed_keep_what_they_were_trained_with():
    stored = TrainConfig().to_dict()
    for key in ("prediction", "timestep_density", "grad_clip", "log_sigma_mean", "log_sigma_std", "optimiser"):
        del stored[key]
    old = TrainConfig.from_dict(stored)
    assert (old.prediction, old.timestep_density, old.grad_clip, old.optimiser) == ("eps", "uniform", 0.0, "adamw")
    assert (old.log_sigma_mean, old.log_sigma_std) == (LOGNORMAL_MEAN, LOGNORMAL_STD)  # EDM's, as before
    assert TrainConfig.from_dict(TrainConfig(prediction="v").to_dict()).prediction == "v"
