r"""Samplers: turn pure noise :math:`x_T \sim \mathcal N(0, I)` into images with a trained :math:`\epsilon_\theta`.

Every sampler is a generator that yields a :class:`SamplerStep` after every denoising step, so a command
line can show progress and a screen can draw :math:`x_t` and the predicted :math:`\hat x_0` live. The last
step yielded holds the finished images.

* ``ddpm``: ancestral sampling through all T steps (Ho et al. 2020).
* ``ddim``: the deterministic (or, with eta > 0, partly stochastic) DDIM update on a shorter list of
  timesteps (Song et al. 2021): a first-order solver of the probability-flow ODE.
* ``dpm++``: DPM-Solver++(2M) (Lu et al. 2022), a second-order multistep solver of the same ODE that
  reuses the previous step's :math:`\hat x_0`, so it needs far fewer network calls for the same accuracy.
* ``dpm++sde``: DPM-Solver++(2M) SDE, the same second-order multistep idea applied to a reverse SDE
  rather than the ODE: like DDPM it adds fresh noise at every step, which corrects part of an imperfect
  network's errors instead of following them, at a few dozen steps instead of T. Its ``eta`` sets how
  much noise: 0 is the ODE, 1 the reverse SDE of DDPM, and in between a blend that keeps every marginal.

:func:`guided` turns a class-conditional network into the classifier-free-guided noise predictor the
samplers take (Ho and Salimans 2022).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch

from . import jobs
from .schedule import NoiseSchedule

SAMPLERS: tuple[str, ...] = ("ddpm", "ddim", "dpm++", "dpm++sde")
FAST_SAMPLER = "dpm++sde"  # the recommended sampler: eval's default and the trainer's previews
DEFAULT_STEPS: dict[str, int] = {"ddim": 50, "dpm++": 20, "dpm++sde": 50}
DEFAULT_ETA: dict[str, float] = {"ddim": 0.0, "dpm++sde": 0.7}  # fresh noise per step (docs/sampler.md)
SIGMA_MAX = 20.0  # the noise level where the DPM-Solver samplers' evenly spaced steps begin
GUIDANCE_SIGMA_MIN = 1.0  # autoguidance acts only above this noise level (see guidance_interval)...
GUIDANCE_SIGMA_MAX = 5.0  # ...and below this one, where the digit's class is already chosen

NoisePredictor = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class SamplerStep:
    """One denoising step: ``x`` is the new, less noisy sample (the finished images at the last step)."""

    index: int
    total: int
    t: int
    x: torch.Tensor
    x0_pred: torch.Tensor

    @property
    def is_last(self) -> bool:
        return self.index == self.total - 1


def ddpm_step(
    schedule: NoiseSchedule, x_t: torch.Tensor, t: int, eps: torch.Tensor, noise: torch.Tensor, clip: bool = True
) -> tuple[torch.Tensor, torch.Tensor]:
    r"""One ancestral step :math:`x_t \to x_{t-1}` (Ho et al. 2020, Algorithm 2).

    The network's noise estimate gives
    :math:`\hat x_0 = (x_t - \sqrt{1-\bar\alpha_t}\,\hat\epsilon)/\sqrt{\bar\alpha_t}`;
    then :math:`x_{t-1} = \tilde\mu_t(x_t, \hat x_0) + \sigma_t z` with the posterior mean of eq. 7 and
    :math:`\sigma_t^2 = \tilde\beta_t`. Without clipping this equals Algorithm 2's
    :math:`\frac{1}{\sqrt{\alpha_t}}\big(x_t - \frac{\beta_t}{\sqrt{1-\bar\alpha_t}}\hat\epsilon\big) + \sigma_t z`;
    clipping :math:`\hat x_0` to the data range [-1, 1] keeps early, poor estimates from overshooting.
    At t = 0, :math:`\tilde\beta_0 = 0` and no noise is added. Returns :math:`(x_{t-1}, \hat x_0)`.
    """
    tt = torch.full((x_t.shape[0],), t, device=x_t.device, dtype=torch.long)
    x0 = schedule.predict_x0(x_t, tt, eps)
    if clip:
        x0 = x0.clamp(-1.0, 1.0)
    mean = schedule.posterior_mean(x0, x_t, tt)
    return mean + schedule.posterior_variance[t].sqrt() * noise, x0


def ddim_step(
    schedule: NoiseSchedule,
    x_t: torch.Tensor,
    t: int,
    t_prev: int,
    eps: torch.Tensor,
    noise: torch.Tensor,
    eta: float = 0.0,
    clip: bool = True,
) -> tuple[torch.Tensor, torch.Tensor]:
    r"""One DDIM step from t to an earlier t_prev (Song et al. 2021, eq. 12), t_prev = -1 meaning "done".

    .. math::  x_{t'} = \sqrt{\bar\alpha_{t'}}\,\hat x_0 + \sqrt{1-\bar\alpha_{t'}-\sigma^2}\,\hat\epsilon + \sigma z,
               \qquad \sigma = \eta\sqrt{\tfrac{1-\bar\alpha_{t'}}{1-\bar\alpha_t}}
               \sqrt{1-\tfrac{\bar\alpha_t}{\bar\alpha_{t'}}}

    :math:`\eta = 0` is deterministic (the same noise always gives the same image); :math:`\eta = 1` with
    every step is DDPM. After clipping :math:`\hat x_0`, :math:`\hat\epsilon` is recomputed from it so the two
    stay consistent. Returns :math:`(x_{t'}, \hat x_0)`.
    """
    alpha_bar = schedule.alpha_bars[t]
    alpha_bar_prev = schedule.alpha_bars[t_prev] if t_prev >= 0 else torch.ones((), device=x_t.device)
    x0 = (x_t - (1 - alpha_bar).sqrt() * eps) / alpha_bar.sqrt()
    if clip:
        x0 = x0.clamp(-1.0, 1.0)
        eps = (x_t - alpha_bar.sqrt() * x0) / (1 - alpha_bar).sqrt()
    sigma = eta * ((1 - alpha_bar_prev) / (1 - alpha_bar) * (1 - alpha_bar / alpha_bar_prev)).sqrt()
    direction = (1 - alpha_bar_prev - sigma**2).clamp(min=0).sqrt() * eps
    return alpha_bar_prev.sqrt() * x0 + direction + sigma * noise, x0


def multistep_data(
    schedule: NoiseSchedule, t: int, t_prev: int, x0: torch.Tensor, previous: tuple[int, torch.Tensor] | None
) -> tuple[torch.Tensor, torch.Tensor]:
    r"""The step size :math:`h = \lambda_{t'} - \lambda_t` in half log-SNR and DPM-Solver++(2M)'s data
    prediction :math:`D` for it: :math:`\hat x_0` at the first step; later, the linear extrapolation in
    :math:`\lambda` from the previous step's ``previous = (t_before, x0_before)``,
    :math:`D = (1 + \tfrac{1}{2r})\hat x_0 - \tfrac{1}{2r}\hat x_0^{\text{before}}` with
    :math:`r = h_{\text{before}}/h` (shared by the ODE and SDE solvers)."""
    lam = schedule.half_log_snr
    h = lam[t_prev] - lam[t]
    if previous is None:
        return h, x0
    t_before, x0_before = previous
    r = (lam[t] - lam[t_before]) / h
    return h, (1 + 1 / (2 * r)) * x0 - (1 / (2 * r)) * x0_before


def dpm_solver_step(
    schedule: NoiseSchedule,
    x_t: torch.Tensor,
    t: int,
    t_prev: int,
    x0: torch.Tensor,
    previous: tuple[int, torch.Tensor] | None = None,
) -> torch.Tensor:
    r"""One DPM-Solver++(2M) step from t to an earlier t_prev (Lu et al. 2022, Algorithm 2), t_prev = -1 meaning "done".

    With :math:`\alpha_t = \sqrt{\bar\alpha_t}`, :math:`\sigma_t = \sqrt{1-\bar\alpha_t}`, the half log-SNR
    :math:`\lambda_t = \log(\alpha_t/\sigma_t)` and :math:`h = \lambda_{t'} - \lambda_t`, the exact solution of the
    probability-flow ODE for a constant data prediction :math:`D` is

    .. math::  x_{t'} = \frac{\sigma_{t'}}{\sigma_t}\,x_t - \alpha_{t'}\,(e^{-h} - 1)\,D.

    The first step uses :math:`D = \hat x_0` (first order, which is exactly DDIM). Later steps extrapolate
    linearly in :math:`\lambda` from the previous step's prediction ``previous = (t_before, x0_before)``:
    :math:`D = (1 + \tfrac{1}{2r})\hat x_0 - \tfrac{1}{2r}\hat x_0^{\text{before}}` with
    :math:`r = h_{\text{before}}/h`. The last step, to :math:`\sigma = 0`, returns :math:`\hat x_0` itself.
    """
    if t_prev < 0:
        return x0
    h, data = multistep_data(schedule, t, t_prev, x0, previous)
    sigma_ratio = schedule.sqrt_one_minus_alpha_bars[t_prev] / schedule.sqrt_one_minus_alpha_bars[t]
    return sigma_ratio * x_t - schedule.sqrt_alpha_bars[t_prev] * torch.expm1(-h) * data


def dpm_solver_sde_step(
    schedule: NoiseSchedule,
    x_t: torch.Tensor,
    t: int,
    t_prev: int,
    x0: torch.Tensor,
    noise: torch.Tensor,
    previous: tuple[int, torch.Tensor] | None = None,
    eta: float = 1.0,
) -> torch.Tensor:
    r"""One DPM-Solver++(2M) SDE step from t to an earlier t_prev (Lu et al. 2022, as in k-diffusion and
    diffusers), t_prev = -1 meaning "done".

    With the notation of :func:`dpm_solver_step`, the exact solution over one step, for a constant data
    prediction :math:`D`, of the reverse SDE whose noise strength is :math:`\eta` is Gaussian:

    .. math::  x_{t'} = \frac{\sigma_{t'}}{\sigma_t}e^{-\eta h}\,x_t + \alpha_{t'}\,(1 - e^{-(1+\eta)h})\,D
               + \sigma_{t'}\sqrt{1 - e^{-2\eta h}}\;z.

    Whatever :math:`\eta`, it maps :math:`x_t = \alpha_t D + \sigma_t\epsilon` to
    :math:`\alpha_{t'} D + \sigma_{t'}\epsilon'` (since :math:`\alpha_t\sigma_{t'}/\sigma_t = \alpha_{t'}e^{-h}`),
    so every :math:`\eta` samples the same distribution when the network is exact; they differ in how much
    of :math:`x_t` is kept and how much is fresh noise. :math:`\eta = 0` is the ODE step of
    :func:`dpm_solver_step`; :math:`\eta = 1` with :math:`D = \hat x_0` (the first step) is exactly DDPM's
    posterior step from t to t' (DDIM with its own :math:`\eta = 1`). Later steps use the same
    second-order :math:`D` as the ODE solver. The last step, to :math:`\sigma = 0`, returns :math:`\hat x_0`.
    """
    if t_prev < 0:
        return x0
    h, data = multistep_data(schedule, t, t_prev, x0, previous)
    sigma, sigma_prev = schedule.sqrt_one_minus_alpha_bars[t], schedule.sqrt_one_minus_alpha_bars[t_prev]
    return (
        sigma_prev / sigma * torch.exp(-eta * h) * x_t
        - schedule.sqrt_alpha_bars[t_prev] * torch.expm1(-(1 + eta) * h) * data
        + sigma_prev * (-torch.expm1(-2 * eta * h)).sqrt() * noise
    )


def ddim_timesteps(timesteps: int, steps: int) -> list[int]:
    """``steps`` timesteps spread evenly over 0 .. T-1, from the noisiest down (T-1 and 0 always included)."""
    if not 1 <= steps <= timesteps:
        raise ValueError(f"steps must be between 1 and T = {timesteps}, got {steps}")
    if steps == 1:
        return [timesteps - 1]
    picks = torch.linspace(0, timesteps - 1, steps).round().long().unique().tolist()
    return sorted(picks, reverse=True)


def log_snr_timesteps(schedule: NoiseSchedule, steps: int, sigma_max: float = SIGMA_MAX) -> list[int]:
    r"""``steps`` timesteps, noisiest first: T-1, where :math:`x_T` is pure noise, then the other ``steps`` - 1
    spaced evenly in :math:`\lambda_t = -\ln\sigma_t` (half log-SNR) from :math:`\sigma_\text{max}` down to
    the least noisy step, t = 0.

    DPM-Solver's error depends on the step size :math:`h` in :math:`\lambda`, so even spacing in
    :math:`\lambda` (Lu et al. 2022, "logSNR" spacing) spreads the error evenly where the image forms.
    It starts at :math:`\sigma_\text{max}` rather than at :math:`\sigma_{T-1}`: the cosine schedule's last
    steps reach :math:`\sigma \approx 20{,}000`, and spacing over that whole range put 10 of 25 steps above
    :math:`\sigma = 70`, where :math:`x_t` is noise whatever the image and the network was hardly trained
    (see ``benchmarks/sampler_spacing.py``). Each target goes to the nearest t, nudged so that all
    ``steps`` timesteps stay distinct.
    """
    T = schedule.timesteps
    if not 1 <= steps <= T:
        raise ValueError(f"steps must be between 1 and T = {T}, got {steps}")
    lam = schedule.half_log_snr.double().cpu()
    start = max(float(lam[-1]), -math.log(sigma_max)) if steps > 2 else float(lam[0])
    times = [T - 1]
    for i, target in enumerate(torch.linspace(start, float(lam[0]), steps - 1).tolist(), start=1):
        t = min(int((lam - target).abs().argmin()), times[-1] - 1)
        times.append(max(t, steps - 1 - i))
    return times


def sampler_timesteps(schedule: NoiseSchedule, sampler: str, steps: int | None = None) -> list[int]:
    """The timesteps ``sampler`` visits, noisiest first: all T for ddpm, ``steps`` (or its default) otherwise."""
    T = schedule.timesteps
    if sampler not in SAMPLERS:
        raise ValueError(f"unknown sampler {sampler!r}; choose one of {', '.join(SAMPLERS)}")
    if steps is not None and steps > T:
        raise ValueError(f"steps {steps} is more than the model's T = {T}")
    if sampler == "ddpm":
        if steps not in (None, T):
            raise ValueError(f"the ddpm sampler always runs all T = {T} steps; use --sampler ddim or dpm++ for fewer")
        return list(range(T - 1, -1, -1))
    if sampler == "ddim":
        return ddim_timesteps(T, steps or min(DEFAULT_STEPS[sampler], T))
    return log_snr_timesteps(schedule, steps or min(DEFAULT_STEPS[sampler], T))


def resolve_eta(sampler: str, eta: float | None) -> float | None:
    """The fresh-noise strength ``sampler`` runs with: ``eta``, or the sampler's :data:`DEFAULT_ETA` for None;
    None for the samplers without the setting (ddpm, dpm++). ``ValueError`` for a negative ``eta``, or one
    given to a sampler without the setting."""
    if eta is None:
        return DEFAULT_ETA.get(sampler)
    if sampler not in DEFAULT_ETA:
        raise ValueError(f"eta applies to {' and '.join(DEFAULT_ETA)} only, not to {sampler}")
    if eta < 0:
        raise ValueError(f"eta must be 0 or more, got {eta:g}")
    return eta


def sample(
    model: NoisePredictor,
    schedule: NoiseSchedule,
    x_T: torch.Tensor,
    sampler: str = "ddpm",
    steps: int | None = None,
    eta: float | None = None,
    generator: torch.Generator | None = None,
    clip: bool = True,
    times: list[int] | None = None,
) -> Iterator[SamplerStep]:
    r"""Denoise ``x_T`` step by step: an iterator that yields every step.

    ``sampler="ddpm"`` runs all T ancestral steps (``steps`` must be None or T); ``"ddim"`` runs ``steps``
    steps (default 50); ``"dpm++"`` runs ``steps`` DPM-Solver++(2M) steps (default 20); ``"dpm++sde"``
    runs ``steps`` DPM-Solver++(2M) SDE steps (default in ``DEFAULT_STEPS``). ``eta`` is the fresh noise
    of ddim and dpm++sde (None: :data:`DEFAULT_ETA`). Every step costs one call of ``model``.
    ``generator`` makes the fresh noise :math:`z` of the stochastic samplers reproducible; ``clip`` keeps
    :math:`\hat x_0` in the data range [-1, 1]. ``times`` (distinct timesteps, noisiest first) replaces the
    sampler's own placement of its steps (:func:`sampler_timesteps`), for experiments with it. A bad
    sampler, step count, ``eta`` or ``times`` raises ``ValueError`` here, before any step runs.
    """
    if times is None:
        times = sampler_timesteps(schedule, sampler, steps)
    elif sampler == "ddpm" or not _descending_steps(times, schedule.timesteps):
        raise ValueError("times must be distinct timesteps below T, noisiest first (and not for ddpm)")
    return _denoise(model, schedule, x_T, sampler, times, resolve_eta(sampler, eta), generator, clip)


def _descending_steps(times: list[int], T: int) -> bool:
    """Whether ``times`` are distinct timesteps in 0 .. T-1, noisiest first."""
    return bool(times) and times == sorted(set(times), reverse=True) and 0 <= times[-1] and times[0] < T


# no_grad rather than inference_mode: under inference_mode autocast casts every weight to bf16 again at
# every call, while under no_grad it keeps those casts for as long as the caller's autocast block lasts,
# which made DDPM's steps up to 1.2x faster on the CPU (docs/phase3-speed.md).
@torch.no_grad()
def _denoise(
    model: NoisePredictor,
    schedule: NoiseSchedule,
    x_T: torch.Tensor,
    sampler: str,
    times: list[int],
    eta: float | None,
    generator: torch.Generator | None,
    clip: bool,
) -> Iterator[SamplerStep]:
    x = x_T
    previous: tuple[int, torch.Tensor] | None = None
    for i, t in enumerate(times):
        jobs.tick()  # between steps: take this job's share of the cores, as jobs come and go
        t_prev = times[i + 1] if i + 1 < len(times) else -1
        tt = torch.full((x.shape[0],), t, device=x.device, dtype=torch.long)
        eps = model(x, tt).float()
        if sampler in ("dpm++", "dpm++sde"):
            x0 = schedule.predict_x0(x, tt, eps)
            if clip:
                x0 = x0.clamp(-1.0, 1.0)
            if sampler == "dpm++":
                x_next = dpm_solver_step(schedule, x, t, t_prev, x0, previous)
            else:
                noise = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
                x_next = dpm_solver_sde_step(schedule, x, t, t_prev, x0, noise, previous, eta)
            x, previous = x_next, (t, x0)
        else:
            noise = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
            if sampler == "ddpm":
                x, x0 = ddpm_step(schedule, x, t, eps, noise, clip)
            else:
                x, x0 = ddim_step(schedule, x, t, t_prev, eps, noise, eta, clip)
        yield SamplerStep(index=i, total=len(times), t=t, x=x, x0_pred=x0)


def last_step(steps: Iterator[SamplerStep]) -> SamplerStep:
    """Run a sampler to the end and return its last step (which holds the finished images)."""
    for step in steps:  # noqa: B007 - the loop is the run; its last value is the result
        pass
    return step


def guided(model: Callable[..., torch.Tensor], labels: torch.Tensor, scale: float, null_class: int) -> NoisePredictor:
    r"""Classifier-free guidance (Ho and Salimans 2022) as a noise predictor for the samplers.

    .. math::  \tilde\epsilon = \epsilon_\theta(x_t, \varnothing)
               + w\,\big(\epsilon_\theta(x_t, y) - \epsilon_\theta(x_t, \varnothing)\big)

    ``model(x, t, y)`` is a network trained with labels sometimes replaced by ``null_class``
    (:math:`\varnothing`). ``w = 0`` ignores the label (unconditional samples), ``w = 1`` is the plain
    conditional model, and ``w > 1`` pushes further towards what makes the image look like class y:
    sharper, more typical digits, less variety, and artefacts when w is very large. The two predictions
    come from one batched call (a single call when w is 0 or 1).
    """
    if labels.is_floating_point():  # weights over the classes (see core.unet.UNet.forward): the null one-hot
        null = torch.nn.functional.one_hot(torch.full(labels.shape[:1], null_class), labels.shape[1]).to(labels)
    else:
        null = torch.full_like(labels, null_class)
    if scale == 0:
        return lambda x, t: model(x, t, null)
    if scale == 1:
        return lambda x, t: model(x, t, labels)

    def predict(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        eps_cond, eps_uncond = model(torch.cat([x, x]), torch.cat([t, t]), torch.cat([labels, null])).chunk(2)
        return eps_uncond + scale * (eps_cond - eps_uncond)

    return predict


def autoguided(
    good: NoisePredictor, bad: NoisePredictor, scale: float, guided: torch.Tensor | None = None
) -> NoisePredictor:
    r"""Autoguidance (Karras et al. 2024): guide a model with a worse version of itself.

    .. math::  \tilde\epsilon = \epsilon_\text{bad}(x_t, t) + w\,\big(\epsilon_\text{good}(x_t, t)
               - \epsilon_\text{bad}(x_t, t)\big)

    Like classifier-free guidance, but the direction is "what the better model knows that the worse one
    does not" instead of "towards the label", so it needs no labels. ``bad`` is here an early snapshot
    of the same run's EMA weights, whose errors are a cruder version of the final model's: w > 1
    extrapolates away from them. w = 1 is the good model alone (one call per step); otherwise two calls.
    ``guided`` (one flag per timestep, see :func:`guidance_interval`) limits the guidance to the flagged
    steps; the others are the good model alone, one call.
    """
    if scale == 1:
        return good

    def predict(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        eps_good = good(x, t)
        here = None if guided is None else guided[t]
        if here is not None and not bool(here.any()):
            return eps_good
        eps_bad = bad(x, t)
        eps = eps_bad + scale * (eps_good - eps_bad)
        return eps if here is None else torch.where(here.reshape(-1, *[1] * (x.dim() - 1)), eps, eps_good)

    return predict


def guidance_interval(
    schedule: NoiseSchedule, sigma_min: float = GUIDANCE_SIGMA_MIN, sigma_max: float = GUIDANCE_SIGMA_MAX
) -> torch.Tensor:
    r"""Which timesteps autoguidance acts on: those whose noise level is in :math:`\sigma_\min < \sigma_t <
    \sigma_\max` (0 and ``math.inf`` leave that end open).

    A limited guidance interval (Kynkaanniemi et al. 2024). Below it, where only the strokes are finished,
    extrapolating two models' differences mostly narrows the variety. Above it the digit's class is
    chosen: guided samples follow roughly :math:`p_\text{final}^w / p_\text{guide}^{w-1}`, so the class
    shares are multiplied by :math:`(p_\text{final}(c) / p_\text{guide}(c))^{w-1}`, and each run's early
    snapshot prefers different classes. The band between keeps the gain where the shape forms (see
    ``benchmarks/sampler_spacing.py`` and ``benchmarks/guide_class_balance.py``).
    """
    sigmas = schedule.log_sigmas().exp()
    return (sigmas > sigma_min) & (sigmas < sigma_max)


def guided_calls(guided: torch.Tensor | None, times: list[int]) -> int:
    """Network calls to visit ``times`` autoguided where ``guided`` flags them (all of them for None)."""
    return len(times) + (len(times) if guided is None else int(guided[times].sum()))
