r"""The training objective of DDPM.

Ho et al. 2020 show that the variational bound reduces, up to per-step weights they drop, to teaching a
network to predict the noise that was added (their eq. 14):

.. math::  L_\text{simple} = \mathbb E_{t \sim U\{1..T\},\ x_0,\ \epsilon \sim \mathcal N(0,I)}
           \big\| \epsilon - \epsilon_\theta\big(\sqrt{\bar\alpha_t}\,x_0 + \sqrt{1-\bar\alpha_t}\,\epsilon,\ t\big) \big\|^2
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .schedule import NoiseSchedule


def l_simple(model: nn.Module, schedule: NoiseSchedule, x0: torch.Tensor) -> torch.Tensor:
    """One Monte Carlo estimate of :math:`L_\\text{simple}` on the batch ``x0``: a random step and fresh
    noise per image, the mean squared error of the predicted noise (computed in fp32)."""
    t = torch.randint(0, schedule.timesteps, (x0.shape[0],), device=x0.device)
    noise = torch.randn_like(x0)
    x_t = schedule.q_sample(x0, t, noise)
    return F.mse_loss(model(x_t, t).float(), noise)
