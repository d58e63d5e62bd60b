"""Samplers checked against the paper's formulas and against an exact denoiser for Gaussian data."""

import math

import pytest
import torch

import core
from core import (
    SIGMA_MAX,
    NoiseSchedule,
    autoguided,
    ddim_step,
    ddim_timesteps,
    ddpm_step,
    dpm_solver_sde_step,
    dpm_solver_step,
    guided,
    last_step,
    log_snr_timesteps,
    sample,
    sampler_timesteps,
)


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
    assert times == sorted(set(times), reverse=True)
    assert ddim_timesteps(1000, 1000) == list(range(999, -1, -1))
    uneven = ddim_timesteps(10, 4)
    assert uneven == [9, 6, 3, 0]
    with pytest.raises(ValueError):
        ddim_timesteps(100, 101)


@pytest.mark.parametrize("name", ["cosine", "linear"])
def test_fast_sampler_steps_start_at_pure_noise_then_space_evenly_in_log_snr_below_sigma_max(name):
    s = NoiseSchedule.create(name, 1000)
    lam = s.half_log_snr.double()
    times = log_snr_timesteps(s, 25)
    assert len(times) == 25 and times[0] == 999 and times[-1] == 0
    assert times == sorted(set(times), reverse=True)
    # the second step is the timestep nearest sigma_max: lambda = -ln(sigma_max)
    assert times[1] == int((lam + math.log(SIGMA_MAX)).abs().argmin())
    # from there on equal steps in lambda, up to the rounding to whole timesteps (coarse only near t = 0)
    gaps = torch.diff(lam[times[1:]])
    even = (float(lam[0]) + math.log(SIGMA_MAX)) / 23
    assert gaps[:12].sub(even).abs().max() < 0.1 * even
    assert gaps.sum().item() == pytest.approx(23 * even, rel=1e-3)
    assert log_snr_timesteps(s, 2) == [999, 0] and log_snr_timesteps(s, 1) == [999]
    # an unreachable sigma_max spreads the steps over the schedule's whole range, as Lu et al. do
    assert log_snr_timesteps(s, 25, sigma_max=1e9)[1] == 998


def test_explicit_times_replace_the_samplers_own_and_are_checked():
    s = NoiseSchedule.create("cosine", 100)
    model = gaussian_denoiser(s, 0.2, 0.3)
    x_T = torch.randn(8, 1, 2, 2)

    def run(**kwargs):
        return last_step(sample(model, s, x_T, "dpm++", generator=torch.Generator().manual_seed(0), **kwargs)).x

    torch.testing.assert_close(run(steps=10), run(times=sampler_timesteps(s, "dpm++", 10)))
    assert not torch.allclose(run(steps=10), run(times=ddim_timesteps(100, 10)))
    for bad in ([], [99, 99, 0], [0, 50], [100, 0], [50, -1]):
        with pytest.raises(ValueError, match="times must be"):
            sample(model, s, x_T, "dpm++", times=bad)


def gaussian_denoiser(schedule: NoiseSchedule, mean: float, std: float):
    """The exact E[eps | x_t] when every pixel of x_0 is N(mean, std^2): the best possible network."""

    def model(x, t):
        ab = schedule.alpha_bars[t].reshape(-1, 1, 1, 1)
        return (1 - ab).sqrt() * (x - ab.sqrt() * mean) / (ab * std**2 + 1 - ab)

    return model


def run_to_the_end(model, schedule, sampler, steps=None, eta=None, count=4000):
    gen = torch.Generator().manual_seed(0)
    x_T = torch.randn(count, 1, 2, 2, generator=gen)
    step = last_step(sample(model, schedule, x_T, sampler, steps, eta, generator=gen))
    assert step.is_last
    return step.x


@pytest.mark.parametrize("sampler,eta", [("ddpm", None), ("ddim", 0.0), ("ddim", 1.0)])
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
        runs.append(
            last_step(sample(model, s, x_T, "ddim", 20, eta=0.0, generator=torch.Generator().manual_seed(seed))).x
        )
    torch.testing.assert_close(runs[0], runs[1])


def test_sampler_yields_every_step_with_its_t():
    s = NoiseSchedule.create("linear", 30)
    steps = list(sample(gaussian_denoiser(s, 0.0, 0.5), s, torch.randn(2, 1, 2, 2), "ddpm"))
    assert [st.t for st in steps] == list(range(29, -1, -1))
    assert [st.index for st in steps] == list(range(30))
    assert steps[-1].x0_pred.shape == (2, 1, 2, 2)


def _weight_casts_per_step(layers: int) -> float:
    """bf16 casts per DDPM step, beyond the first, of a stack of ``layers`` 1-channel convolutions sampled
    under autocast (the profiler counts ``aten::_to_copy``)."""
    from torch.profiler import ProfilerActivity, profile

    convs = torch.nn.Sequential(*[torch.nn.Conv2d(1, 1, 3, padding=1) for _ in range(layers)])
    s = NoiseSchedule.create("linear", 30)
    counts = []
    for steps in (2, 6):
        with profile(activities=[ProfilerActivity.CPU]) as run, torch.autocast("cpu", dtype=torch.bfloat16):
            for step in sample(lambda x, t: convs(x), s, torch.randn(2, 1, 4, 4), "ddpm"):
                if step.index + 1 == steps:
                    break
        counts.append(sum(event.count for event in run.key_averages() if event.key == "aten::_to_copy"))
    return (counts[1] - counts[0]) / 4


def test_sampling_casts_the_weights_to_bf16_once_not_at_every_step():
    # Autocast keeps its bf16 copies of the weights for its whole block only outside inference mode: a
    # sampler under inference_mode would cast all three layers' weights and biases again at every step.
    assert _weight_casts_per_step(3) == _weight_casts_per_step(1)


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


def ode_endpoint(schedule: NoiseSchedule, x_T: torch.Tensor, mean: float, std: float) -> torch.Tensor:
    """Where the probability-flow ODE takes x_T for N(mean, std^2) data, in closed form.

    For Gaussian data the ODE keeps z = (x_t - a_t mean) / v_t constant, v_t^2 = a_t^2 std^2 + s_t^2
    (a_t, s_t the signal and noise scales). The samplers' last step returns E[x_0 | x_t] at t = 0,
    which is mean + a_0 std^2 z / v_0."""
    a, s = schedule.sqrt_alpha_bars.double(), schedule.sqrt_one_minus_alpha_bars.double()
    v = (a**2 * std**2 + s**2).sqrt()
    T = schedule.timesteps - 1
    z = (x_T.double() - a[T] * mean) / v[T]
    return mean + a[0] * std**2 * z / v[0]


def solve(model, schedule, x_T, sampler, steps):
    return last_step(sample(model, schedule, x_T, sampler, steps, clip=False)).x.double()


def test_dpm_solver_first_step_is_ddim():
    s = NoiseSchedule.create("linear", 1000)
    x_t, eps = torch.randn(4, 1, 4, 4), torch.randn(4, 1, 4, 4)
    for t, t_prev in ((999, 949), (500, 100), (20, 0)):
        ddim, x0 = ddim_step(s, x_t, t, t_prev, eps, torch.zeros_like(x_t), clip=False)
        torch.testing.assert_close(dpm_solver_step(s, x_t, t, t_prev, x0), ddim, atol=1e-5, rtol=1e-4)


def test_dpm_solver_converges_to_the_exact_ode_solution_faster_than_ddim():
    s = NoiseSchedule.create("linear", 1000)
    mean, std = 0.2, 0.3
    model = gaussian_denoiser(s, mean, std)
    x_T = torch.randn(256, 1, 2, 2, generator=torch.Generator().manual_seed(3))
    exact = ode_endpoint(s, x_T, mean, std)

    def error(sampler, steps):
        return (solve(model, s, x_T, sampler, steps) - exact).abs().max().item()

    dpm = {n: error("dpm++", n) for n in (10, 20, 100)}
    ddim = {n: error("ddim", n) for n in (10, 20, 1000)}
    assert dpm[10] > dpm[20] > dpm[100]
    assert dpm[100] < 2e-3 and ddim[1000] < 1e-2  # both reach the same images from the same noise
    assert dpm[20] < ddim[20] / 4  # second order: far closer with the same number of network calls
    assert dpm[20] < 0.02


def test_dpm_solver_with_many_steps_matches_ddim_with_many_steps():
    s = NoiseSchedule.create("cosine", 1000)
    model = gaussian_denoiser(s, -0.1, 0.4)
    x_T = torch.randn(64, 1, 4, 4, generator=torch.Generator().manual_seed(4))
    torch.testing.assert_close(
        solve(model, s, x_T, "dpm++", 250), solve(model, s, x_T, "ddim", 1000), atol=3e-3, rtol=0
    )


def test_dpm_solver_reproduces_the_data_distribution():
    s = NoiseSchedule.create("linear", 1000)
    x = run_to_the_end(gaussian_denoiser(s, 0.2, 0.3), s, "dpm++", 50)
    assert x.mean().item() == pytest.approx(0.2, abs=0.01)
    assert x.std().item() == pytest.approx(0.3, abs=0.01)


def test_default_steps_and_step_count():
    s = NoiseSchedule.create("linear", 1000)
    assert len(sampler_timesteps(s, "dpm++")) == 20
    assert len(sampler_timesteps(s, "ddim")) == 50
    assert len(list(sample(gaussian_denoiser(s, 0, 1), s, torch.randn(1, 1, 2, 2), "dpm++", 7))) == 7
    with pytest.raises(ValueError, match="unknown sampler"):
        sampler_timesteps(s, "euler")


class LabelEcho(torch.nn.Module):
    """A stand-in conditional network whose 'noise' is the label itself, so guidance is plain arithmetic."""

    num_classes = null_class = 10

    def __init__(self):
        super().__init__()
        self.calls = 0

    def forward(self, x, t, y):
        self.calls += 1
        return y.float().reshape(-1, 1, 1, 1).expand_as(x)


@pytest.mark.parametrize("scale,calls", [(0.0, 1), (1.0, 1), (3.0, 1), (-0.5, 1)])
def test_classifier_free_guidance_combines_the_two_predictions(scale, calls):
    model = LabelEcho()
    labels = torch.tensor([2, 7])
    eps = guided(model, labels, scale, null_class=10)(torch.zeros(2, 1, 2, 2), torch.tensor([5, 5]))
    expected = 10 + scale * (labels.float() - 10)  # eps_uncond + w (eps_cond - eps_uncond)
    torch.testing.assert_close(eps[:, 0, 0, 0], expected)
    assert model.calls == calls  # both predictions in one batched call


def test_dpm_solver_sde_first_step_is_ddpm_posterior_step():
    """With D = x0_hat, the SDE step from t to t' is DDIM with eta = 1 from the same noise (DDPM's posterior)."""
    s = NoiseSchedule.create("linear", 1000)
    gen = torch.Generator().manual_seed(0)
    x_t, eps, z = (torch.randn(4, 1, 4, 4, generator=gen) for _ in range(3))
    for t, t_prev in ((999, 949), (500, 100), (20, 0), (10, 9)):
        ddim, x0 = ddim_step(s, x_t, t, t_prev, eps, z, eta=1.0, clip=False)
        torch.testing.assert_close(dpm_solver_sde_step(s, x_t, t, t_prev, x0, z), ddim, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("eta", [core.DEFAULT_ETA["dpm++sde"], 1.0])
def test_dpm_solver_sde_reproduces_the_data_distribution_and_converges_faster_than_ddim_eta_one(eta):
    s = NoiseSchedule.create("linear", 1000)
    model = gaussian_denoiser(s, 0.2, 0.3)

    def std_error(sampler, steps, eta):
        x = run_to_the_end(model, s, sampler, steps, eta, count=8000)
        assert x.mean().item() == pytest.approx(0.2, abs=0.01)
        return abs(x.std().item() - 0.3)

    sde = [std_error("dpm++sde", n, eta) for n in (5, 10, 50)]
    assert sde[0] > sde[1] > 0.0 and sde[2] < 0.005
    assert sde[1] < std_error("ddim", 10, eta=1.0) / 4  # second order: far closer for the same network calls


@pytest.mark.parametrize("eta", [0.0, 0.3, 1.0, 2.0])
def test_every_eta_of_the_sde_step_keeps_the_marginal_of_the_data_it_predicts(eta):
    """When D is the data (x_t = alpha_t D + sigma_t eps exactly), the step lands on alpha_t' D + sigma_t' eps'
    with eps' = e^{-eta h} eps + sqrt(1 - e^{-2 eta h}) z, unit variance: eta only trades kept noise for fresh."""
    s = NoiseSchedule.create("cosine", 1000)
    gen = torch.Generator().manual_seed(0)
    data, eps, z = (torch.randn(4, 1, 4, 4, generator=gen) for _ in range(3))
    for t, t_prev in ((999, 900), (500, 100), (20, 0)):
        x_t = s.sqrt_alpha_bars[t] * data + s.sqrt_one_minus_alpha_bars[t] * eps
        h = s.half_log_snr[t_prev] - s.half_log_snr[t]
        kept = torch.exp(-eta * h)
        expected = s.sqrt_alpha_bars[t_prev] * data + s.sqrt_one_minus_alpha_bars[t_prev] * (
            kept * eps + (1 - kept**2).sqrt() * z
        )
        step = dpm_solver_sde_step(s, x_t, t, t_prev, data, z, eta=eta)
        torch.testing.assert_close(step, expected, atol=1e-5, rtol=1e-4)


def test_the_sde_step_without_fresh_noise_is_the_ode_step():
    s = NoiseSchedule.create("cosine", 1000)
    gen = torch.Generator().manual_seed(0)
    x_t, x0, x0_before, z = (torch.randn(4, 1, 4, 4, generator=gen) for _ in range(4))
    for previous in (None, (700, x0_before)):
        ode = dpm_solver_step(s, x_t, 500, 300, x0, previous)
        torch.testing.assert_close(dpm_solver_sde_step(s, x_t, 500, 300, x0, z, previous, eta=0.0), ode)


def test_eta_defaults_per_sampler_and_is_refused_where_it_means_nothing():
    assert core.resolve_eta("dpm++sde", None) == core.DEFAULT_ETA["dpm++sde"]
    assert core.resolve_eta("ddim", None) == 0.0 and core.resolve_eta("ddpm", None) is None
    assert core.resolve_eta("dpm++sde", 1.0) == 1.0
    with pytest.raises(ValueError, match="eta applies to ddim and dpm\\+\\+sde only"):
        core.resolve_eta("ddpm", 1.0)
    with pytest.raises(ValueError, match="0 or more"):
        core.resolve_eta("ddim", -0.1)


def test_the_default_autoguidance_is_the_one_measured_for_the_models_dataset(monkeypatch):
    schedule = NoiseSchedule.create("cosine", 1000)
    model = guide = lambda x, t, y=None: torch.zeros_like(x)  # noqa: E731
    monkeypatch.setattr(core.sampling, "DEFAULT_AUTOGUIDANCE", {"mnist": 2.0, "fashion_mnist": 3.5})
    for dataset, w in (("mnist", 2.0), ("fashion_mnist", 3.5), ("cifar10", 2.0)):  # unmeasured: MNIST's
        plan = core.plan_sampling(model, schedule, (1, 4, 4), 2, "ddim", guide=guide, dataset=dataset)
        assert plan.autoguidance == w and core.default_autoguidance(dataset) == w
    asked = core.plan_sampling(model, schedule, (1, 4, 4), 2, "ddim", guide=guide, autoguidance=1.5, dataset="x")
    assert asked.autoguidance == 1.5


def test_the_default_guidance_of_a_conditional_model_is_the_one_measured_for_its_dataset(monkeypatch):
    schedule = NoiseSchedule.create("cosine", 1000)
    model = LabelEcho()
    monkeypatch.setattr(core.sampling, "DEFAULT_GUIDANCE", {"mnist": 3.0, "fashion_mnist": 1.25})
    for dataset, w in (("mnist", 3.0), ("fashion_mnist", 1.25), ("cifar10", 3.0)):  # unmeasured: MNIST's
        plan = core.plan_sampling(model, schedule, (1, 4, 4), 3, "ddim", dataset=dataset)
        assert plan.guidance_scale == w and core.SamplingRequest("ddim", dataset=dataset).guidance_scale == w
    asked = core.plan_sampling(model, schedule, (1, 4, 4), 3, "ddim", guidance_scale=0.5, dataset="fashion_mnist")
    assert asked.guidance_scale == 0.5
    unconditional = core.plan_sampling(lambda x, t: x, schedule, (1, 4, 4), 3, "ddim", dataset="fashion_mnist")
    assert unconditional.guidance_scale is None
    with pytest.raises(ValueError, match="0 or more"):
        core.SamplingRequest("ddim", guidance_scale=-1.0)


def test_autoguidance_extrapolates_from_the_worse_model_past_the_better_one():
    def good(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return 0.5 * x

    def bad(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return 0.2 * x

    x, t = torch.randn(2, 1, 4, 4), torch.tensor([3, 7])
    assert autoguided(good, bad, 1.0) is good  # w = 1: the good model alone, one call per step
    assert torch.allclose(autoguided(good, bad, 0.0)(x, t), bad(x, t))
    assert torch.allclose(autoguided(good, bad, 2.0)(x, t), 0.8 * x)  # 0.2 + 2 * (0.5 - 0.2)
    only_at_7 = torch.arange(10) == 7  # a guidance interval that holds t = 7 only
    limited = autoguided(good, bad, 2.0, only_at_7)(x, t)
    assert torch.allclose(limited[0], 0.5 * x[0]) and torch.allclose(limited[1], 0.8 * x[1])


def test_the_guidance_interval_is_the_one_block_of_steps_between_its_noise_levels():
    s = NoiseSchedule.create("cosine", 1000)
    sigmas = ((1 - s.alpha_bars.double()) / s.alpha_bars.double()).sqrt()  # closed form of each step's noise level
    interval = core.guidance_interval(s)
    assert torch.equal(interval, (sigmas > core.GUIDANCE_SIGMA_MIN) & (sigmas < core.GUIDANCE_SIGMA_MAX))
    assert core.GUIDANCE_SIGMA_MIN < core.GUIDANCE_SIGMA_MAX
    block = torch.nonzero(interval).flatten()  # consecutive timesteps, far from either end of the schedule
    assert torch.equal(block, torch.arange(int(block[0]), int(block[-1]) + 1)) and 0 < block[0] and block[-1] < 999
    assert torch.equal(core.guidance_interval(s, 1.0, math.inf), sigmas > 1)  # open above: up to T - 1
    assert bool(core.guidance_interval(s, 0.0, math.inf).all())
    assert core.guided_calls(interval, [999, int(block[0]), 10]) == 4 and core.guided_calls(None, [999, 600, 10]) == 6


def test_an_autoguided_plan_takes_fewer_steps_so_an_image_costs_the_same_calls():
    schedule = NoiseSchedule.create("cosine", 1000)
    calls = {"good": 0, "bad": 0}

    def counting(name: str):
        def predict(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
            calls[name] += 1
            return torch.zeros_like(x)

        return predict

    good, bad = counting("good"), counting("bad")

    def counting_conditional(x: torch.Tensor, t: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        return torch.zeros_like(x)

    counting_conditional.num_classes, counting_conditional.null_class = 10, 10
    interval = core.guidance_interval(schedule)
    for sampler, default in core.DEFAULT_STEPS.items():
        plain = core.plan_sampling(good, schedule, (1, 4, 4), 2, sampler, guide=None)
        guided_plan = core.plan_sampling(good, schedule, (1, 4, 4), 2, sampler, guide=bad, autoguidance=1.5)
        assert len(plain.timesteps) == default and plain.autoguidance is None
        steps = len(guided_plan.timesteps)
        assert default // 2 < steps < default and guided_plan.autoguidance == 1.5
        assert core.guided_calls(interval, guided_plan.timesteps) <= default  # the same calls...
        one_more = core.sampler_timesteps(schedule, sampler, steps + 1)
        assert core.guided_calls(interval, one_more) > default  # ...and as many steps as fit in them
    plan = core.plan_sampling(good, schedule, (1, 4, 4), 2, "dpm++sde", guide=bad, autoguidance=2.0)
    last_step(plan.run())
    guided_steps = sum(bool(interval[t]) for t in plan.timesteps)
    assert calls == {"good": len(plan.timesteps), "bad": guided_steps} and sum(calls.values()) <= 50
    explicit = core.plan_sampling(good, schedule, (1, 4, 4), 2, "ddim", 40, guide=bad, autoguidance=2.0)
    off = core.plan_sampling(good, schedule, (1, 4, 4), 2, "ddim", guide=bad, autoguidance=1.0)
    assert len(explicit.timesteps) == 40 and len(off.timesteps) == 50 and off.predictor is good
    by_default = core.plan_sampling(good, schedule, (1, 4, 4), 2, core.FAST_SAMPLER, guide=bad)
    ddpm = core.plan_sampling(good, schedule, (1, 4, 4), 2, "ddpm", guide=bad)
    assert by_default.autoguidance == core.default_autoguidance("mnist")
    assert ddpm.autoguidance is None  # DDPM cannot halve its steps
    assert core.plan_sampling(good, schedule, (1, 4, 4), 2, "ddpm", guide=bad, autoguidance=2.0).autoguidance == 2
    conditional = core.plan_sampling(counting_conditional, schedule, (1, 4, 4), 2, "ddim", guide=counting_conditional)
    assert conditional.autoguidance is None  # classifier-free guidance steers conditional models by default
    with pytest.raises(ValueError, match="autoguidance w must be 0 or more"):
        core.plan_sampling(good, schedule, (1, 4, 4), 2, "ddim", guide=bad, autoguidance=-1.0)
