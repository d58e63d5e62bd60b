"""Training curves for display: the noisy per-step loss made readable."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def smooth(values: Sequence[float], weight: float = 0.98) -> np.ndarray:
    r"""Bias-corrected exponential moving average, as TensorBoard smooths curves:
    :math:`m_i = w\,m_{i-1} + (1-w)\,v_i`, shown as :math:`m_i / (1 - w^{i+1})` so the start is not pulled to 0."""
    out, avg = np.empty(len(values)), 0.0
    for i, v in enumerate(values):
        avg = weight * avg + (1 - weight) * v
        out[i] = avg / (1 - weight ** (i + 1))
    return out
