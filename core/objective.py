r"""The training objective of DDPM.

Ho et al. 2020 show that the variational bound reduces, up to per-step weights they drop, to teaching a
network to predict the noise that was added (their eq. 14):

.. math::  L_\text{simple} = \mathbb E_{t \sim U\{1..T\},\ x_0,\ \epsilon \sim \mathcal N(0,I)}
           \big\| \epsilon - \epsilon_\theta\big(\sqrt{\bar\alpha_t}\,x_0 + \sqrt{1-\bar\alpha_t}\,\epsilon,\ t\big) \big\|^2

For classifier-free guidance (Ho and Salimans 2022) a class-conditional network sees its label y, but
with probability ``p_uncond`` the label is replaced by the null class, so the same network also learns
the unconditional :math:`\epsilon_\theta(x_t, t, \varnothing)`.

Min-SNR-:math:`\gamma` weighting (Hang et al. 2023) multiplies each example's error by
:math:`\min(\mathrm{SNR}_t, \gamma)/\mathrm{SNR}_t` with :math:`\mathrm{SNR}_t = \bar\alpha_t/(1-\bar\alpha_t)`:
nearly clean inputs (high SNR), whose noise is easy to see and matters little for the image, count less.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .schedule import NoiseSchedule


P_UNCOND = 0.1


def l_simple(model: nn.Module, schedule: NoiseSchedule, x0: torch.Tensor, labels: torch.Tensor | None = None,
             p_uncond: float = P_UNCOND, min_snr_gamma: float = 0.0) -> torch.Tensor:
    r"""One Monte Carlo estimate of :math:`L_\text{simple}` on the batch ``x0``: a random step and fresh
    noise per image, the mean squared error of the predicted noise (computed in fp32).

    With ``labels`` (for a class-conditional ``model``) each label is dropped to the null class
    ``model.null_class`` with probability ``p_uncond``. A positive ``min_snr_gamma`` weights each
    example by :math:`\min(\mathrm{SNR}_t, \gamma)/\mathrm{SNR}_t`."""
    t = torch.randint(0, schedule.timesteps, (x0.shape[0],), device=x0.device)
    noise = torch.randn_like(x0)
    x_t = schedule.q_sample(x0, t, noise)
    if labels is None:
        prediction = model(x_t, t)
    else:
        dropped = torch.rand(labels.shape, device=labels.device) < p_uncond
        labels = torch.where(dropped, torch.full_like(labels, model.null_class), labels)
        prediction = model(x_t, t, labels)
    if min_snr_gamma <= 0:
        return F.mse_loss(prediction.float(), noise)
    snr = schedule.snr()[t]
    weight = snr.clamp(max=min_snr_gamma) / snr
    return (weight * (prediction.float() - noise).pow(2).flatten(1).mean(1)).mean()
