r"""Noise schedules and the forward (noising) process of DDPM.

Ho et al. 2020, "Denoising Diffusion Probabilistic Models", fix a variance schedule
:math:`\beta_1, \dots, \beta_T` and define the forward process

.. math::  q(x_t \mid x_{t-1}) = \mathcal N\big(\sqrt{1-\beta_t}\, x_{t-1},\ \beta_t I\big).

With :math:`\alpha_t = 1 - \beta_t` and :math:`\bar\alpha_t = \prod_{s \le t} \alpha_s` it has the
closed form (their eq. 4)

.. math::  q(x_t \mid x_0) = \mathcal N\big(\sqrt{\bar\alpha_t}\, x_0,\ (1 - \bar\alpha_t) I\big),

so a noisy image at any step is one multiply-add away: :math:`x_t = \sqrt{\bar\alpha_t}\,x_0 +
\sqrt{1-\bar\alpha_t}\,\epsilon`. Timesteps are 0-based here: index ``t`` in ``0 .. T-1`` is the paper's
step ``t + 1``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch

ScheduleName = Literal["linear", "cosine"]
SCHEDULES: tuple[str, ...] = ("linear", "cosine")


def linear_betas(timesteps: int) -> torch.Tensor:
    r"""Ho et al.'s linear schedule: :math:`\beta` from 1e-4 to 0.02 at T = 1000.

    For other T both ends are scaled by 1000/T, so the total amount of noise added stays comparable
    (the scaling used by Nichol and Dhariwal's and Hugging Face's implementations).
    """
    scale = 1000.0 / timesteps
    return torch.linspace(scale * 1e-4, min(scale * 0.02, 0.999), timesteps, dtype=torch.float64)


def cosine_betas(timesteps: int, s: float = 0.008, max_beta: float = 0.999) -> torch.Tensor:
    r"""Nichol and Dhariwal 2021's cosine schedule (their eq. 17).

    :math:`\bar\alpha_t = f(t)/f(0)` with :math:`f(t) = \cos^2\!\big(\frac{t/T + s}{1 + s}\cdot\frac{\pi}{2}\big)`,
    and :math:`\beta_t = 1 - \bar\alpha_t / \bar\alpha_{t-1}` clipped at 0.999 to avoid a singularity at t = T.
    """
    steps = torch.arange(timesteps + 1, dtype=torch.float64) / timesteps
    f = torch.cos((steps + s) / (1 + s) * math.pi / 2) ** 2
    alpha_bar = f / f[0]
    return (1 - alpha_bar[1:] / alpha_bar[:-1]).clamp(max=max_beta)


@dataclass(frozen=True)
class NoiseSchedule:
    r"""Every per-timestep quantity of DDPM, computed once in float64 and stored as float32.

    Attributes (all shape ``(T,)``):
        betas: :math:`\beta_t`.
        alphas: :math:`\alpha_t = 1 - \beta_t`.
        alpha_bars: :math:`\bar\alpha_t = \prod_{s\le t}\alpha_s`.
        alpha_bars_prev: :math:`\bar\alpha_{t-1}`, with :math:`\bar\alpha_{-1} = 1`.
        sqrt_alpha_bars: the signal scale :math:`\sqrt{\bar\alpha_t}`.
        sqrt_one_minus_alpha_bars: the noise scale :math:`\sqrt{1-\bar\alpha_t}`.
        half_log_snr: :math:`\lambda_t = \log(\sqrt{\bar\alpha_t}/\sqrt{1-\bar\alpha_t})`, DPM-Solver's time variable.
        posterior_variance: :math:`\tilde\beta_t = \frac{1-\bar\alpha_{t-1}}{1-\bar\alpha_t}\beta_t` (eq. 7).
        posterior_mean_coef_x0: :math:`\frac{\sqrt{\bar\alpha_{t-1}}\,\beta_t}{1-\bar\alpha_t}` (eq. 7).
        posterior_mean_coef_xt: :math:`\frac{\sqrt{\alpha_t}\,(1-\bar\alpha_{t-1})}{1-\bar\alpha_t}` (eq. 7).
    """

    name: str
    betas: torch.Tensor
    alphas: torch.Tensor
    alpha_bars: torch.Tensor
    alpha_bars_prev: torch.Tensor
    sqrt_alpha_bars: torch.Tensor
    sqrt_one_minus_alpha_bars: torch.Tensor
    half_log_snr: torch.Tensor
    posterior_variance: torch.Tensor
    posterior_mean_coef_x0: torch.Tensor
    posterior_mean_coef_xt: torch.Tensor

    @classmethod
    def create(cls, name: str = "linear", timesteps: int = 1000) -> NoiseSchedule:
        """Build the schedule ``name`` ("linear" or "cosine") with ``timesteps`` steps (T >= 2)."""
        if timesteps < 2:
            raise ValueError(f"timesteps must be at least 2, got {timesteps}")
        if name == "linear":
            betas = linear_betas(timesteps)
        elif name == "cosine":
            betas = cosine_betas(timesteps)
        else:
            raise ValueError(f"unknown schedule {name!r}; choose one of {', '.join(SCHEDULES)}")
        alphas = 1.0 - betas
        alpha_bars = torch.cumprod(alphas, dim=0)
        alpha_bars_prev = torch.cat([torch.ones(1, dtype=torch.float64), alpha_bars[:-1]])
        one_minus = 1.0 - alpha_bars
        values = {
            "betas": betas,
            "alphas": alphas,
            "alpha_bars": alpha_bars,
            "alpha_bars_prev": alpha_bars_prev,
            "sqrt_alpha_bars": alpha_bars.sqrt(),
            "sqrt_one_minus_alpha_bars": one_minus.sqrt(),
            "half_log_snr": 0.5 * (alpha_bars.log() - one_minus.log()),
            "posterior_variance": betas * (1.0 - alpha_bars_prev) / one_minus,
            "posterior_mean_coef_x0": betas * alpha_bars_prev.sqrt() / one_minus,
            "posterior_mean_coef_xt": alphas.sqrt() * (1.0 - alpha_bars_prev) / one_minus,
        }
        return cls(name=name, **{k: v.float() for k, v in values.items()})

    @property
    def timesteps(self) -> int:
        """T, the number of diffusion steps."""
        return len(self.betas)

    def to(self, device: torch.device | str) -> NoiseSchedule:
        """The same schedule with every tensor on ``device``."""
        moved = {k: v.to(device) for k, v in vars(self).items() if isinstance(v, torch.Tensor)}
        return NoiseSchedule(name=self.name, **moved)

    def snr(self) -> torch.Tensor:
        r"""Signal-to-noise ratio :math:`\bar\alpha_t / (1-\bar\alpha_t)` of every step."""
        return self.alpha_bars / (1.0 - self.alpha_bars)

    def log_sigmas(self) -> torch.Tensor:
        r"""The log noise level of every step,
        :math:`\ln\sigma_t = \tfrac12\ln\big((1-\bar\alpha_t)/\bar\alpha_t\big) = -\lambda_t`
        (Karras et al. 2022's :math:`\sigma`: :math:`x_t/\sqrt{\bar\alpha_t} = x_0 + \sigma_t\epsilon`)."""
        return -self.half_log_snr

    def q_sample(self, x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        r"""Draw :math:`x_t \sim q(x_t \mid x_0)`: :math:`\sqrt{\bar\alpha_t}\,x_0 + \sqrt{1-\bar\alpha_t}\,\epsilon`.

        ``t`` holds one timestep per batch element; ``noise`` is :math:`\epsilon \sim \mathcal N(0, I)`.
        """
        return extract(self.sqrt_alpha_bars, t, x0) * x0 + extract(self.sqrt_one_minus_alpha_bars, t, x0) * noise

    def predict_x0(self, x_t: torch.Tensor, t: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
        r"""Invert the forward process given the noise:
        :math:`\hat x_0 = (x_t - \sqrt{1-\bar\alpha_t}\,\hat\epsilon)/\sqrt{\bar\alpha_t}`."""
        return (x_t - extract(self.sqrt_one_minus_alpha_bars, t, x_t) * eps) / extract(self.sqrt_alpha_bars, t, x_t)

    def posterior_mean(self, x0: torch.Tensor, x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        r"""Mean :math:`\tilde\mu_t(x_t, x_0)` of the posterior :math:`q(x_{t-1} \mid x_t, x_0)` (eq. 7)."""
        return extract(self.posterior_mean_coef_x0, t, x_t) * x0 + extract(self.posterior_mean_coef_xt, t, x_t) * x_t


def extract(values: torch.Tensor, t: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """Gather ``values[t]`` per batch element, shaped to broadcast against ``like`` (B, 1, 1, ...)."""
    return values[t].reshape(-1, *([1] * (like.dim() - 1))).to(like.dtype)


def display_timesteps(timesteps: int) -> list[int]:
    """The columns the forward-diffusion figure shows: t = 0, 50, 100, 250, 500, 750 and T-1 at T = 1000,
    scaled proportionally for other T (duplicates removed)."""
    fractions = (0.0, 0.05, 0.1, 0.25, 0.5, 0.75)
    picks = [round(f * timesteps) for f in fractions] + [timesteps - 1]
    return sorted({min(p, timesteps - 1) for p in picks})
