r"""The training objective of DDPM, and the choices that shape it.

Ho et al. 2020 show that the variational bound reduces, up to per-step weights they drop, to teaching a
network to predict the noise that was added (their eq. 14):

.. math::  L_\text{simple} = \mathbb E_{t \sim U\{1..T\},\ x_0,\ \epsilon \sim \mathcal N(0,I)}
           \big\| \epsilon - \epsilon_\theta\big(x_t,\ t\big) \big\|^2,
           \qquad x_t = \sqrt{\bar\alpha_t}\,x_0 + \sqrt{1-\bar\alpha_t}\,\epsilon

Three choices change which errors the network is trained hardest on:

* **What the network predicts.** ``"eps"`` is the noise :math:`\epsilon` (Ho et al.). ``"v"`` is the
  velocity :math:`v = \sqrt{\bar\alpha_t}\,\epsilon - \sqrt{1-\bar\alpha_t}\,x_0` (Salimans and Ho 2022).
  Both give the same :math:`\hat x_0` when exact, but their squared errors weigh steps differently:
  :math:`\|\hat v - v\|^2 = \|\hat x_0 - x_0\|^2 / (1-\bar\alpha_t)`, bounded where the image is almost
  pure noise, whereas :math:`\|\hat\epsilon - \epsilon\|^2 = \|\hat x_0 - x_0\|^2\,\mathrm{SNR}_t` tells the
  network almost nothing there, so an :math:`\epsilon` model's early :math:`\hat x_0` guesses are poor.
* **Which steps are drawn.** ``"uniform"`` draws t uniformly (Ho et al.). ``"lognormal"`` draws the
  noise level :math:`\sigma_t = \sqrt{(1-\bar\alpha_t)/\bar\alpha_t}` from a log-normal density,
  :math:`\ln\sigma \sim \mathcal N(\mu, s^2)`, rounded to the nearest step (Karras et al. 2022, EDM, use
  :math:`\mu = -1.2, s = 1.2`): the training budget goes where the image takes shape, not to steps that
  are almost pure noise or almost clean. Where that is depends on the images.
* **Min-SNR-:math:`\gamma` weighting** (Hang et al. 2023) multiplies each example's error by
  :math:`\min(\mathrm{SNR}_t, \gamma)/\mathrm{SNR}_t` (for ``"eps"``) with
  :math:`\mathrm{SNR}_t = \bar\alpha_t/(1-\bar\alpha_t)`: nearly clean inputs count less.

For classifier-free guidance (Ho and Salimans 2022) a class-conditional network sees its label y, but
with probability ``p_uncond`` the label is replaced by the null class, so the same network also learns
the unconditional :math:`\epsilon_\theta(x_t, t, \varnothing)`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from .schedule import NoiseSchedule, extract

P_UNCOND = 0.1
PREDICTIONS: tuple[str, ...] = ("eps", "v")
TIMESTEP_DENSITIES: tuple[str, ...] = ("uniform", "lognormal")
LOGNORMAL_MEAN = -1.2
LOGNORMAL_STD = 1.2


def timestep_probabilities(
    schedule: NoiseSchedule, density: str = "uniform", mean: float = LOGNORMAL_MEAN, std: float = LOGNORMAL_STD
) -> torch.Tensor:
    r"""The probability of drawing each step t (shape (T,), sums to 1) under ``density``.

    ``"lognormal"``: :math:`\ln\sigma \sim \mathcal N(\mu, s^2)` with :math:`\mu` = ``mean`` and :math:`s` =
    ``std`` (EDM's -1.2 and 1.2 unless given), rounded to the step whose :math:`\ln\sigma_t` is nearest, so step t gets
    :math:`\Phi\big(\tfrac{b_{t+1}-\mu}{s}\big) - \Phi\big(\tfrac{b_t-\mu}{s}\big)` with :math:`b_t` the
    midpoints between neighbouring :math:`\ln\sigma_t` (the two end steps take the tails).
    """
    T = schedule.timesteps
    if density == "uniform":
        return torch.full((T,), 1.0 / T, dtype=torch.float64)
    if density != "lognormal":
        raise ValueError(f"unknown timestep density {density!r}; choose one of {', '.join(TIMESTEP_DENSITIES)}")
    log_sigma = schedule.log_sigmas().double().cpu()
    edges = (log_sigma[1:] + log_sigma[:-1]) / 2
    cdf = 0.5 * (1 + torch.erf((edges - mean) / (std * math.sqrt(2))))
    cdf = torch.cat([torch.zeros(1, dtype=torch.float64), cdf, torch.ones(1, dtype=torch.float64)])
    return cdf[1:] - cdf[:-1]


def draw_timesteps(
    count: int, probabilities: torch.Tensor | None, timesteps: int, device: torch.device | str
) -> torch.Tensor:
    """``count`` steps drawn independently: uniformly when ``probabilities`` is None, otherwise from them."""
    if probabilities is None:
        return torch.randint(0, timesteps, (count,), device=device)
    return torch.multinomial(probabilities, count, replacement=True)


def v_target(schedule: NoiseSchedule, x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
    r"""The velocity :math:`v = \sqrt{\bar\alpha_t}\,\epsilon - \sqrt{1-\bar\alpha_t}\,x_0`."""
    return extract(schedule.sqrt_alpha_bars, t, x0) * noise - extract(schedule.sqrt_one_minus_alpha_bars, t, x0) * x0


@dataclass(frozen=True)
class LossDraw:
    r"""The randomness of one Monte Carlo estimate of the loss, one row per image: the step t, the noise
    :math:`\epsilon` and, for a class-conditional model, whether the label is dropped to the null class.

    Drawn once for a whole batch, so that processes which each train on a slice of the batch (see
    :mod:`core.distributed`) use exactly the draws one process would have used."""

    t: torch.Tensor
    noise: torch.Tensor
    dropped: torch.Tensor | None

    def rows(self, rows: slice) -> LossDraw:
        return LossDraw(self.t[rows], self.noise[rows], None if self.dropped is None else self.dropped[rows])


def draw_loss(
    x0: torch.Tensor,
    labels: torch.Tensor | None,
    timesteps: int,
    t_probabilities: torch.Tensor | None = None,
    p_uncond: float = P_UNCOND,
) -> LossDraw:
    """A step per image (uniform, or from ``t_probabilities``), fresh noise shaped like ``x0`` and, with
    ``labels``, a label dropout with probability ``p_uncond``."""
    t = draw_timesteps(x0.shape[0], t_probabilities, timesteps, x0.device)
    noise = torch.randn_like(x0)
    dropped = None if labels is None else torch.rand(labels.shape, device=labels.device) < p_uncond
    return LossDraw(t, noise, dropped)


def example_losses(
    model: nn.Module,
    schedule: NoiseSchedule,
    x0: torch.Tensor,
    labels: torch.Tensor | None,
    draw: LossDraw,
    min_snr_gamma: float = 0.0,
    prediction: str = "eps",
) -> torch.Tensor:
    r"""Each image's squared error (mean over its pixels, in fp32) of the network's ``prediction`` (``"eps"``
    or ``"v"``) on :math:`x_t = \sqrt{\bar\alpha_t}x_0 + \sqrt{1-\bar\alpha_t}\epsilon` with ``draw``'s t
    and noise; shape (N,).

    With ``labels`` (for a class-conditional ``model``) the drawn labels become the null class
    ``model.null_class``. A positive ``min_snr_gamma`` weights each example by
    :math:`\min(\mathrm{SNR}_t, \gamma)/\mathrm{SNR}_t`, or for ``"v"`` by
    :math:`\min(\mathrm{SNR}_t, \gamma)/(\mathrm{SNR}_t + 1)` (the same weight on :math:`\hat x_0`'s error)."""
    t = draw.t
    x_t = schedule.q_sample(x0, t, draw.noise)
    if labels is None:
        prediction_out = model(x_t, t)
    else:
        labels = torch.where(draw.dropped, torch.full_like(labels, model.null_class), labels)
        prediction_out = model(x_t, t, labels)
    target = draw.noise if prediction == "eps" else v_target(schedule, x0, t, draw.noise)
    error = (prediction_out.float() - target).pow(2).flatten(1).mean(1)
    if min_snr_gamma <= 0:
        return error
    snr = schedule.snr()[t]
    return snr.clamp(max=min_snr_gamma) / (snr if prediction == "eps" else snr + 1) * error


def l_simple(
    model: nn.Module,
    schedule: NoiseSchedule,
    x0: torch.Tensor,
    labels: torch.Tensor | None = None,
    p_uncond: float = P_UNCOND,
    min_snr_gamma: float = 0.0,
    prediction: str = "eps",
    t_probabilities: torch.Tensor | None = None,
) -> torch.Tensor:
    """One Monte Carlo estimate of the loss on the batch ``x0``: the mean of :func:`example_losses` over a
    fresh :func:`draw_loss`."""
    draw = draw_loss(x0, labels, schedule.timesteps, t_probabilities, p_uncond)
    return example_losses(model, schedule, x0, labels, draw, min_snr_gamma, prediction).mean()


class NoiseFromVelocity(nn.Module):
    r"""Wraps a network trained to predict :math:`v` so that it predicts :math:`\epsilon`, as the samplers expect:
    :math:`\hat\epsilon = \sqrt{1-\bar\alpha_t}\,x_t + \sqrt{\bar\alpha_t}\,\hat v` (from
    :math:`x_t = \sqrt{\bar\alpha_t}x_0 + \sqrt{1-\bar\alpha_t}\epsilon` and the definition of v)."""

    def __init__(self, network: nn.Module, schedule: NoiseSchedule) -> None:
        super().__init__()
        self.network = network
        self.schedule = schedule

    @property
    def num_classes(self) -> int:
        return self.network.num_classes

    @property
    def null_class(self) -> int:
        return self.network.null_class

    def forward(self, x: torch.Tensor, t: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        v = self.network(x, t) if y is None else self.network(x, t, y)
        s = self.schedule
        return extract(s.sqrt_one_minus_alpha_bars, t, x) * x + extract(s.sqrt_alpha_bars, t, x) * v.float()


def noise_predictor(network: nn.Module, schedule: NoiseSchedule, prediction: str) -> nn.Module:
    """The network as an :math:`\\epsilon` predictor: itself for ``"eps"``, wrapped for ``"v"``."""
    if prediction not in PREDICTIONS:
        raise ValueError(f"unknown prediction {prediction!r}; choose one of {', '.join(PREDICTIONS)}")
    return network if prediction == "eps" else NoiseFromVelocity(network, schedule)
