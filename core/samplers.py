r"""Samplers: turn pure noise :math:`x_T \sim \mathcal N(0, I)` into images with a trained :math:`\epsilon_\theta`.

Both samplers are generators that yield a :class:`SamplerStep` after every denoising step, so a command
line can show progress and a screen can draw :math:`x_t` and the predicted :math:`\hat x_0` live. The last
step yielded holds the finished images.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch

from .schedule import NoiseSchedule

SAMPLERS: tuple[str, ...] = ("ddpm", "ddim")

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

    The network's noise estimate gives :math:`\hat x_0 = (x_t - \sqrt{1-\bar\alpha_t}\,\hat\epsilon)/\sqrt{\bar\alpha_t}`;
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
               \qquad \sigma = \eta\sqrt{\tfrac{1-\bar\alpha_{t'}}{1-\bar\alpha_t}}\sqrt{1-\tfrac{\bar\alpha_t}{\bar\alpha_{t'}}}

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


def ddim_timesteps(timesteps: int, steps: int) -> list[int]:
    """``steps`` timesteps spread evenly over 0 .. T-1, from the noisiest down (T-1 and 0 always included)."""
    if not 1 <= steps <= timesteps:
        raise ValueError(f"steps must be between 1 and T = {timesteps}, got {steps}")
    if steps == 1:
        return [timesteps - 1]
    picks = torch.linspace(0, timesteps - 1, steps).round().long().unique().tolist()
    return sorted(picks, reverse=True)


@torch.no_grad()
def sample(
    model: NoisePredictor,
    schedule: NoiseSchedule,
    x_T: torch.Tensor,
    sampler: str = "ddpm",
    steps: int | None = None,
    eta: float = 0.0,
    generator: torch.Generator | None = None,
) -> Iterator[SamplerStep]:
    r"""Denoise ``x_T`` step by step, yielding every step.

    ``sampler="ddpm"`` runs all T ancestral steps (``steps`` must be None or T); ``sampler="ddim"`` runs
    ``steps`` steps (default 50) with stochasticity ``eta``. ``generator`` makes the fresh noise
    :math:`z` of every step reproducible.
    """
    T = schedule.timesteps
    if sampler == "ddpm":
        if steps not in (None, T):
            raise ValueError(f"the ddpm sampler always runs all T = {T} steps; use --sampler ddim for fewer")
        times = list(range(T - 1, -1, -1))
    elif sampler == "ddim":
        times = ddim_timesteps(T, steps or min(50, T))
    else:
        raise ValueError(f"unknown sampler {sampler!r}; choose one of {', '.join(SAMPLERS)}")

    x = x_T
    for i, t in enumerate(times):
        tt = torch.full((x.shape[0],), t, device=x.device, dtype=torch.long)
        eps = model(x, tt).float()
        noise = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
        if sampler == "ddpm":
            x, x0 = ddpm_step(schedule, x, t, eps, noise)
        else:
            t_prev = times[i + 1] if i + 1 < len(times) else -1
            x, x0 = ddim_step(schedule, x, t, t_prev, eps, noise, eta)
        yield SamplerStep(index=i, total=len(times), t=t, x=x, x0_pred=x0)


def generate(model: NoisePredictor, schedule: NoiseSchedule, count: int, image_shape: tuple[int, ...],
             sampler: str = "ddim", steps: int | None = None, seed: int = 0, batch: int = 250,
             device: torch.device | str = "cpu") -> torch.Tensor:
    """``count`` finished images in batches of ``batch`` (for evaluation), on the CPU in [-1, 1]."""
    generator = torch.Generator(device).manual_seed(seed)
    images = []
    for start in range(0, count, batch):
        x_T = torch.randn(min(batch, count - start), *image_shape, generator=generator, device=device)
        for step in sample(model, schedule, x_T, sampler, steps, generator=generator):
            pass
        images.append(step.x.float().clamp(-1, 1).cpu())
    return torch.cat(images)
