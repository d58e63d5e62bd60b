"""Closed-form checks of the noise schedules and the forward process q(x_t | x_0)."""

import math

import numpy as np
import pytest
import torch

from core import NoiseSchedule, display_timesteps


def test_linear_schedule_matches_ho_et_al():
    s = NoiseSchedule.create("linear", 1000)
    assert s.betas[0].item() == pytest.approx(1e-4)
    assert s.betas[-1].item() == pytest.approx(0.02)
    betas = np.linspace(1e-4, 0.02, 1000)
    expected = np.cumprod(1 - betas)
    np.testing.assert_allclose(s.alpha_bars.numpy(), expected, rtol=1e-5)
    # well-known values of the DDPM schedule: half the signal variance is gone near t = 260
    assert s.alpha_bars[500].item() == pytest.approx(0.0778, abs=1e-4)
    assert s.sqrt_alpha_bars[999].item() == pytest.approx(0.00635, abs=1e-4)


def test_linear_schedule_scales_with_T():
    s = NoiseSchedule.create("linear", 500)
    assert s.betas[0].item() == pytest.approx(2e-4)
    assert s.betas[-1].item() == pytest.approx(0.04)


def test_cosine_schedule_follows_its_definition():
    T, eps = 1000, 0.008
    s = NoiseSchedule.create("cosine", T)
    f = lambda t: math.cos((t / T + eps) / (1 + eps) * math.pi / 2) ** 2  # noqa: E731
    for t in (0, 100, 500, 900):
        # index t is the paper's step t + 1
        assert s.alpha_bars[t].item() == pytest.approx(f(t + 1) / f(0), rel=1e-4)
    assert s.betas.max().item() <= 0.999 + 1e-6
    assert s.betas[-1].item() == pytest.approx(0.999)


@pytest.mark.parametrize("name", ["linear", "cosine"])
def test_derived_quantities(name):
    s = NoiseSchedule.create(name, 100)
    torch.testing.assert_close(s.alphas, 1 - s.betas)
    torch.testing.assert_close(s.alpha_bars_prev[1:], s.alpha_bars[:-1])
    assert s.alpha_bars_prev[0].item() == 1.0
    assert torch.all(s.alpha_bars[1:] < s.alpha_bars[:-1])
    # the posterior q(x_{t-1} | x_t, x_0) by Gaussian conditioning, derived independently of eq. 7
    precision = 1 / (1 - s.alpha_bars_prev[1:]) + s.alphas[1:] / s.betas[1:]
    torch.testing.assert_close(s.posterior_variance[1:], 1 / precision, rtol=1e-4, atol=1e-8)
    x0, xt = torch.tensor(0.7), torch.tensor(-0.3)
    mean = s.alpha_bars_prev[1:].sqrt() * x0 / (1 - s.alpha_bars_prev[1:]) + s.alphas[1:].sqrt() * xt / s.betas[1:]
    mean = mean / precision
    t = torch.arange(1, 100)
    got = s.posterior_mean(x0.expand(99, 1), xt.expand(99, 1), t).squeeze(1)
    torch.testing.assert_close(got, mean, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("t", [0, 100, 400, 999])
def test_q_sample_has_the_closed_form_mean_and_variance(t):
    s = NoiseSchedule.create("linear", 1000)
    gen = torch.Generator().manual_seed(0)
    x0 = torch.tensor([-1.0, -0.2, 0.5, 1.0]).expand(200_000, 4)
    noise = torch.randn(x0.shape, generator=gen)
    xt = s.q_sample(x0, torch.full((len(x0),), t), noise)
    ab = s.alpha_bars[t].item()
    torch.testing.assert_close(xt.mean(0), math.sqrt(ab) * x0[0], atol=0.01, rtol=0)
    torch.testing.assert_close(xt.var(0), torch.full((4,), 1 - ab), atol=0.01, rtol=0.02)


def test_predict_x0_inverts_q_sample():
    s = NoiseSchedule.create("cosine", 200)
    x0, noise = torch.randn(8, 1, 4, 4), torch.randn(8, 1, 4, 4)
    t = torch.arange(0, 200, 25)
    torch.testing.assert_close(s.predict_x0(s.q_sample(x0, t, noise), t, noise), x0, atol=2e-3, rtol=1e-3)


def test_display_timesteps():
    assert display_timesteps(1000) == [0, 50, 100, 250, 500, 750, 999]
    assert display_timesteps(100) == [0, 5, 10, 25, 50, 75, 99]
    assert display_timesteps(4) == [0, 1, 2, 3]


def test_bad_schedules_are_refused():
    with pytest.raises(ValueError, match="at least 2"):
        NoiseSchedule.create("linear", 1)
    with pytest.raises(ValueError, match="unknown schedule"):
        NoiseSchedule.create("quadratic", 100)
