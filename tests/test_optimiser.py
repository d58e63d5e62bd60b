"""Muon: its orthogonalised step, the size of that step, and which parameters it takes from AdamW."""

from __future__ import annotations

import math

import pytest
import torch

from core import UNet
from core.optimiser import (
    NEWTON_SCHULZ,
    NEWTON_SCHULZ_STEPS,
    Muon,
    make_optimisers,
    match_state_layouts,
    orthogonalise,
    split_parameters,
)


def _svd_polar(m: torch.Tensor) -> torch.Tensor:
    """U V^T of M = U S V^T, exactly."""
    u, _, vh = torch.linalg.svd(m, full_matrices=False)
    return u @ vh


@pytest.mark.parametrize("shape", [(16, 40), (40, 16), (3, 24, 24)])
def test_newton_schulz_sets_every_singular_value_near_one_and_keeps_the_singular_vectors(shape):
    torch.manual_seed(0)
    u, _ = torch.linalg.qr(torch.randn(*shape[:-2], shape[-2], shape[-2], dtype=torch.float64))
    v, _ = torch.linalg.qr(torch.randn(*shape[:-2], shape[-1], shape[-1], dtype=torch.float64))
    k = min(shape[-2:])
    spread = torch.logspace(-1, 1, k, dtype=torch.float64)  # singular values from 0.1 to 10: a hundredfold range
    m = u[..., :k] @ torch.diag_embed(spread.expand(*shape[:-2], k)) @ v[..., :k].mT
    x = orthogonalise(m)
    singular = torch.linalg.svdvals(x)
    assert singular.min() > 0.6 and singular.max() < 1.25  # all about 1: every direction moves alike
    # the same singular vectors as M: x = U diag(s') V^T, so U^T x V is diagonal
    inner = u[..., :k].mT @ x @ v[..., :k]
    off_diagonal = inner - torch.diag_embed(torch.diagonal(inner, dim1=-2, dim2=-1))
    assert off_diagonal.abs().max() < 1e-9
    cosine = (x * _svd_polar(m)).sum() / (x.norm() * _svd_polar(m).norm())
    assert cosine > 0.98


@pytest.mark.parametrize("shape", [(64, 576), (192, 64), (2, 32, 40)])
def test_the_gram_space_iteration_is_newton_schulz_on_the_full_matrix(shape):
    torch.manual_seed(0)
    m = torch.randn(shape, dtype=torch.float64) * torch.logspace(-3, 0, shape[-1], dtype=torch.float64)
    a, b, c = NEWTON_SCHULZ
    x = m / m.norm(dim=(-2, -1), keepdim=True)
    for _ in range(NEWTON_SCHULZ_STEPS):  # X_{k+1} = a X_k + (b A_k + c A_k^2) X_k, A_k = X_k X_k^T, on either side
        gram = x @ x.mT
        x = a * x + (b * gram + c * gram @ gram) @ x
    torch.testing.assert_close(orthogonalise(m), x, rtol=1e-9, atol=1e-9)


def test_a_rank_one_gradient_steps_along_itself():
    torch.manual_seed(0)
    u, v = torch.randn(8, dtype=torch.float64), torch.randn(36, dtype=torch.float64)
    x = orthogonalise(torch.outer(u, v))
    expected = torch.outer(u, v) / (u.norm() * v.norm())
    assert torch.allclose(x / x.norm(), expected, atol=1e-10)


def test_muon_moves_a_kernel_by_update_rms_times_lr_with_momentum():
    conv = torch.nn.Conv2d(16, 32, 3)
    before = conv.weight.detach().clone()
    muon = Muon([conv.weight], lr=0.01, momentum=0.9, update_rms=0.4)
    torch.manual_seed(0)
    gradient = torch.randn_like(conv.weight)
    conv.weight.grad = gradient.clone()
    muon.step()
    step = before - conv.weight.detach()
    rms = step.pow(2).mean().sqrt().item()
    assert rms == pytest.approx(0.4 * 0.01, rel=0.25)
    # the first step follows G + mu B = 1.9 G: the orthogonalised gradient itself, flattened to (32, 144)
    expected = orthogonalise(1.9 * gradient.reshape(32, -1)).reshape_as(step)
    assert torch.allclose(step, 0.01 * 0.4 * math.sqrt(144) * expected, atol=1e-6)
    assert torch.equal(muon.state[conv.weight]["momentum_buffer"], gradient)


@pytest.mark.parametrize("memory_format", [torch.channels_last, torch.contiguous_format])
@pytest.mark.parametrize("shape", [(32, 16, 3, 3), (64, 32, 1, 1), (16, 64, 1, 1), (8, 4)])
def test_muon_steps_a_kernel_in_either_memory_order_along_its_orthogonalised_gradient(shape, memory_format):
    torch.manual_seed(0)
    weight = torch.randn(shape)
    parameter = torch.nn.Parameter(weight.clone(memory_format=memory_format) if len(shape) == 4 else weight.clone())
    gradient = torch.randn(shape)
    parameter.grad = gradient.contiguous(memory_format=memory_format) if len(shape) == 4 else gradient
    Muon([parameter], lr=0.01, momentum=0.9, update_rms=0.4).step()
    rows, cols = shape[0], math.prod(shape[1:])
    expected = orthogonalise(1.9 * gradient.reshape(rows, cols)).reshape(shape)  # the first step: G + mu B = 1.9 G
    torch.testing.assert_close(weight - parameter.detach(), 0.01 * 0.4 * math.sqrt(max(rows, cols)) * expected)


def test_muon_steps_each_of_many_parameters_along_its_own_orthogonalised_gradient():
    """Parameters of several shapes share one optimiser (batches of one and of two, wide and tall, both memory
    orders): each moves along its own gradient's orthogonalisation, so no parameter reads another's slice."""
    torch.manual_seed(0)
    shapes = [(32, 16, 3, 3), (8, 4), (32, 16, 3, 3), (64, 32, 1, 1), (4, 8)]
    weights = [torch.randn(shape) for shape in shapes]
    layouts = [torch.channels_last, None, torch.contiguous_format, torch.channels_last, None]
    params = [
        torch.nn.Parameter(w.clone(memory_format=layout) if layout else w.clone())
        for w, layout in zip(weights, layouts, strict=True)
    ]
    gradients = [torch.randn(shape) for shape in shapes]
    for p, g in zip(params, gradients, strict=True):
        p.grad = g.clone()
    Muon(params, lr=0.01, momentum=0.9, update_rms=0.4).step()
    for w, p, g in zip(weights, params, gradients, strict=True):
        rows, cols = g.shape[0], math.prod(g.shape[1:])
        expected = orthogonalise(1.9 * g.reshape(rows, cols)).reshape(g.shape)
        torch.testing.assert_close(w - p.detach(), 0.01 * 0.4 * math.sqrt(max(rows, cols)) * expected)


def test_muon_resumed_from_a_saved_state_steps_as_if_never_stopped(tmp_path):
    def model_and_muon():
        torch.manual_seed(0)
        model = torch.nn.Sequential(torch.nn.Conv2d(4, 8, 3), torch.nn.Conv2d(8, 8, 3), torch.nn.Linear(5, 6))
        model.to(memory_format=torch.channels_last)
        return model, Muon([p for p in model.parameters() if p.ndim >= 2], lr=0.01)

    def step(model, muon, seed: int) -> None:
        torch.manual_seed(seed)
        for p in muon.param_groups[0]["params"]:
            p.grad = torch.randn_like(p)
        muon.step()

    model, muon = model_and_muon()
    for seed in range(3):
        step(model, muon, seed)
    resumed, again = model_and_muon()
    step(resumed, again, 0)
    torch.save({"model": resumed.state_dict(), "muon": again.state_dict()}, tmp_path / "state.pt")
    step(resumed, again, 7)  # on past the saved state, then back to it
    payload = torch.load(tmp_path / "state.pt", weights_only=True)
    resumed.load_state_dict(payload["model"])
    again.load_state_dict(payload["muon"])
    for seed in (1, 2):
        step(resumed, again, seed)
    for ours, theirs in zip(model.parameters(), resumed.parameters(), strict=True):
        torch.testing.assert_close(ours, theirs, rtol=0, atol=0)


def test_a_kernel_without_a_gradient_keeps_its_momentum_while_the_others_step():
    torch.manual_seed(0)
    a, b = (torch.nn.Parameter(torch.randn(8, 4, 3, 3)) for _ in range(2))
    muon = Muon([a, b], lr=0.01, momentum=0.9)
    first = [torch.randn(8, 4, 3, 3) for _ in range(2)]
    a.grad, b.grad = (g.clone() for g in first)
    muon.step()
    a.grad, b.grad = torch.randn(8, 4, 3, 3), None  # b takes no part in this step
    b_before = b.detach().clone()
    muon.step()
    assert torch.equal(b, b_before)
    torch.testing.assert_close(muon.state[b]["momentum_buffer"], first[1], rtol=0, atol=0)
    torch.testing.assert_close(muon.state[a]["momentum_buffer"], 0.9 * first[0] + a.grad, rtol=0, atol=0)
    third = torch.randn(8, 4, 3, 3)
    a.grad, b.grad = torch.randn(8, 4, 3, 3), third.clone()
    muon.step()
    torch.testing.assert_close(muon.state[b]["momentum_buffer"], 0.9 * first[1] + third)


def test_muon_refuses_a_vector():
    with pytest.raises(ValueError, match="belongs to AdamW"):
        Muon([torch.nn.Parameter(torch.zeros(4))], lr=0.01)


def test_every_parameter_has_one_optimiser_and_muon_gets_the_hidden_matrices():
    model = UNet(base_channels=8, num_classes=10)
    matrices, others = split_parameters(model)
    names = {id(p): name for name, p in model.named_parameters()}
    assert len(matrices) + len(others) == len(list(model.parameters()))
    assert {id(p) for p in matrices}.isdisjoint(id(p) for p in others)
    assert all(p.ndim >= 2 for p in matrices)
    kept = {names[id(p)] for p in others if p.ndim >= 2}
    assert kept == {"conv_in.weight", "conv_out.weight", "class_embedding.weight"}
    adamw, muon = make_optimisers(model, "muon", 1e-3, fused=None)
    assert isinstance(adamw, torch.optim.AdamW) and isinstance(muon, Muon)
    (only,) = make_optimisers(model, "adamw", 1e-3, fused=None)
    assert len(only.param_groups[0]["params"]) == len(list(model.parameters()))


def test_moments_saved_in_the_other_memory_layout_step_as_if_saved_in_this_one():
    def two_steps(state_layout: torch.memory_format | None) -> torch.Tensor:
        torch.manual_seed(0)
        p = torch.nn.Parameter(torch.randn(2, 8, 3, 3).contiguous(memory_format=torch.channels_last))
        optimiser = torch.optim.AdamW([p], lr=0.1, fused=True)
        p.grad = torch.randn(2, 8, 3, 3).contiguous(memory_format=torch.channels_last)
        optimiser.step()
        if state_layout is not None:  # as a checkpoint of an NCHW run loads
            state = optimiser.state[p]
            state["exp_avg"], state["exp_avg_sq"] = (state[k].contiguous(memory_format=state_layout) for k in
                                                     ("exp_avg", "exp_avg_sq"))  # fmt: skip
            match_state_layouts(optimiser)
            assert optimiser.state[p]["exp_avg"].stride() == p.stride()
        p.grad = torch.randn(2, 8, 3, 3).contiguous(memory_format=torch.channels_last)
        optimiser.step()
        return p.detach()

    torch.testing.assert_close(two_steps(torch.contiguous_format), two_steps(None), rtol=0, atol=0)
