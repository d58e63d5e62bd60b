"""Samplers checked against the paper's formulas and against an exact denoiser for Gaussian data."""

import math

import pytest
import torch

from core import NoiseSchedule, ddim_step, ddim_timesteps, ddpm_step, sample


def test_ddpm_step_equals_algorithm_2_without_clipping():
    s = NoiseSchedule.create("linear", 1000)
    gen = torch.Generator().manual_seed(0)
    x_t, eps, z = (torch.randn(16, 1, 4, 4, generator=gen) for _ in range(3))
    for t in (999, 500, 10, 1):
        got, _ = ddpm_step(s, x_t, t, eps, z, clip=False)
        alpha, beta, ab = s.alphas[t], s.betas[t], s.alpha_bars[t]
        sigma = s.posterior_variance[t].sqrt()
        expected = (x_t - beta / (1 - ab).sqrt() * eps) / alpha.sqrt() + sigma * z
        torch.testing.assert_close(got, expected, atol=1e-4, rtol=1e-4)


def test_ddpm_last_step_adds_no_noise():
    s = NoiseSchedule.create("linear", 100)
    x_t, eps = torch.randn(4, 1, 4, 4), torch.randn(4, 1, 4, 4)
    a, _ = ddpm_step(s, x_t, 0, eps, torch.randn(4, 1, 4, 4))
    b, _ = ddpm_step(s, x_t, 0, eps, torch.zeros(4, 1, 4, 4))
    torch.testing.assert_close(a, b)


def test_ddim_with_eta_one_and_every_step_is_ddpm():
    s = NoiseSchedule.create("cosine", 200)
    x_t, eps, z = torch.randn(8, 1, 4, 4), torch.randn(8, 1, 4, 4), torch.randn(8, 1, 4, 4)
    for t in (199, 100, 1):
        ddim, _ = ddim_step(s, x_t, t, t - 1, eps, z, eta=1.0, clip=False)
        ddpm, _ = ddpm_step(s, x_t, t, eps, z, clip=False)
        torch.testing.assert_close(ddim, ddpm, atol=1e-4, rtol=1e-4)


def test_ddim_timesteps_come_from_their_own_list():
    times = ddim_timesteps(1000, 50)
    assert len(times) == 50 and times[0] == 999 and times[-1] == 0
    assert all(a > b for a, b in zip(times, times[1:]))
    assert ddim_timesteps(1000, 1000) == list(range(999, -1, -1))
    uneven = ddim_timesteps(10, 4)
    assert uneven == [9, 6, 3, 0]
    with pytest.raises(ValueError):
        ddim_timesteps(100, 101)


def gaussian_denoiser(schedule: NoiseSchedule, mean: float, std: float):
    """The exact E[eps | x_t] when every pixel of x_0 is N(mean, std^2): the best possible network."""

    def model(x, t):
        ab = schedule.alpha_bars[t].reshape(-1, 1, 1, 1)
        return (1 - ab).sqrt() * (x - ab.sqrt() * mean) / (ab * std**2 + 1 - ab)

    return model


def run_to_the_end(model, schedule, sampler, steps=None, eta=0.0, count=4000):
    gen = torch.Generator().manual_seed(0)
    x_T = torch.randn(count, 1, 2, 2, generator=gen)
    for step in sample(model, schedule, x_T, sampler, steps, eta, generator=gen):
        pass
    assert step.is_last
    return step.x


@pytest.mark.parametrize("sampler,eta", [("ddpm", 0.0), ("ddim", 0.0), ("ddim", 1.0)])
def test_samplers_with_the_exact_denoiser_reproduce_the_data_distribution(sampler, eta):
    s = NoiseSchedule.create("linear", 1000)
    mean, std = 0.2, 0.3
    x = run_to_the_end(gaussian_denoiser(s, mean, std), s, sampler, 1000 if sampler == "ddim" else None, eta)
    assert x.mean().item() == pytest.approx(mean, abs=0.01)
    assert x.std().item() == pytest.approx(std, abs=0.01)


def test_fewer_ddim_steps_trade_accuracy_for_speed():
    """With few steps the last jump lands on E[x_0 | x_t], narrower than the data: the error shrinks as
    the step count grows."""
    s = NoiseSchedule.create("linear", 1000)
    model = gaussian_denoiser(s, 0.2, 0.3)
    errors = [abs(run_to_the_end(model, s, "ddim", n).std().item() - 0.3) for n in (10, 50, 200)]
    assert errors[0] > errors[1] > errors[2]
    assert errors[2] < 0.01


def test_ddim_eta0_is_deterministic_given_the_noise():
    s = NoiseSchedule.create("linear", 100)
    model = gaussian_denoiser(s, 0.0, 0.5)
    x_T = torch.randn(8, 1, 4, 4)
    runs = []
    for seed in (1, 2):
        for step in sample(model, s, x_T, "ddim", 20, eta=0.0, generator=torch.Generator().manual_seed(seed)):
            pass
        runs.append(step.x)
    torch.testing.assert_close(runs[0], runs[1])


def test_sampler_yields_every_step_with_its_t():
    s = NoiseSchedule.create("linear", 30)
    steps = list(sample(gaussian_denoiser(s, 0.0, 0.5), s, torch.randn(2, 1, 2, 2), "ddpm"))
    assert [st.t for st in steps] == list(range(29, -1, -1))
    assert [st.index for st in steps] == list(range(30))
    assert steps[-1].x0_pred.shape == (2, 1, 2, 2)


def test_ddpm_refuses_fewer_steps():
    s = NoiseSchedule.create("linear", 30)
    with pytest.raises(ValueError, match="all T"):
        next(sample(gaussian_denoiser(s, 0, 1), s, torch.randn(1, 1, 2, 2), "ddpm", steps=10))


def test_exact_denoiser_formula_is_the_posterior_mean_of_the_noise():
    # sanity check of the test's own oracle against a Monte Carlo estimate at one t
    s = NoiseSchedule.create("linear", 1000)
    t, mean, std = 300, 0.2, 0.3
    gen = torch.Generator().manual_seed(1)
    x0 = mean + std * torch.randn(400_000, generator=gen)
    eps = torch.randn(400_000, generator=gen)
    xt = s.q_sample(x0, torch.full((400_000,), t), eps)
    pick = (xt - 0.5).abs() < 0.01
    oracle = gaussian_denoiser(s, mean, std)(torch.tensor([0.5]).reshape(1, 1, 1, 1), torch.tensor([t]))
    assert eps[pick].mean().item() == pytest.approx(oracle.item(), abs=0.03)
    assert math.isfinite(oracle.item())
