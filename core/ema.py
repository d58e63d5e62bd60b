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
        self._followed: nn.Module | None = None  # the model the lists below pair with the average's
        self._pairs: tuple[list[torch.Tensor], ...] = ()

    def decay(self, step: int) -> float:
        r""":math:`d_n = \min(d_{\max}, (1 + n) / (10 + n))` after ``n`` optimiser steps."""
        return min(self.max_decay, (1 + step) / (10 + step))

    @torch.no_grad()
    def update(self, model: nn.Module, step: int) -> None:
        r"""Move every EMA weight towards the model's:
        :math:`\theta_{\text{EMA}} \mathrel{+}= (1-d_n)(\theta - \theta_{\text{EMA}})`."""
        ema_params, params, ema_buffers, buffers = self._paired(model)
        torch._foreach_lerp_(ema_params, params, 1.0 - self.decay(step))
        if buffers:
            torch._foreach_copy_(ema_buffers, buffers)

    def _paired(self, model: nn.Module) -> tuple[list[torch.Tensor], ...]:
        """The average's parameters and ``model``'s, then their buffers, listed once per model followed: walking
        the modules for them took about a third of an update. A model's parameters stay the same objects when
        it changes device, dtype or memory order or loads a state (their data change in place), so the lists
        hold."""
        if self._followed is not model:
            self._followed = model
            self._pairs = tuple(list(m.parameters()) for m in (self.model, model))
            self._pairs += tuple(list(m.buffers()) for m in (self.model, model))
        return self._pairs

    def state_dict(self) -> dict[str, torch.Tensor]:
        return self.model.state_dict()

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        self.model.load_state_dict(state)
