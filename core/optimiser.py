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


def orthogonalise_all(matrices: list[torch.Tensor], steps: int = NEWTON_SCHULZ_STEPS) -> list[torch.Tensor]:
    r"""About :math:`U V^\top` for each matrix :math:`M = U S V^\top` in each batch of ``matrices`` (each
    (batch, rows, cols)), by ``steps`` Newton-Schulz iterations :math:`X_{k+1} = a X_k + (b A_k + c A_k^2) X_k`,
    :math:`A_k = X_k X_k^\top`, from :math:`X_0 = M / \lVert M \rVert_F`, on the wide orientation.

    The iterations run on the small Gram matrices (:func:`newton_schulz_factor`), and the long :math:`X_0` is
    multiplied once at the end: the same result for a quarter of the arithmetic on a 64 x 576 kernel.
    Gram matrices of the same size iterate as one batch, whatever the kernels' shapes, each written straight
    into its place in the batch. :math:`X_0` itself is never formed: :math:`X_0 X_0^\top = M M^\top / \lVert M
    \rVert_F^2` and :math:`Q X_0 = (Q / \lVert M \rVert_F)\, M` scale the small matrices instead of the long one."""
    wide = [m.mT if m.size(-2) > m.size(-1) else m for m in matrices]
    scales = [1.0 / x.norm(dim=(-2, -1), keepdim=True).clamp(min=1e-7) for x in wide]  # 1 / ||M||_F
    factors: list[torch.Tensor | None] = [None] * len(wide)
    for size in {x.size(-2) for x in wide}:
        members = [i for i, x in enumerate(wide) if x.size(-2) == size]
        counts = [len(wide[i]) for i in members]
        grams = wide[members[0]].new_empty(sum(counts), size, size)
        for i, gram in zip(members, grams.split(counts), strict=True):
            torch.matmul(wide[i], wide[i].mT, out=gram).mul_(scales[i].square())
        for i, q in zip(members, newton_schulz_factor(grams, steps).split(counts), strict=True):
            factors[i] = q
    out = []
    for m, x, scale, q in zip(matrices, wide, scales, factors, strict=True):
        y = (q * scale) @ x
        out.append(y.mT if m.size(-2) > m.size(-1) else y)
    return out


def orthogonalise(m: torch.Tensor, steps: int = NEWTON_SCHULZ_STEPS) -> torch.Tensor:
    """:func:`orthogonalise_all` for one batch of matrices (..., rows, cols)."""
    batch = m.reshape(-1, *m.shape[-2:])
    return orthogonalise_all([batch], steps)[0].reshape(m.shape)


# parameters of one shape, their momentum buffers stacked (count, out, rest), and each one's view of its row
Stack = tuple[list[nn.Parameter], torch.Tensor, list[torch.Tensor]]


class Muon(torch.optim.Optimizer):
    r"""Muon for weight matrices and convolution kernels (any parameter of 2 or more dimensions, read as
    (out, everything else)): Nesterov momentum :math:`\mu`, orthogonalised, an entry RMS of ``update_rms`` x lr.
    Parameters of the same shape keep their momentum in one stacked tensor and are orthogonalised together, as
    one batch of matrices: a handful of operations a step instead of several for every parameter."""

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
        self._stacked: dict[int, tuple[tuple[int, ...], list[Stack]]] = {}  # per group: its parameters' ids, stacks

    @torch.no_grad()
    def step(self, closure=None) -> None:  # type: ignore[override]
        for index, group in enumerate(self.param_groups):
            mu = group["momentum"]
            params = [p for p in group["params"] if p.grad is not None]
            if not params:
                continue
            directions = []
            batches = self._batches(index, params)
            for members, momentum, _ in batches:
                gradient = torch.empty_like(momentum)  # G_t of each member, stacked like the momentum
                torch._foreach_copy_(_rows(gradient, members), [p.grad for p in members])
                momentum.mul_(mu).add_(gradient)  # B_t = mu B_{t-1} + G_t
                directions.append(gradient.add_(momentum, alpha=mu))  # M_t = G_t + mu B_t
            for (members, _, _), direction in zip(batches, orthogonalise_all(directions), strict=True):
                size = group["lr"] * group["update_rms"] * math.sqrt(max(direction.shape[-2:]))
                torch._foreach_add_(members, _rows(direction.contiguous(), members), alpha=-size)

    def _batches(self, index: int, params: list[nn.Parameter]) -> list[Stack]:
        """``params`` (those of group ``index`` with a gradient) grouped by shape, each group with its momentum
        buffers stacked as one (count, out, rest) tensor, so that the momentum of a whole group updates in one
        operation, and each member's view of it. The views are the state's ``momentum_buffer`` entries (what a
        checkpoint saves); where the state holds other tensors, as after loading a checkpoint, the stacks are
        made anew from them."""
        key = tuple(id(p) for p in params)
        cached, batches = self._stacked.get(index, ((), []))
        if cached != key or any(
            self.state[p].get("momentum_buffer") is not view
            for members, _, views in batches
            for p, view in zip(members, views, strict=True)
        ):
            batches = self._stack_momentum(params)
            self._stacked[index] = (key, batches)
        return batches

    def _stack_momentum(self, params: list[nn.Parameter]) -> list[Stack]:
        """New stacked momentum buffers for ``params`` by shape, holding the buffers the state has (zero where
        it has none), with the state's entries made views of them."""
        by_shape: dict[torch.Size, list[nn.Parameter]] = {}
        for p in params:
            by_shape.setdefault(p.shape, []).append(p)
        batches = []
        for shape, members in by_shape.items():
            momentum = members[0].new_zeros(len(members), shape[0], math.prod(shape[1:]))
            views = _rows(momentum, members)
            for p, view in zip(members, views, strict=True):
                if "momentum_buffer" in self.state[p]:
                    view.copy_(self.state[p]["momentum_buffer"])
                self.state[p]["momentum_buffer"] = view
            batches.append((members, momentum, views))
        return batches


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
