r"""The noise-prediction network :math:`\epsilon_\theta(x_t, t)`: a small U-Net.

DDPM trains a network to look at a noisy image :math:`x_t` and the step :math:`t` and predict the noise
:math:`\epsilon` that was mixed in. The architecture follows Ho et al. 2020 (itself after PixelCNN++):

* the timestep becomes a sinusoidal embedding (as in the Transformer) passed through an MLP, and every
  residual block adds a learned projection of it to its feature maps, so one network serves all t;
* residual blocks with GroupNorm, SiLU and 3x3 convolutions;
* a down path that halves the resolution, an up path that doubles it back, and skip connections that
  concatenate each down-path activation into the matching up-path block, so fine detail need not pass
  through the bottleneck;
* self-attention at the lowest resolution, where every position can see the whole image cheaply
  (``attention="lowest"``), only in the bottleneck (``"middle"``), or nowhere (``"none"``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .fused_norm import channels_last_gradient, group_norm_silu, group_norm_silu_and_input, to_channels_last

GROUPS = 8


def timestep_embedding(t: torch.Tensor, dim: int, max_period: float = 10000.0) -> torch.Tensor:
    r"""Sinusoidal embedding of integer timesteps (Vaswani et al. 2017, used by Ho et al. 2020).

    :math:`\mathrm{emb}(t)_{i} = \sin(t\,\omega_i)` for the first half and :math:`\cos(t\,\omega_i)` for the
    second, with frequencies :math:`\omega_i = \text{max\_period}^{-i/(d/2)}`: nearby steps get similar
    vectors, distant ones different, at every scale.
    """
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, device=t.device, dtype=torch.float32) / half)
    angles = t.float()[:, None] * freqs[None, :]
    return torch.cat([torch.sin(angles), torch.cos(angles)], dim=1)


class GroupNorm(nn.GroupNorm):
    r"""GroupNorm (Wu and He 2018), :math:`\gamma\,(x - \mu_g)/\sqrt{\sigma_g^2 + \epsilon} + \beta` with the mean
    and variance of each group of channels, which computes in fp32 when the network is compiled.

    Eager, CPU autocast runs GroupNorm on bf16 input and returns bf16, the faster choice there. Compiled
    (:mod:`core.compiling`), inductor fuses an fp32 GroupNorm with the SiLU after it and the cast for the next
    convolution into one loop, but not the bf16 one: a compiled call is 1.7-1.8x faster than eager with
    this, and about 1.2x without it (docs/speed.md). A network training in channels-last order on a CPU skips this
    forward: :func:`core.fused_norm.group_norm_silu` normalises with the same weights by a kernel of its own. The
    weights, and so checkpoints, are those of ``nn.GroupNorm``."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x.float() if torch.compiler.is_compiling() else x)


TIME_CONDITIONINGS: tuple[str, ...] = ("add", "scale_shift")
UPSAMPLINGS: tuple[str, ...] = ("resize_conv", "conv_resize")
ATTENTIONS: tuple[str, ...] = ("lowest", "middle", "none")
DECODERS: tuple[str, ...] = ("full", "lean")


class ResidualBlock(nn.Module):
    r"""GroupNorm-SiLU-Conv twice, with the time embedding in between and a residual connection.

    ``time_conditioning="add"`` (Ho et al. 2020) adds a projection of the embedding:
    :math:`h = \mathrm{conv}_2(\phi(\mathrm{GN}(\mathrm{conv}_1(\phi(\mathrm{GN}(x))) + W e_t))) + \mathrm{skip}(x)`.
    ``"scale_shift"`` (adaptive GroupNorm, Dhariwal and Nichol 2021) lets t scale and shift the normalised
    features instead, :math:`\mathrm{GN}(h)\,(1 + s_t) + b_t` with :math:`(s_t, b_t) = W e_t`, so each step
    can turn channels up or down, not only offset them."""

    def __init__(
        self, in_channels: int, out_channels: int, time_dim: int, dropout: float = 0.0, time_conditioning: str = "add"
    ) -> None:
        super().__init__()
        self.scale_shift = time_conditioning == "scale_shift"
        self.norm1 = GroupNorm(GROUPS, in_channels)
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, padding=1)
        self.time_proj = nn.Linear(time_dim, 2 * out_channels if self.scale_shift else out_channels)
        self.norm2 = GroupNorm(GROUPS, out_channels)
        self.dropout = nn.Dropout(dropout)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1)
        nn.init.zeros_(self.conv2.weight)
        nn.init.zeros_(self.conv2.bias)
        self.skip = nn.Conv2d(in_channels, out_channels, 1) if in_channels != out_channels else nn.Identity()
        self.time_columns = slice(0, self.time_proj.out_features)  # its columns of the projections; the UNet sets them

    def forward(self, x: torch.Tensor, times: torch.Tensor) -> torch.Tensor:
        """``times``: every block's :math:`W e_t + b` side by side (:meth:`UNet.time_projections`); this block's
        are the columns ``time_columns``."""
        h, x = group_norm_silu_and_input(self.norm1, x)  # x's two gradients added by the kernel where it serves
        h = self.conv1(h)
        time = times[:, self.time_columns]
        if self.scale_shift:
            scale, shift = time[:, :, None, None].chunk(2, dim=1)
            h = F.silu(group_norm_silu(self.norm2, h, silu=False) * (1 + scale) + shift)
        else:
            h = group_norm_silu(self.norm2, h, shift=time)  # GN(h + W e_t), without writing h + W e_t out
        h = self.conv2(self.dropout(h))
        return h + self.skip(x)


class SelfAttention(nn.Module):
    r"""Multi-head self-attention over all spatial positions, with a residual connection:
    :math:`x + W_o\,\mathrm{softmax}\big(QK^\top/\sqrt{d}\big)V` with :math:`Q, K, V` 1x1 projections of
    the normalised input. Written out rather than through ``scaled_dot_product_attention``: at the few
    dozen positions of the lowest resolution it is as fast in fp32 and several times faster under CPU bf16."""

    def __init__(self, channels: int, heads: int = 4) -> None:
        super().__init__()
        self.heads = heads
        self.norm = GroupNorm(GROUPS, channels)
        self.qkv = nn.Conv2d(channels, 3 * channels, 1)
        self.out = nn.Conv2d(channels, channels, 1)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        normalised, x = group_norm_silu_and_input(self.norm, x, silu=False)
        q, k, v = self.qkv(normalised).reshape(b, 3, self.heads, c // self.heads, h * w).unbind(1)
        logits = q.transpose(-1, -2) @ k * (c // self.heads) ** -0.5
        weights = logits.float().softmax(dim=-1).to(v.dtype)  # in fp32 under bf16 autocast: exact, and faster
        attended = v @ weights.transpose(-1, -2)
        return x + self.out(attended.reshape(b, c, h, w))


class Downsample(nn.Module):
    """Halve the resolution with a stride-2 3x3 convolution."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, stride=2, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


class Upsample(nn.Module):
    """Double the resolution (nearest neighbour) and apply a 3x3 convolution; ``size`` restores odd sizes.

    ``"resize_conv"`` convolves after resizing (Ho et al. 2020); ``"conv_resize"`` convolves first, at the
    lower resolution, which costs a quarter as much and leaves the finer work to the next blocks. The
    convolution may also change the width, to the next level's (``out_channels``)."""

    def __init__(self, channels: int, order: str = "resize_conv", out_channels: int | None = None) -> None:
        super().__init__()
        self.conv_first = order == "conv_resize"
        self.conv = nn.Conv2d(channels, out_channels or channels, 3, padding=1)

    def forward(self, x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        if self.conv_first:
            return channels_last_gradient(F.interpolate(self.conv(x), size=size, mode="nearest"))
        return self.conv(F.interpolate(x, size=size, mode="nearest"))


@dataclass(frozen=True)
class _Levels:
    """What both paths of a U-Net are built from: the first level's width ``base`` and each level's
    multiplier, residual stages per level, the time embedding's size, the residual blocks' settings,
    whether each level attends, and whether the decoder is Ho et al.'s full one."""

    base: int
    mults: tuple[int, ...]
    blocks: int
    time_dim: int
    block: dict
    attend: tuple[bool, ...]
    full_decoder: bool

    def width(self, level: int) -> int:
        return self.base * self.mults[level]

    def stage(self, in_channels: int, level: int) -> nn.ModuleList:
        """A residual block to this level's width, followed by self-attention where the level attends."""
        layers: list[nn.Module] = [ResidualBlock(in_channels, self.width(level), self.time_dim, **self.block)]
        if self.attend[level]:
            layers.append(SelfAttention(self.width(level)))
        return nn.ModuleList(layers)


class UNet(nn.Module):
    r"""The U-Net :math:`\epsilon_\theta(x_t, t)`, or :math:`\epsilon_\theta(x_t, t, y)` with class labels.

    Args:
        in_channels: 1 for gray images, 3 for RGB.
        base_channels: width of the first level; level i has ``base_channels * channel_mults[i]``.
        channel_mults: one entry per resolution level; each level after the first halves the resolution.
        num_res_blocks: residual blocks per level on the down path (the up path has one more, to take
            the extra skip connection from the downsampling step).
        dropout: dropout inside residual blocks.
        num_classes: above 0, a class-conditional network: a learned embedding of the label y is added
            to the time embedding. Index ``num_classes`` is the null class :math:`\varnothing` ("no label"),
            used for classifier-free guidance.
        time_conditioning: how t enters each residual block, "add" or "scale_shift" (see ResidualBlock).
        upsample: "resize_conv" or "conv_resize" (see Upsample).
        attention: where self-attention runs: after every block at the lowest resolution and in the
            bottleneck ("lowest", Ho et al. 2020), in the bottleneck only ("middle"), or nowhere ("none").
        decoder: "full" (Ho et al. 2020): ``num_res_blocks + 1`` stages per level on the up path, taking every
            tensor the down path made (the stem's and each downsampling step's too) as a skip. "lean":
            ``num_res_blocks`` stages per level, taking the skips of the down path's residual blocks only,
            and each upsampling convolution narrows to the next level's width; a third fewer multiply-adds
            at the default size, most of them at full resolution.
    """

    def __init__(
        self,
        in_channels: int = 1,
        base_channels: int = 64,
        channel_mults: tuple[int, ...] = (1, 2, 2),
        num_res_blocks: int = 1,
        dropout: float = 0.0,
        num_classes: int = 0,
        time_conditioning: str = "add",
        upsample: str = "resize_conv",
        attention: str = "lowest",
        decoder: str = "full",
    ) -> None:
        super().__init__()
        for name, value, allowed in (
            ("time_conditioning", time_conditioning, TIME_CONDITIONINGS),
            ("upsample", upsample, UPSAMPLINGS),
            ("attention", attention, ATTENTIONS),
            ("decoder", decoder, DECODERS),
        ):
            if value not in allowed:
                raise ValueError(f"{name} must be one of {allowed}, got {value!r}")
        block = {"dropout": dropout, "time_conditioning": time_conditioning}
        self.base_channels = base_channels
        self.num_classes = num_classes
        self.full_decoder = decoder == "full"
        self.skips_on = True  # False replaces every skip tensor by zeros (see core.inspect.skips_cut)
        time_dim = 4 * base_channels
        self.time_mlp = nn.Sequential(nn.Linear(base_channels, time_dim), nn.SiLU(), nn.Linear(time_dim, time_dim))
        self.class_embedding = nn.Embedding(num_classes + 1, time_dim) if num_classes else None
        self.conv_in = nn.Conv2d(in_channels, base_channels, 3, padding=1)
        lowest = len(channel_mults) - 1
        attend = tuple(attention == "lowest" and level == lowest for level in range(len(channel_mults)))
        plan = _Levels(base_channels, tuple(channel_mults), num_res_blocks, time_dim, block, attend, self.full_decoder)

        self.down, skip_channels = self._down_path(plan)
        channels = skip_channels[-1]

        self.mid = nn.ModuleList(
            [
                ResidualBlock(channels, channels, time_dim, **block),
                SelfAttention(channels) if attention != "none" else nn.Identity(),
                ResidualBlock(channels, channels, time_dim, **block),
            ]
        )

        self.up = self._up_path(plan, skip_channels, upsample)
        channels = base_channels * channel_mults[0]

        self.norm_out = GroupNorm(GROUPS, channels)
        self.conv_out = nn.Conv2d(channels, in_channels, 3, padding=1)
        nn.init.zeros_(self.conv_out.weight)
        nn.init.zeros_(self.conv_out.bias)
        self._place_time_columns()

    def _place_time_columns(self) -> None:
        """Give every residual block its columns of :meth:`time_projections`' output, in the order of
        ``self.modules()``."""
        blocks = [m for m in self.modules() if isinstance(m, ResidualBlock)]
        self._time_layers = tuple(block.time_proj for block in blocks)
        start = 0
        for block in blocks:
            block.time_columns = slice(start, start + block.time_proj.out_features)
            start = block.time_columns.stop

    def time_projections(self, t_emb: torch.Tensor) -> torch.Tensor:
        r"""Every residual block's projection of the time embedding, :math:`W_i e_t + b_i`, side by side: one
        matrix product with the blocks' weights stacked, :math:`[W_1; W_2; \dots]\,e_t + [b_1; b_2; \dots]`,
        instead of one small product per block (and under autocast one cast of the stacked weights instead of
        one per block). The weights stay each block's ``time_proj``, so checkpoints are unchanged."""
        weight = torch.cat([layer.weight for layer in self._time_layers])
        bias = torch.cat([layer.bias for layer in self._time_layers])
        return F.linear(t_emb, weight, bias)

    @staticmethod
    def _down_path(plan: _Levels) -> tuple[nn.ModuleList, list[int]]:
        """The encoder: ``blocks`` residual stages per level, each level but the last followed by a
        downsampling step; and the channels of every skip tensor it leaves for the decoder, in order (the
        full decoder takes the stem's and every step's output, the lean one the residual stages' only)."""
        down = nn.ModuleList()
        skip_channels = [plan.base] if plan.full_decoder else []
        channels = plan.base
        for level in range(len(plan.mults)):
            for _ in range(plan.blocks):
                down.append(plan.stage(channels, level))
                channels = plan.width(level)
                skip_channels.append(channels)
            if level != len(plan.mults) - 1:
                down.append(Downsample(channels))
                if plan.full_decoder:
                    skip_channels.append(channels)
        return down, skip_channels

    @staticmethod
    def _up_path(plan: _Levels, skip_channels: list[int], upsample: str) -> nn.ModuleList:
        """The decoder, lowest level first: per level ``blocks + 1`` stages (full) or ``blocks`` (lean),
        each taking one skip tensor (popped from ``skip_channels``), and an upsampling step between levels,
        which keeps the width (full) or narrows to the next level's (lean)."""
        up = nn.ModuleList()
        channels = skip_channels[-1]
        for level in reversed(range(len(plan.mults))):
            for _ in range(plan.blocks + plan.full_decoder):
                up.append(plan.stage(channels + skip_channels.pop(), level))
                channels = plan.width(level)
            if level != 0:
                narrowed = channels if plan.full_decoder else plan.width(level - 1)
                up.append(Upsample(channels, upsample, narrowed))
                channels = narrowed
        return up

    def leaves_skip(self, layer: nn.Module) -> bool:
        """Whether the up path receives the output of ``layer`` (``conv_in`` or an entry of ``down``): every
        one's with the full decoder, the residual stages' only with the lean one."""
        return self.full_decoder or isinstance(layer, nn.ModuleList)

    @property
    def null_class(self) -> int:
        """The label that means "no label" (:math:`\varnothing`) in a class-conditional network."""
        return self.num_classes

    def forward(self, x: torch.Tensor, t: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """Predict the noise in ``x`` (B, C, H, W) at integer timesteps ``t`` (B,), given class labels ``y``
        (B,) when the network is conditional (None means the null class). ``y`` may also be (B, K + 1)
        weights over the K classes and the null class, which mix their embeddings (to morph one class into
        another)."""
        t_emb = self.time_mlp(timestep_embedding(t, self.base_channels))
        if self.class_embedding is not None:
            if y is None:
                y = torch.full_like(t, self.null_class)
            mixed = y.is_floating_point()
            t_emb = t_emb + (y.to(t_emb.dtype) @ self.class_embedding.weight if mixed else self.class_embedding(y))
        elif y is not None:
            raise ValueError("this model was trained without class labels (train with --conditional)")
        times = self.time_projections(t_emb)
        h = to_channels_last(self.conv_in(x))  # in bf16 on a CPU: core.fused_norm
        skips = [h] if self.leaves_skip(self.conv_in) else []
        for layer in self.down:
            h = layer(h) if isinstance(layer, Downsample) else _run_stage(layer, h, times)
            if self.leaves_skip(layer):
                skips.append(h)
        h = self.mid[2](self.mid[1](self.mid[0](h, times)), times)
        for layer in self.up:
            if isinstance(layer, Upsample):
                h = layer(h, skips[-1].shape[-2:])
            else:
                skip = skips.pop()
                if not self.skips_on:
                    skip = torch.zeros_like(skip)
                h = _run_stage(layer, torch.cat([h, skip], dim=1), times)
        return self.conv_out(group_norm_silu(self.norm_out, h))


def _run_stage(stage: nn.ModuleList, h: torch.Tensor, times: torch.Tensor) -> torch.Tensor:
    h = stage[0](h, times)
    for attention in stage[1:]:
        h = attention(h)
    return h


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
