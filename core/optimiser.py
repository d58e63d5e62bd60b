r"""How the weights learn: AdamW, or Muon for the network's weight matrices with AdamW for the rest.

**AdamW** (Loshchilov and Hutter 2019) scales every number's step by a running estimate of that number's
own gradient size, so each parameter moves about :math:`\eta` per step whatever its gradient's scale.

**Muon** (Jordan et al. 2024) treats a layer's weight as what it is, a matrix :math:`W` (m x n) that maps n
inputs to m outputs. It keeps Nesterov momentum of the gradient :math:`G_t`,

.. math::  B_t = \mu B_{t-1} + G_t, \qquad M_t = G_t + \mu B_t,

and steps along the semi-orthogonal matrix nearest to :math:`M_t`: with the SVD :math:`M_t = U S V^\top`
the step is :math:`U V^\top`, which moves every singular direction by the same amount. A gradient is
dominated by a few directions (the strokes every digit shares); AdamW follows them, Muon also moves the
rare ones (the stroke that tells a 4 from a 9) as far. :math:`U V^\top` is approximated without an SVD by
Newton-Schulz iterations on :math:`X_0 = M_t / \lVert M_t \rVert_F` (all singular values at most 1),

.. math::  A_k = X_k X_k^\top, \qquad X_{k+1} = a X_k + (b A_k + c A_k^2) X_k,

a quintic polynomial in the singular values (:math:`a, b, c` = 3.4445, -4.7750, 2.0315) that pushes each
of them towards 1 (to within about 0.7-1.2 after five iterations, which trains as well as exactly 1).
:math:`X` then has about :math:`\min(m, n)` unit singular values, so its entries have RMS
:math:`1/\sqrt{\max(m, n)}`, and the step

.. math::  W \leftarrow W - \eta\, r \sqrt{\max(m, n)}\; X_5

moves each entry by an RMS of :math:`r\eta` whatever the layer's shape (Liu et al. 2025, "Muon is
scalable for LLM training", take :math:`r = 0.2`, about AdamW's; here :math:`r` = ``MUON_UPDATE_RMS``).
A convolution's kernel (m, n, k, k) is the matrix (m, n k^2) of its patch-to-channel map; PyTorch's own
``torch.optim.Muon`` takes 2-D parameters only, hence this module. As in Jordan's runs, the first and last
layers (``conv_in``, ``conv_out``), biases, normalisation gains and the class embedding stay with AdamW.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import torch
from torch import nn

OPTIMISERS: tuple[str, ...] = ("adamw", "muon")
NEWTON_SCHULZ = (3.4445, -4.7750, 2.0315)  # a, b, c of the quintic iteration (Jordan et al. 2024)
NEWTON_SCHULZ_STEPS = 5
MUON_MOMENTUM = 0.95
MUON_UPDATE_RMS = 0.4  # r: each weight moves by an RMS of r * lr per step (docs/muon.md: the step-size screen)
ADAMW_ONLY = ("conv_in.", "conv_out.", "class_embedding.")  # names of the layers Muon leaves to AdamW


def newton_schulz_factor(gram: torch.Tensor, steps: int = NEWTON_SCHULZ_STEPS) -> torch.Tensor:
    r""":math:`Q` with :math:`X_{\text{steps}} = Q X_0` for Newton-Schulz iterations from :math:`X_0`, given
    only the small Gram matrices ``gram`` :math:`= X_0 X_0^\top` (..., rows, rows).

    Every :math:`X_k` is :math:`Q_k X_0` with :math:`Q_k` a polynomial in :math:`G = X_0 X_0^\top` (all such
    polynomials commute), and :math:`A_k = X_k X_k^\top = Q_k^2 G` is one too, so the iteration
    :math:`X_{k+1} = p(A_k) X_k` with :math:`p(A) = a I + b A + c A^2` becomes
    :math:`Q_{k+1} = p(A_k)\,Q_k` and :math:`A_{k+1} = p(A_k)\,A_k\,p(A_k)`, from :math:`Q_0 = I`, :math:`A_0 = G`."""
    a, b, c = NEWTON_SCHULZ
    a_k, q = gram, None
    for k in range(steps):
        p = torch.baddbmm(a_k, a_k, a_k, beta=b, alpha=c)  # b A + c A^2
        p.diagonal(dim1=-2, dim2=-1).add_(a)
        q = p if q is None else p @ q
        if k < steps - 1:
            a_k = p @ a_k @ p
    return q


def orthogonalise_all(
    matrices: list[torch.Tensor],
    steps: int = NEWTON_SCHULZ_STEPS,
    gains: list[float] | None = None,
    out: list[torch.Tensor] | None = None,
) -> list[torch.Tensor]:
    r"""About :math:`U V^\top` for each matrix :math:`M = U S V^\top` in each batch of ``matrices`` (each
    (batch, rows, cols)), by ``steps`` Newton-Schulz iterations :math:`X_{k+1} = a X_k + (b A_k + c A_k^2) X_k`,
    :math:`A_k = X_k X_k^\top`, from :math:`X_0 = M / \lVert M \rVert_F`, on the wide orientation; times
    ``gains[i]`` for batch i where given, and written into ``out[i]`` (shaped like ``matrices[i]``) where given.

    The iterations run on the small Gram matrices (:func:`newton_schulz_factor`), and the long :math:`X_0` is
    multiplied once at the end: the same result for a quarter of the arithmetic on a 64 x 576 kernel.
    Gram matrices of the same size iterate as one batch, whatever the kernels' shapes, each written straight
    into its place in the batch. :math:`X_0` itself is never formed: :math:`\lVert M \rVert_F^2` is the trace
    of :math:`M M^\top`, :math:`X_0 X_0^\top = M M^\top / \lVert M \rVert_F^2`, and :math:`Q X_0 = (Q / \lVert M
    \rVert_F)\, M` scales the small matrices instead of the long one, a whole batch of them in one operation."""
    tall = [m.size(-2) > m.size(-1) for m in matrices]
    wide = [m.mT if turned else m for m, turned in zip(matrices, tall, strict=True)]
    out = out if out is not None else [torch.empty_like(m) for m in matrices]
    for size in {x.size(-2) for x in wide}:
        members = [i for i, x in enumerate(wide) if x.size(-2) == size]
        counts = [len(wide[i]) for i in members]
        grams = wide[members[0]].new_empty(sum(counts), size, size)
        for i, gram in zip(members, grams.split(counts), strict=True):
            torch.matmul(wide[i], wide[i].mT, out=gram)
        squares = grams.diagonal(dim1=-2, dim2=-1).sum(-1).clamp_(min=1e-14)[:, None, None]  # ||M||_F^2 each
        scales = squares.rsqrt()  # 1 / ||M||_F
        if gains is not None:  # one gain per matrix, on the matrices' device
            each = [gains[i] for i, count in zip(members, counts, strict=True) for _ in range(count)]
            scales.mul_(torch.tensor(each, dtype=scales.dtype, device=scales.device)[:, None, None])
        factors = newton_schulz_factor(grams.div_(squares), steps).mul_(scales)
        for i, q in zip(members, factors.split(counts), strict=True):
            torch.matmul(q, wide[i], out=out[i].mT if tall[i] else out[i])
    return out


def orthogonalise(m: torch.Tensor, steps: int = NEWTON_SCHULZ_STEPS) -> torch.Tensor:
    """:func:`orthogonalise_all` for one batch of matrices (..., rows, cols)."""
    batch = m.reshape(-1, *m.shape[-2:])
    return orthogonalise_all([batch], steps)[0].reshape(m.shape)


@dataclass
class _Plan:
    """How one parameter group's step runs: its parameters in order, grouped by shape into batches; their
    gradients, momentum buffers and updates each in one flat tensor, with each batch's (count, out, rest) stack a
    slice of it and each member's row a view of that in the parameter's shape and memory order (:func:`_rows`).
    The momentum rows are the state's ``momentum_buffer`` entries (what a checkpoint saves)."""

    params: list[nn.Parameter]
    momentum: torch.Tensor
    gradient: torch.Tensor
    momentum_rows: list[torch.Tensor]
    gradient_rows: list[torch.Tensor]
    update_rows: list[torch.Tensor]
    gradient_stacks: list[torch.Tensor]  # each batch's (count, out, rest) slice of the gradients
    update_stacks: list[torch.Tensor]  # and of the updates

    @staticmethod
    def of(params: list[nn.Parameter]) -> _Plan:
        """A plan for ``params`` with zero buffers: batches in the order their shapes first occur."""
        by_shape: dict[torch.Size, list[nn.Parameter]] = {}
        for p in params:
            by_shape.setdefault(p.shape, []).append(p)
        ordered = [p for members in by_shape.values() for p in members]
        flat = [ordered[0].new_zeros(sum(p.numel() for p in ordered)) for _ in range(3)]
        rows: list[list[torch.Tensor]] = [[], [], []]
        stacks: list[list[torch.Tensor]] = [[], [], []]
        start = 0
        for shape, members in by_shape.items():
            end = start + len(members) * math.prod(shape)
            for f, listed_rows, listed_stacks in zip(flat, rows, stacks, strict=True):
                listed_stacks.append(f[start:end].view(len(members), shape[0], -1))
                listed_rows += _rows(listed_stacks[-1], members)
            start = end
        return _Plan(ordered, flat[0], flat[1], *rows, stacks[1], stacks[2])  # the updates' flat tensor: in its stacks


class Muon(torch.optim.Optimizer):
    r"""Muon for weight matrices and convolution kernels (any parameter of 2 or more dimensions, read as
    (out, everything else)): Nesterov momentum :math:`\mu`, orthogonalised, an entry RMS of ``update_rms`` x lr.
    Parameters of the same shape are orthogonalised together, as one batch of matrices, and every parameter's
    gradient, momentum and update lie in one tensor per kind: the momentum of all of them updates in two
    operations, and the step is a handful of operations instead of several for every parameter."""

    def __init__(
        self,
        params: Iterable[nn.Parameter],
        lr: float,
        momentum: float = MUON_MOMENTUM,
        update_rms: float = MUON_UPDATE_RMS,
    ) -> None:
        super().__init__(params, {"lr": lr, "momentum": momentum, "update_rms": update_rms})
        for group in self.param_groups:
            for p in group["params"]:
                if p.ndim < 2:
                    raise ValueError(f"Muon updates matrices; a parameter of shape {tuple(p.shape)} belongs to AdamW")
        self._plans: dict[int, tuple[tuple[int, ...], _Plan]] = {}  # per group: its parameters' ids, its plan

    @torch.no_grad()
    def step(self, closure=None) -> None:  # type: ignore[override]
        for index, group in enumerate(self.param_groups):
            mu = group["momentum"]
            params = [p for p in group["params"] if p.grad is not None]
            if not params:
                continue
            plan = self._plan(index, params)
            torch._foreach_copy_(plan.gradient_rows, [p.grad for p in plan.params])  # G_t
            plan.momentum.mul_(mu).add_(plan.gradient)  # B_t = mu B_{t-1} + G_t
            plan.gradient.add_(plan.momentum, alpha=mu)  # M_t = G_t + mu B_t
            size = group["lr"] * group["update_rms"]
            gains = [-size * math.sqrt(max(d.shape[-2:])) for d in plan.gradient_stacks]
            orthogonalise_all(plan.gradient_stacks, gains=gains, out=plan.update_stacks)
            torch._foreach_add_(plan.params, plan.update_rows)

    def _plan(self, index: int, params: list[nn.Parameter]) -> _Plan:
        """The plan of group ``index`` for ``params`` (those with a gradient): made anew when they change, or
        when the state holds other momentum tensors than the plan's, as after loading a checkpoint, from the
        buffers the state has (zero where it has none), with the state's entries made the plan's rows."""
        key = tuple(id(p) for p in params)
        cached, plan = self._plans.get(index, ((), None))
        if plan is not None and cached == key and self._holds(plan):
            return plan
        plan = _Plan.of(params)
        for p, row in zip(plan.params, plan.momentum_rows, strict=True):
            if "momentum_buffer" in self.state[p]:
                row.copy_(self.state[p]["momentum_buffer"])
            self.state[p]["momentum_buffer"] = row
        self._plans[index] = (key, plan)
        return plan

    def _holds(self, plan: _Plan) -> bool:
        """Whether the state's momentum buffers are still ``plan``'s rows."""
        pairs = zip(plan.params, plan.momentum_rows, strict=True)
        return all(self.state[p].get("momentum_buffer") is row for p, row in pairs)


def _rows(stack: torch.Tensor, params: list[nn.Parameter]) -> list[torch.Tensor]:
    """Each row of the contiguous ``stack`` (count, out, rest) viewed in its parameter's shape and memory order:
    a channels-last kernel's row holds its (out, kh, kw, in) values, so that copies between the kernel and its row
    run straight through memory. The row's (out, rest) matrix is then the kernel's with its columns permuted, and
    orthogonalising commutes with permuting columns (:math:`M P = U S (V^\top P)`), so the update is the same."""
    rows = []
    for p, row in zip(params, stack, strict=True):
        channels_last = p.dim() == 4 and p.is_contiguous(memory_format=torch.channels_last)
        rows.append(row.as_strided(p.shape, p.stride()) if channels_last else row.view(p.shape))
    return rows


def match_state_layouts(optimiser: torch.optim.Optimizer) -> None:
    """Give every state tensor shaped like its parameter the parameter's memory layout (NCHW or channels-last),
    as a checkpoint written by a run in the other layout needs: fused AdamW pairs a parameter's numbers with
    their moments by position in memory, not by index."""
    for p, state in optimiser.state.items():
        for key, value in state.items():
            if isinstance(value, torch.Tensor) and value.shape == p.shape and value.stride() != p.stride():
                state[key] = torch.empty_like(p, dtype=value.dtype).copy_(value)


def split_parameters(model: nn.Module) -> tuple[list[nn.Parameter], list[nn.Parameter]]:
    """(Muon's, AdamW's) parameters of ``model``: the weight matrices and kernels of its hidden layers, and
    the rest (biases, normalisation gains, the first and last convolutions, the class embedding)."""
    matrices, others = [], []
    for name, p in model.named_parameters():
        (matrices if p.ndim >= 2 and not name.startswith(ADAMW_ONLY) else others).append(p)
    return matrices, others


def make_optimisers(model: nn.Module, name: str, lr: float, fused: bool | None) -> list[torch.optim.Optimizer]:
    """The optimisers a run steps together: AdamW for every parameter (``"adamw"``), or AdamW and
    :class:`Muon` (``"muon"``, see :func:`split_parameters`); both at learning rate ``lr``, no weight decay."""
    if name not in OPTIMISERS:
        raise ValueError(f"unknown optimiser {name!r}; choose one of {', '.join(OPTIMISERS)}")
    if name == "adamw":
        return [torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0, fused=fused)]
    matrices, others = split_parameters(model)
    return [torch.optim.AdamW(others, lr=lr, weight_decay=0.0, fused=fused), Muon(matrices, lr)]
