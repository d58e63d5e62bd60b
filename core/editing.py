r"""What a trained model can do besides sampling: invert an image to its noise, interpolate, inpaint.

* **Inversion.** The deterministic samplers solve the probability-flow ODE, a smooth, reversible path
  between images and noise. Run forward, from an image towards :math:`t = T`, the same solver step
  finds the :math:`x_T` that the sampler would turn back into that image (DDIM inversion, Song et al.
  2021; Mokady et al. 2023), up to the solver's discretisation error.
* **Interpolation.** Gaussian noise in many dimensions lives near the sphere of radius
  :math:`\sqrt{d}`; the straight-line mid-point of two noise vectors has about :math:`1/\sqrt 2` of that
  norm, noise the network never saw at :math:`t = T`, and decodes to a blur. Spherical interpolation
  (Shoemake 1985) keeps the norm.
* **Inpainting.** The reverse process can be told some pixels: at every step the known pixels are
  noised to that step's level and pasted over the sample, and the network fills the rest to match.
  Pasting alone leaves a seam, since the filled part never had a say in the known part's noise;
  RePaint (Lugmayr et al. 2022) jumps back a step (re-noising the whole sample) and denoises again,
  ``resample`` times per step, so the two parts settle together.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

import torch

from . import jobs
from .data import Dataset, load_dataset, pick_images
from .images import image_channels, image_paths, load_image_folder, read_mask
from .samplers import NoisePredictor, SamplerStep, autoguided, ddim_step, dpm_solver_step, guidance_interval
from .sampling import resolve_autoguidance
from .schedule import NoiseSchedule

INVERSION_SOLVERS = ("ddim", "dpm++")
MASKS = ("top", "bottom", "left", "right", "center")
# Inpainting's steps, RePaint's passes a step and the reconstruction guidance w: the most digits kept their
# class within the time allowed (docs/editing.md).
INPAINT_STEPS, INPAINT_RESAMPLE, INPAINT_GUIDANCE = 25, 1, 16.0


@torch.no_grad()
def invert(
    model: NoisePredictor, schedule: NoiseSchedule, images: torch.Tensor, times: list[int], solver: str = "ddim"
) -> Iterator[SamplerStep]:
    r"""Encode ``images`` to noise: the probability-flow ODE run forward along ``times`` (a sampler's
    timesteps, noisiest first, ending at 0), yielding every step; the last step's ``x`` is :math:`x_T`.

    The image stands at the least noisy step, ``times[-1]``. Each step from t to the noisier t' is the
    sampler's own ODE step in the other direction,

    .. math::  x_{t'} = \frac{\sigma_{t'}}{\sigma_t}\,x_t - \alpha_{t'}\,(e^{-h} - 1)\,D,
               \qquad h = \lambda_{t'} - \lambda_t < 0,

    with :math:`D = \hat x_0(x_t)` for ``"ddim"`` (which is then DDIM's
    :math:`x_{t'} = \alpha_{t'}\hat x_0 + \sigma_{t'}\hat\epsilon`) and DPM-Solver++(2M)'s extrapolated
    :math:`D` for ``"dpm++"``. The network is asked at :math:`x_t`, not at the unknown :math:`x_{t'}`: that
    is the discretisation error, which shrinks as the steps do. Nothing is clipped, so the map stays
    invertible.
    """
    if solver not in INVERSION_SOLVERS:
        raise ValueError(f"inversion runs the ODE with {' or '.join(INVERSION_SOLVERS)}, not {solver}")
    path = times[::-1]
    x, previous = images, None
    for index, (t, t_next) in enumerate(zip(path, path[1:], strict=False)):
        jobs.tick()
        tt = torch.full((x.shape[0],), t, device=x.device, dtype=torch.long)
        x0 = schedule.predict_x0(x, tt, model(x, tt).float())
        x = dpm_solver_step(schedule, x, t, t_next, x0, previous if solver == "dpm++" else None)
        previous = (t, x0)
        yield SamplerStep(index=index, total=len(path) - 1, t=t_next, x=x, x0_pred=x0)


def pixel_mse(a: torch.Tensor, b: torch.Tensor) -> float:
    """Mean squared error of two batches in [-1, 1], on the [0, 1] pixel scale: mean(((a - b) / 2)^2), each
    clipped to the data range first (what ``invert`` reports as ``mse`` and ``random_mse``)."""
    return ((a.float().clamp(-1, 1) - b.float().clamp(-1, 1)) / 2).pow(2).mean().item()


def lerp(a: torch.Tensor, b: torch.Tensor, weight: float) -> torch.Tensor:
    """The straight line between ``a`` and ``b``: :math:`(1 - w)\\,a + w\\,b`."""
    return (1 - weight) * a + weight * b


def slerp(a: torch.Tensor, b: torch.Tensor, weight: float) -> torch.Tensor:
    r"""Spherical interpolation between ``a`` and ``b``, each batch item on its own (Shoemake 1985):

    .. math::  \frac{\sin((1-w)\theta)}{\sin\theta}\,a + \frac{\sin(w\theta)}{\sin\theta}\,b,
               \qquad \cos\theta = \frac{\langle a, b\rangle}{\lVert a\rVert\,\lVert b\rVert}.

    For two independent Gaussian vectors :math:`\theta` is close to 90 degrees, and every point on the arc
    keeps their norm; nearly parallel vectors fall back to :func:`lerp`."""
    flat_a, flat_b = a.flatten(1).double(), b.flatten(1).double()
    cos = (flat_a * flat_b).sum(1) / (flat_a.norm(dim=1) * flat_b.norm(dim=1))
    theta = cos.clamp(-1, 1).acos().reshape(-1, *[1] * (a.dim() - 1))
    sin = theta.sin()
    straight = sin.abs() < 1e-6
    safe = torch.where(straight, torch.ones_like(sin), sin)
    arc = (torch.sin((1 - weight) * theta) * a.double() + torch.sin(weight * theta) * b.double()) / safe
    return torch.where(straight, lerp(a.double(), b.double(), weight), arc).to(a.dtype)


def renoise(schedule: NoiseSchedule, x: torch.Tensor, t_from: int, t_to: int, noise: torch.Tensor) -> torch.Tensor:
    r"""Jump forward from the less noisy step ``t_from`` to ``t_to`` (-1 is the clean image) by the forward
    process, :math:`q(x_{t'} \mid x_t) = \mathcal N\big(\sqrt{\bar\alpha_{t'}/\bar\alpha_t}\,x_t,\;
    (1 - \bar\alpha_{t'}/\bar\alpha_t)\,I\big)`."""
    alpha_from = schedule.alpha_bars[t_from] if t_from >= 0 else torch.ones((), device=x.device)
    ratio = schedule.alpha_bars[t_to] / alpha_from
    return ratio.sqrt() * x + (1 - ratio).sqrt() * noise


def inpaint_step(
    schedule: NoiseSchedule,
    x_t: torch.Tensor,
    t: int,
    t_prev: int,
    eps: torch.Tensor,
    known: torch.Tensor,
    mask: torch.Tensor,
    noise: tuple[torch.Tensor, torch.Tensor],
) -> tuple[torch.Tensor, torch.Tensor]:
    r"""One step of the reverse process told the ``known`` pixels (RePaint, Lugmayr et al. 2022, eq. 8),
    t_prev = -1 meaning "done":

    .. math::  x_{t'} = m \odot x_{t'}^\text{unknown} + (1 - m) \odot x_{t'}^\text{known},

    where ``mask`` m is 1 on the pixels to fill, :math:`x_{t'}^\text{unknown}` is the reverse step from
    :math:`x_t` (DDPM's posterior between t and t', :func:`ddim_step` with :math:`\eta = 1`), and
    :math:`x_{t'}^\text{known} = \sqrt{\bar\alpha_{t'}}\,x_0^\text{known} + \sqrt{1-\bar\alpha_{t'}}\,z`, the
    known image noised to the same level (itself at t' = -1). ``noise`` holds the two fresh draws.
    Returns :math:`(x_{t'}, \hat x_0)`."""
    filled, x0 = ddim_step(schedule, x_t, t, t_prev, eps, noise[0], eta=1.0)
    given = renoise(schedule, known, -1, t_prev, noise[1]) if t_prev >= 0 else known
    return torch.where(mask > 0.5, filled, given), x0


def repaint_levels(steps: int, resample: int, jump: int = 1) -> list[int]:
    """RePaint's walk over ``steps`` levels (Lugmayr et al. 2022, their jump schedule): level u counts the
    steps still to go, from ``steps`` (pure noise) to 0 (done). Going down is a denoising step; every ``jump``
    levels (above 0) the walk goes back up ``jump`` levels, ``resample`` - 1 times, before it goes on."""
    jumps = {level: resample - 1 for level in range(jump, steps - jump + 1, jump)}  # never above pure noise
    level, walk = steps, [steps]
    while level > 0:
        level -= 1
        walk.append(level)
        if jumps.get(level, 0) > 0:
            jumps[level] -= 1
            for _ in range(jump):
                level += 1
                walk.append(level)
    return walk


def reconstruction_guided(
    model: NoisePredictor,
    schedule: NoiseSchedule,
    x_t: torch.Tensor,
    t: int,
    known: torch.Tensor,
    mask: torch.Tensor,
    weight: float,
) -> torch.Tensor:
    r"""The noise prediction at ``x_t`` with its clean-image estimate pulled towards the ``known`` pixels
    (reconstruction guidance, Ho et al. 2022, "Video Diffusion Models", eq. 7):

    .. math::  \tilde x_0 = \hat x_0 - \frac{w \sqrt{\bar\alpha_t}}{2}\, \nabla_{x_t}
               \big\lVert (1 - m) \odot (x^\text{known} - \hat x_0(x_t)) \big\rVert^2,
               \qquad \tilde\varepsilon = \frac{x_t - \sqrt{\bar\alpha_t}\,\tilde x_0}{\sqrt{1 - \bar\alpha_t}}.

    Replacing the known pixels alone tells the filled ones nothing until the next step; the gradient
    through the network tells them now which way the known pixels want them to go."""
    alpha_bar = schedule.alpha_bars[t]
    steps = torch.full((x_t.shape[0],), t, device=x_t.device, dtype=torch.long)
    with torch.enable_grad():
        x = x_t.detach().requires_grad_(True)
        x0 = (x - (1 - alpha_bar).sqrt() * model(x, steps).float()) / alpha_bar.sqrt()
        error = ((1 - mask) * (known - x0)).square().sum()
        (gradient,) = torch.autograd.grad(error, x)
    pulled = x0.detach() - weight * alpha_bar.sqrt() / 2 * gradient
    return (x_t - alpha_bar.sqrt() * pulled) / (1 - alpha_bar).sqrt()


@torch.no_grad()
def inpaint(
    model: NoisePredictor,
    schedule: NoiseSchedule,
    known: torch.Tensor,
    mask: torch.Tensor,
    times: list[int],
    resample: int = 1,
    generator: torch.Generator | None = None,
    jump: int = 1,
    guidance: float = 0.0,
) -> Iterator[SamplerStep]:
    r"""Fill the pixels where ``mask`` is 1 so that they fit the ``known`` image, along ``times`` (noisiest
    first), yielding every denoising step; the last step's ``x`` keeps every known pixel exactly.

    Each step down is :func:`inpaint_step`, with the noise prediction of :func:`reconstruction_guided` when
    ``guidance`` w > 0 (a backward pass per step: about three network calls' time). With ``resample`` r > 1
    the walk of :func:`repaint_levels` goes back up ``jump`` steps every ``jump`` steps, r - 1 times
    (:func:`renoise` the whole sample to the noisier level), and denoises again, so the filled region and the
    known one settle into one image. That costs about r network calls a step."""
    if resample < 1 or jump < 1 or guidance < 0:
        raise ValueError(f"resample and jump must be 1 or more, guidance 0 or more; got {resample}, {jump}, {guidance}")

    def draw() -> torch.Tensor:
        return torch.randn(known.shape, generator=generator, device=known.device, dtype=known.dtype)

    def t_at(level: int) -> int:  # the timestep of a level; -1 once done
        return times[len(times) - level] if level > 0 else -1

    walk = repaint_levels(len(times), resample, jump)
    x = draw()
    for index, (level, following) in enumerate(zip(walk, walk[1:], strict=False)):
        jobs.tick()
        t, t_next = t_at(level), t_at(following)
        if following > level:  # back up: the forward process from the less noisy step
            x = renoise(schedule, x, t, t_next, draw())
            continue
        if guidance > 0:
            eps = reconstruction_guided(model, schedule, x, t, known, mask, guidance)
        else:
            eps = model(x, torch.full((x.shape[0],), t, device=x.device, dtype=torch.long)).float()
        x, x0 = inpaint_step(schedule, x, t, t_next, eps, known, mask, (draw(), draw()))
        yield SamplerStep(index=index, total=len(walk) - 1, t=t, x=x, x0_pred=x0)


def edit_predictor(
    model: NoisePredictor,
    schedule: NoiseSchedule,
    guide: NoisePredictor | None,
    autoguidance: float | None,
    dataset: str,
) -> tuple[NoisePredictor, float | None]:
    """The noise predictor an edit denoises with, and its autoguidance w (None: not autoguided): the model
    autoguided by its early self as the fast sampler is (:func:`core.sampling.resolve_autoguidance`, where
    None means the ``dataset``'s measured w), on the steps of :func:`core.samplers.guidance_interval`."""
    w = resolve_autoguidance(
        guide is not None, "dpm++sde", bool(getattr(model, "num_classes", 0)), autoguidance, dataset
    )
    if w is None:
        return model, None
    return autoguided(model, guide, w, guidance_interval(schedule)), w


def region_mask(name: str, shape: tuple[int, ...]) -> torch.Tensor:
    """A mask of ``shape`` (C, H, W), 1 where pixels are to be filled: the ``top``, ``bottom``, ``left`` or
    ``right`` half, or the ``center`` square of half the side."""
    _, height, width = shape
    mask = torch.zeros(shape)
    if name == "top":
        mask[:, : height // 2] = 1
    elif name == "bottom":
        mask[:, height // 2 :] = 1
    elif name == "left":
        mask[:, :, : width // 2] = 1
    elif name == "right":
        mask[:, :, width // 2 :] = 1
    elif name == "center":
        mask[:, height // 4 : height // 4 + math.ceil(height / 2), width // 4 : width // 4 + math.ceil(width / 2)] = 1
    else:
        raise ValueError(f"unknown mask {name!r}; choose one of {', '.join(MASKS)} or a PNG file")
    return mask


def images_to_edit(
    image_shape: tuple[int, ...],
    folder: str | Path | None = None,
    held_out: Dataset | None = None,
    count: int = 64,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, list[str]]:
    """The images an edit starts from, in [-1, 1], and a file name for each: the first ``count`` PNGs of
    ``folder`` (by name), or up to ``count`` images of ``held_out`` (default: MNIST's test set) drawn with
    ``generator``. A ``ValueError`` says so when the model cannot take them (other channels or size)."""
    if folder is not None:
        images = load_image_folder(folder, image_shape[0])[:count]  # a ValueError for no or unreadable PNGs
        paths = image_paths(folder)[:count]
        names, source = [path.name for path in paths], str(folder)
        native = (image_channels(paths[0]), *images.shape[2:])  # as the files are, before any conversion
    else:
        data = held_out if held_out is not None else load_dataset("mnist", "test")
        images = pick_images(data, min(count, len(data)), generator or torch.Generator().manual_seed(0))
        names, source = [f"{i:04d}.png" for i in range(len(images))], f"the {data.name} test set"
        native = tuple(images.shape[1:])
    if tuple(native) != tuple(image_shape):
        raise ValueError(f"the images of {source} are {shape_text(native)}; this model takes {shape_text(image_shape)}")
    return images, names


def shape_text(shape: tuple[int, ...] | torch.Size) -> str:
    """``(1, 28, 28)`` as "28x28 gray", ``(3, 32, 32)`` as "32x32 RGB"."""
    channels, height, width = shape
    return f"{width}x{height} {'gray' if channels == 1 else 'RGB' if channels == 3 else f'{channels}-channel'}"


def load_mask(spec: str, image_shape: tuple[int, ...]) -> torch.Tensor:
    """The mask named by ``spec`` (one of :data:`MASKS`, or a PNG file, white where pixels are to be
    filled) for images of ``image_shape``, as 0s and 1s; a ``ValueError`` for a PNG of another size."""
    if spec in MASKS:
        return region_mask(spec, image_shape)
    path = Path(spec)
    if path.suffix.lower() != ".png" or not path.is_file():
        raise ValueError(f"--mask {spec}: neither one of {', '.join(MASKS)} nor a PNG file")
    mask = read_mask(path)
    _, height, width = image_shape
    if mask.shape != (height, width):
        raise ValueError(f"the mask {path} is {mask.shape[1]}x{mask.shape[0]} pixels; the images are {width}x{height}")
    return (mask > 0).float().expand(image_shape).clone()
