r"""Inside a trained noise predictor: what it sees, what it predicts, and what it needs.

Three of the ideas behind DDPM are claims about the network, and this module measures each on a real
model and real held-out images:

* **Why predict the noise.** At every t the network's target :math:`\epsilon` has unit variance, so the
  error :math:`\mathrm{MSE}(\hat\epsilon, \epsilon)` stays bounded. The image it implies,
  :math:`\hat x_0 = (x_t - \sqrt{1-\bar\alpha_t}\,\hat\epsilon)/\sqrt{\bar\alpha_t}`, multiplies that
  error by :math:`(1-\bar\alpha_t)/\bar\alpha_t = 1/\mathrm{SNR}_t`, so
  :math:`\mathrm{MSE}(\hat x_0, x_0)` grows with t (:func:`error_profile`).
* **Why the network needs t.** Feeding it another step :math:`t_\text{model}` than the one that made
  :math:`x_t` raises its error, least at the true t (:func:`time_sweep`).
* **Why skip connections.** :func:`skips_cut` replaces every tensor the U-Net's up path receives from
  its down path by zeros; the fine detail of :math:`\hat\epsilon` goes with them
  (:func:`describe_levels` lists where each skip goes).

Conditional models are asked with the null class (no label), as an unconditional model would be.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field

import torch
from torch import nn

from .schedule import NoiseSchedule
from .unet import SelfAttention, UNet, timestep_embedding

INSPECT_TIMESTEPS: tuple[int, ...] = (50, 250, 500, 900)
PROFILE_POINTS = 50
Progress = Callable[[int, int], None]


def unet_of(predictor: nn.Module) -> UNet:
    """The U-Net inside a noise predictor (a v-prediction model is wrapped; see ``noise_predictor``)."""
    network = getattr(predictor, "network", predictor)
    if not isinstance(network, UNet):
        raise TypeError(f"expected a U-Net noise predictor, got {type(network).__name__}")
    return network


@contextmanager
def skips_cut(predictor: nn.Module) -> Iterator[None]:
    """Inside the ``with`` block the U-Net's up path receives zeros instead of every skip tensor; the
    model is restored when the block ends, also when it raises. No second model is made."""
    network = unet_of(predictor)
    before = network.skips_on
    network.skips_on = False
    try:
        yield
    finally:
        network.skips_on = before


def wrong_time(t: int, timesteps: int) -> int:
    """The step the "wrong t" measurement tells the network: half the process away, :math:`(t + T/2) \\bmod T`."""
    return (t + timesteps // 2) % timesteps


@dataclass(frozen=True)
class Prediction:
    r"""One look at the network: :math:`x_t` made from ``x0`` and ``eps`` at step ``t``, the network asked
    at ``t_model`` (with or without its skips), and the :math:`\hat x_0` its answer implies."""

    t: int
    t_model: int
    skips: bool
    x0: torch.Tensor
    x_t: torch.Tensor
    eps: torch.Tensor
    eps_hat: torch.Tensor
    x0_hat: torch.Tensor

    @property
    def error(self) -> torch.Tensor:
        r""":math:`\hat\epsilon - \epsilon`."""
        return self.eps_hat - self.eps

    @property
    def mse_eps(self) -> float:
        r""":math:`\mathrm{MSE}(\hat\epsilon, \epsilon)`: what the training loss sees."""
        return self.error.pow(2).mean().item()

    @property
    def mse_x0(self) -> float:
        r""":math:`\mathrm{MSE}(\hat x_0, x_0)`: what the image sees."""
        return (self.x0_hat - self.x0).pow(2).mean().item()


@torch.inference_mode()
def predict(
    predictor: nn.Module,
    schedule: NoiseSchedule,
    x0: torch.Tensor,
    t: int,
    eps: torch.Tensor,
    t_model: int | None = None,
    skips: bool = True,
) -> Prediction:
    r""":math:`x_t = \sqrt{\bar\alpha_t}x_0 + \sqrt{1-\bar\alpha_t}\epsilon`, then
    :math:`\hat\epsilon = \epsilon_\theta(x_t, t_\text{model})` (``t_model`` defaults to t) and
    :math:`\hat x_0 = (x_t - \sqrt{1-\bar\alpha_t}\hat\epsilon)/\sqrt{\bar\alpha_t}` with the true t's
    :math:`\bar\alpha_t`, because that is how :math:`x_t` was made."""
    if not 0 <= t < schedule.timesteps:
        raise ValueError(f"t must be in 0..{schedule.timesteps - 1}, got {t}")
    t_model = t if t_model is None else t_model
    if not 0 <= t_model < schedule.timesteps:
        raise ValueError(f"t_model must be in 0..{schedule.timesteps - 1}, got {t_model}")
    steps = torch.full((len(x0),), t, device=x0.device)
    x_t = schedule.q_sample(x0, steps, eps)
    with nullcontext() if skips else skips_cut(predictor):
        eps_hat = predictor(x_t, torch.full_like(steps, t_model)).float()
    x0_hat = schedule.predict_x0(x_t, steps, eps_hat)
    return Prediction(t, t_model, skips, x0, x_t, eps, eps_hat, x0_hat)


@dataclass
class ErrorProfile:
    """Errors averaged over a batch of images at each t of ``t``: with the true t; told
    :func:`wrong_time` instead; and with the skips cut."""

    t: list[int] = field(default_factory=list)
    mse_eps: list[float] = field(default_factory=list)
    mse_x0: list[float] = field(default_factory=list)
    mse_eps_wrong_t: list[float] = field(default_factory=list)
    mse_eps_no_skips: list[float] = field(default_factory=list)

    def as_dict(self) -> dict[str, list]:
        return {
            "t": self.t,
            "mse_eps": self.mse_eps,
            "mse_x0": self.mse_x0,
            "mse_eps_wrong_t": self.mse_eps_wrong_t,
            "mse_eps_no_skips": self.mse_eps_no_skips,
        }


def profile_timesteps(timesteps: int, points: int = PROFILE_POINTS) -> list[int]:
    """``points`` steps spread evenly over 0..T-1, both ends included."""
    return sorted({round(i * (timesteps - 1) / (points - 1)) for i in range(points)})


def error_profile(
    predictor: nn.Module,
    schedule: NoiseSchedule,
    x0: torch.Tensor,
    timesteps: Sequence[int],
    generator: torch.Generator,
    progress: Progress | None = None,
) -> ErrorProfile:
    r"""For each t: fresh noise :math:`\epsilon` for every image of ``x0``, then the mean
    :math:`\mathrm{MSE}(\hat\epsilon,\epsilon)` and :math:`\mathrm{MSE}(\hat x_0, x_0)` at the true t,
    :math:`\mathrm{MSE}(\hat\epsilon,\epsilon)` told :func:`wrong_time`, and with :func:`skips_cut`.
    ``progress(done, total)`` is called after each t."""
    profile = ErrorProfile()
    for done, t in enumerate(timesteps, 1):
        eps = torch.randn(x0.shape, generator=generator).to(x0.device)
        right = predict(predictor, schedule, x0, t, eps)
        profile.t.append(int(t))
        profile.mse_eps.append(right.mse_eps)
        profile.mse_x0.append(right.mse_x0)
        profile.mse_eps_wrong_t.append(
            predict(predictor, schedule, x0, t, eps, wrong_time(t, schedule.timesteps)).mse_eps
        )
        profile.mse_eps_no_skips.append(predict(predictor, schedule, x0, t, eps, skips=False).mse_eps)
        if progress is not None:
            progress(done, len(timesteps))
    return profile


@torch.inference_mode()
def time_sweep(
    predictor: nn.Module, schedule: NoiseSchedule, x_t: torch.Tensor, eps: torch.Tensor, t_models: Sequence[int]
) -> list[float]:
    r""":math:`\mathrm{MSE}(\epsilon_\theta(x_t, t_\text{model}), \epsilon)` for each ``t_models`` entry, with
    :math:`x_t` (one image, 1 x C x H x W) fixed: one batched call."""
    batch = x_t.expand(len(t_models), *x_t.shape[1:])
    eps_hat = predictor(batch, torch.tensor(list(t_models), device=x_t.device)).float()
    return (eps_hat - eps).pow(2).flatten(1).mean(1).tolist()


def embedding_map(dim: int, timesteps: int, columns: int) -> tuple[torch.Tensor, list[int]]:
    """The sinusoidal time embedding as a (dim, columns) image in [-1, 1]: column j is the vector the
    network is told at the j-th of ``columns`` steps spread over 0..T-1 (returned too)."""
    steps = profile_timesteps(timesteps, columns)
    return timestep_embedding(torch.tensor(steps), dim).T.contiguous(), steps


@dataclass(frozen=True)
class Level:
    """One resolution of the U-Net: its blocks on each path, the skip tensors it passes across (each to
    one up block of the same resolution, by channel count), attention, and its parameters."""

    resolution: tuple[int, int]
    channels: int
    down_blocks: int
    up_blocks: int
    skip_channels: list[int]
    attention: bool
    parameters: int


@dataclass(frozen=True)
class Bottleneck:
    """The U-Net's middle, at the lowest resolution: its parameters, and whether self-attention sits
    between its two residual blocks."""

    parameters: int
    attention: bool


@torch.inference_mode()
def describe_levels(predictor: nn.Module, image_shape: Sequence[int]) -> tuple[list[Level], Bottleneck]:
    """The U-Net's levels, top (full resolution) to bottom, read from one traced forward pass of a blank
    image, so they describe the actual model; and its bottleneck. A module belongs to the level of the
    resolution it outputs (a downsampling step to the level below it)."""
    network = unet_of(predictor)
    sources = [network.conv_in, *network.down]
    entries = [*sources, *network.up]
    shapes: dict[int, torch.Size] = {}
    hooks = [
        (entry[-1] if isinstance(entry, nn.ModuleList) else entry).register_forward_hook(_recorder(shapes, index))
        for index, entry in enumerate(entries)
    ]
    try:
        device = next(network.parameters()).device
        network(torch.zeros(1, *image_shape, device=device), torch.zeros(1, dtype=torch.long, device=device))
    finally:
        for hook in hooks:
            hook.remove()
    levels: dict[tuple[int, int], dict] = {}
    for index, entry in enumerate(entries):
        shape = shapes[index]
        here = levels.setdefault(
            (shape[-2], shape[-1]),
            {"channels": 0, "down": 0, "up": 0, "skips": [], "attention": False, "parameters": 0},
        )
        here["parameters"] += sum(p.numel() for p in entry.parameters())
        if isinstance(entry, nn.ModuleList):
            here["channels"] = max(here["channels"], shape[1])
        if entry in sources and network.leaves_skip(entry):
            here["skips"].append(shape[1])
        if isinstance(entry, nn.ModuleList):
            here["down" if index < len(sources) else "up"] += 1
            here["attention"] |= len(entry) > 1
    ordered = sorted(levels.items(), key=lambda item: -item[0][0])
    result = [
        Level(res, v["channels"], v["down"], v["up"], v["skips"], v["attention"], v["parameters"]) for res, v in ordered
    ]
    attends = any(isinstance(module, SelfAttention) for module in network.mid)
    bottleneck = Bottleneck(sum(p.numel() for p in network.mid.parameters()), attends)
    return result, bottleneck


def _recorder(shapes: dict, index: int) -> Callable:
    def record(_module: nn.Module, _inputs: tuple, output: torch.Tensor) -> None:
        shapes[index] = output.shape

    return record


PANELS: tuple[str, ...] = ("x_0", "x_t", "ε", "ε_hat", "ε_hat − ε", "x0_hat")
NOISE_RANGE = 3.0  # ε and ε_hat are drawn with ±3 standard deviations as black and white
ERROR_RANGE = 1.0  # |ε_hat − ε| of 1 or more is full red (too high) or full blue (too low)


def diverging(values: torch.Tensor, scale: float = ERROR_RANGE) -> torch.Tensor:
    """(B, C, H, W) signed values as RGB in [-1, 1] (channels averaged): black at 0, red for positive,
    blue for negative, full colour at ``scale``."""
    v = (values.float().mean(1, keepdim=True) / scale).clamp(-1, 1)
    rgb = torch.cat([v.clamp(min=0), torch.zeros_like(v), (-v).clamp(min=0)], dim=1)
    return rgb * 2 - 1


def panels(prediction: Prediction, index: int = 0) -> torch.Tensor:
    """The six pictures of :data:`PANELS` for image ``index`` of ``prediction``, as a (6, 3, H, W) batch
    in [-1, 1]: images clamped, noise scaled by :data:`NOISE_RANGE`, the error by :func:`diverging`."""
    p = prediction

    def rgb(x: torch.Tensor) -> torch.Tensor:
        x = x[index : index + 1].float().clamp(-1, 1)
        return x.expand(1, 3, *x.shape[2:]) if x.shape[1] == 1 else x

    return torch.cat(
        [
            rgb(p.x0),
            rgb(p.x_t),
            rgb(p.eps / NOISE_RANGE),
            rgb(p.eps_hat / NOISE_RANGE),
            diverging(p.error[index : index + 1]),
            rgb(p.x0_hat),
        ]
    )


def structure_lines(levels: Sequence[Level], bottleneck: Bottleneck, total_parameters: int) -> list[str]:
    """The U-Net drawn as text, one line per level (down path on the left, up path on the right, the skip
    tensors crossing between them), then the bottleneck and the parameter total."""
    lines = []
    for depth, level in enumerate(levels):
        h, w = level.resolution
        skips = " ".join(f"{c}" for c in level.skip_channels)
        attention = " +attn" if level.attention else ""
        lines.append(
            f"{'  ' * depth}{h}x{w} {level.channels:>3} ch: {level.down_blocks} down{attention} "
            f"══ skips [{skips}] ══▶ {level.up_blocks} up  ({level.parameters / 1e3:,.0f}k params)"
        )
    h, w = levels[-1].resolution
    middle = "block, attention, block" if bottleneck.attention else "block, block"
    lines.append(f"{'  ' * len(levels)}bottleneck {h}x{w}: {middle} ({bottleneck.parameters / 1e3:,.0f}k)")
    lines.append(f"{total_parameters / 1e6:.2f}M parameters in all (with the time MLP and output conv)")
    return lines
