r"""Exponential moving average (EMA) of model weights.

Samples come from :math:`\theta_{\text{EMA}} \leftarrow d\,\theta_{\text{EMA}} + (1-d)\,\theta`, which averages
out the noise of the last optimiser steps (Ho et al. 2020 use d = 0.9999). A fixed high decay would keep
the random initial weights for thousands of steps, so early-epoch samples would be pure noise; the
warm-up :math:`d_n = \min\big(d_{\max}, \frac{1 + n}{10 + n}\big)` lets the average follow the model
closely at first and settle to :math:`d_{\max}` later. It reaches 0.999 only after 8,990 steps, so a
shorter run stays in the warm-up, where the average unrolls into a power-function average (Karras et
al. 2024, with :math:`\gamma = 8`): after N steps, step j's weights count with the share
:math:`9\,(j+2)\cdots(j+9) / \big((N+2)\cdots(N+10)\big) \approx 9\,(j/N)^8 / N`, whose centre of mass is
90% of the way through the run.
"""

from __future__ import annotations

import copy

import torch
from torch import nn


class EMA:
    """A frozen copy of ``model`` whose weights track the model's by an exponential moving average."""

    def __init__(self, model: nn.Module, max_decay: float = 0.999) -> None:
        self.max_decay = max_decay
        self.model = copy.deepcopy(model).eval().requires_grad_(False)

    def decay(self, step: int) -> float:
        r""":math:`d_n = \min(d_{\max}, (1 + n) / (10 + n))` after ``n`` optimiser steps."""
        return min(self.max_decay, (1 + step) / (10 + step))

    @torch.no_grad()
    def update(self, model: nn.Module, step: int) -> None:
        r"""Move every EMA weight towards the model's:
        :math:`\theta_{\text{EMA}} \mathrel{+}= (1-d_n)(\theta - \theta_{\text{EMA}})`."""
        d = self.decay(step)
        ema_params = list(self.model.parameters())
        params = [p.detach() for p in model.parameters()]
        torch._foreach_lerp_(ema_params, params, 1.0 - d)
        for ema_buffer, buffer in zip(self.model.buffers(), model.buffers(), strict=True):
            ema_buffer.copy_(buffer)

    def state_dict(self) -> dict[str, torch.Tensor]:
        return self.model.state_dict()

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        self.model.load_state_dict(state)
