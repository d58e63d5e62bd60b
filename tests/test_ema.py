"""The weights' moving average: its warm-up, its cap, and the average it amounts to in a short run."""

import math

import pytest
import torch

from core.ema import EMA


def test_the_warm_up_reaches_the_cap_only_after_8990_steps():
    ema = EMA(torch.nn.Linear(1, 1), max_decay=0.999)
    assert ema.decay(0) == pytest.approx(0.1) and ema.decay(90) == pytest.approx(0.91)
    assert ema.decay(4710) < 0.9982  # the default run (4,710 steps) never comes near 0.999
    assert ema.decay(8989) < 0.999 == ema.decay(8990) == ema.decay(20000)


def test_in_the_warm_up_the_ema_is_a_power_function_average_of_the_weights():
    """Unrolled, d_n = (1 + n)/(10 + n) gives weight step j's weights the share
    9 (j + 2)(j + 3)...(j + 9) / ((N + 2)(N + 3)...(N + 10)) of the average after step N: about (j/N)^8 / N,
    so its centre of mass lies (gamma + 1)/(gamma + 2) = 90% of the way through the run."""
    model = torch.nn.Linear(1, 1, bias=False)
    ema = EMA(model, max_decay=0.999)
    steps = 400
    for n in range(steps + 1):
        model.weight.data.fill_(float(n))  # the weights at step n are n
        ema.update(model, n)

    def share(j: int) -> float:
        return 9 * math.prod(j + i for i in range(2, 10)) / math.prod(steps + i for i in range(2, 11))

    shares = [share(j) for j in range(steps + 1)]
    assert sum(shares) == pytest.approx(1.0, abs=1e-6)  # the initial weights' share is negligible
    expected = sum(j * s for j, s in enumerate(shares))
    assert ema.model.weight.item() == pytest.approx(expected, rel=1e-5)
    assert expected / steps == pytest.approx(0.9, abs=0.01)


def test_the_average_follows_the_model_it_is_given_and_its_buffers():
    """The update lists each model's parameters once: a second model is followed from its first update, a
    model's own parameters after a change of memory order and a loaded state, and buffers are copied."""

    def network(weight: float) -> torch.nn.Module:
        model = torch.nn.Sequential(torch.nn.Conv2d(2, 2, 3, bias=False), torch.nn.BatchNorm2d(2))
        with torch.no_grad():
            model[0].weight.fill_(weight)
            model[1].running_mean.fill_(weight)
        return model

    first, second = network(1.0), network(3.0)
    ema = EMA(first, max_decay=0.5)
    ema.update(first, 100)  # d = 0.5: the average's kernel and first's are 1
    ema.update(second, 100)  # towards 3: 2
    assert torch.equal(ema.model[0].weight, torch.full_like(ema.model[0].weight, 2.0))
    assert torch.equal(ema.model[1].running_mean, torch.full((2,), 3.0))  # buffers are copied, not averaged
    second.to(memory_format=torch.channels_last)
    assert second[0].weight.is_contiguous(memory_format=torch.channels_last)
    second.load_state_dict({**second.state_dict(), "0.weight": torch.full((2, 2, 3, 3), 6.0)})
    ema.update(second, 100)  # towards 6: 4
    assert torch.equal(ema.model[0].weight, torch.full_like(ema.model[0].weight, 4.0))
