"""Turning tensors in [-1, 1] into image files: grids, one PNG per image, animated GIFs, and plots."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from .curves import smooth


def _torchvision_utils():
    """torchvision's grid and PNG writers, imported on first use: importing torchvision loads all of its
    models and operators, over a second that every command (and the app) would pay at start."""
    from torchvision import utils

    return utils


def to_unit(x: torch.Tensor) -> torch.Tensor:
    """Map model-range images [-1, 1] to [0, 1], clamped."""
    return ((x.detach().float().cpu() + 1.0) / 2.0).clamp(0.0, 1.0)


def grid_tensor(x: torch.Tensor, nrow: int | None = None, padding: int = 2) -> torch.Tensor:
    """A batch (B, C, H, W) in [-1, 1] laid out as one (C', H', W') image in [0, 1], ``nrow`` per row
    (default: a square-ish grid)."""
    nrow = nrow or max(1, math.ceil(math.sqrt(x.shape[0])))
    return _torchvision_utils().make_grid(to_unit(x), nrow=nrow, padding=padding, pad_value=1.0)


def save_grid(x: torch.Tensor, path: str | Path, nrow: int | None = None) -> Path:
    """Save a batch as one grid PNG; returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _torchvision_utils().save_image(grid_tensor(x, nrow), path)
    return path


def export_images(x: torch.Tensor, folder: str | Path, names: list[str] | None = None) -> list[Path]:
    """Save every image of a batch as its own PNG at native resolution: ``names``, or ``0000.png``,
    ``0001.png``, ..."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths, save_image = [], _torchvision_utils().save_image
    for i, image in enumerate(to_unit(x)):
        path = folder / (names[i] if names else f"{i:04d}.png")
        save_image(image, path)
        paths.append(path)
    return paths


def to_pil(grid: torch.Tensor, scale: int = 1) -> Image.Image:
    """A (C, H, W) image in [0, 1] as a PIL image, enlarged ``scale`` times with nearest neighbour."""
    array = (grid.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    image = Image.fromarray(array[..., 0] if array.shape[2] == 1 else array)
    return image.resize((image.width * scale, image.height * scale), Image.NEAREST) if scale > 1 else image


def save_gif(
    frames: Sequence[torch.Tensor],
    path: str | Path,
    nrow: int | None = None,
    frame_ms: int = 120,
    hold_last_ms: int = 1500,
    scale: int = 2,
) -> Path:
    """Save batches (each B, C, H, W in [-1, 1]) as an animated GIF of grids, looping, the last frame held."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    images = [to_pil(grid_tensor(f, nrow), scale) for f in frames]
    durations = [frame_ms] * (len(images) - 1) + [hold_last_ms]
    images[0].save(path, save_all=True, append_images=images[1:], duration=durations, loop=0)
    return path


def snapshot_indices(total: int, frames: int = 20) -> list[int]:
    """About ``frames`` step indices out of ``total`` sampling steps, denser near the end (t near 0),
    where the image takes shape; the first and last are always included."""
    if total <= frames:
        return list(range(total))
    u = np.linspace(0.0, 1.0, frames)
    picks = np.round((1 - (1 - u) ** 2) * (total - 1)).astype(int)
    return sorted(set(picks.tolist()) | {0, total - 1})


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_schedule(betas: np.ndarray, alpha_bars: np.ndarray, name: str, path: str | Path) -> Path:
    r"""Plot :math:`\beta_t`, :math:`\bar\alpha_t` and :math:`\sqrt{\bar\alpha_t}` against t."""
    plt = _pyplot()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    t = np.arange(len(betas))
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    ax1.plot(t, betas, color="tab:red")
    ax1.set(title=f"{name} schedule: noise added per step", xlabel="t", ylabel=r"$\beta_t$")
    ax2.plot(t, alpha_bars, label=r"$\bar\alpha_t$ (signal variance kept)")
    ax2.plot(t, np.sqrt(alpha_bars), label=r"$\sqrt{\bar\alpha_t}$ (signal scale)")
    ax2.plot(t, np.sqrt(1 - alpha_bars), label=r"$\sqrt{1-\bar\alpha_t}$ (noise scale)", linestyle="--")
    ax2.set(title="how much of $x_0$ survives to step t", xlabel="t", ylim=(0, 1.02))
    ax2.legend()
    for ax in (ax1, ax2):
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def plot_loss(losses: Sequence[float], path: str | Path, epoch_steps: Sequence[int] = ()) -> Path:
    """Plot per-step training loss and its smoothed curve on a log scale, epochs marked."""
    plt = _pyplot()
    path = Path(path)
    fig, ax = plt.subplots(figsize=(9, 4))
    steps = np.arange(1, len(losses) + 1)
    ax.plot(steps, losses, alpha=0.3, linewidth=0.8, label="loss per step")
    ax.plot(steps, smooth(losses), linewidth=2, label="smoothed")
    for s in epoch_steps:
        ax.axvline(s, color="gray", alpha=0.2, linewidth=0.8)
    ax.set(xlabel="step", ylabel="mean squared error of the prediction", yscale="log", title="training loss (L_simple)")
    ax.grid(alpha=0.3, which="both")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def plot_forward_grid(
    rows: torch.Tensor, timesteps: Sequence[int], alpha_bars: Sequence[float], path: str | Path
) -> Path:
    r"""A labelled grid: one row per image, one column per timestep (``rows`` is N, K, C, H, W)."""
    plt = _pyplot()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    n, k = rows.shape[:2]
    fig, axes = plt.subplots(n, k, figsize=(1.3 * k, 1.3 * n + 0.6), squeeze=False)
    images = to_unit(rows)
    for i in range(n):
        for j in range(k):
            ax = axes[i][j]
            image = images[i, j].permute(1, 2, 0).numpy()
            ax.imshow(image[..., 0] if image.shape[2] == 1 else image, cmap="gray", vmin=0, vmax=1)
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0:
                ax.set_title(f"t = {timesteps[j]}\n" + r"$\bar\alpha_t$" + f" = {alpha_bars[j]:.3f}", fontsize=8)
    fig.suptitle(
        r"forward diffusion $q(x_t \mid x_0)$: "
        r"$x_t = \sqrt{\bar\alpha_t}\,x_0 + \sqrt{1-\bar\alpha_t}\,\epsilon$"
    )
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def plot_inspection(
    rows: torch.Tensor,
    titles: Sequence[str],
    row_labels: Sequence[str],
    profile: dict[str, Sequence[float]],
    sweeps: dict[int, tuple[Sequence[int], Sequence[float]]],
    path: str | Path,
) -> Path:
    r"""A labelled figure of the network at several t (``rows`` is N, K, 3, H, W: one row per t, columns
    titled ``titles``), above two charts: the mean errors of ``profile`` (``"t"`` against each other
    key) on a log scale, and for each t of ``sweeps`` the noise error when the network is told
    :math:`t_	ext{model}`, with the true t marked."""
    plt = _pyplot()
    path = Path(path)
    n, k = rows.shape[:2]
    fig = plt.figure(figsize=(max(1.4 * k, 10), 1.4 * n + 3.6))
    grid = fig.add_gridspec(n + 1, k, height_ratios=[1] * n + [2.4])
    images = to_unit(rows)
    for i in range(n):
        for j in range(k):
            ax = fig.add_subplot(grid[i, j])
            ax.imshow(images[i, j].permute(1, 2, 0).numpy())
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0:
                ax.set_title(titles[j], fontsize=9)
            if j == 0:
                ax.set_ylabel(row_labels[i], fontsize=8)
    half = k // 2
    errors = fig.add_subplot(grid[n, :half])
    for key, values in profile.items():
        if key != "t":
            errors.plot(profile["t"], values, label=key)
    errors.set(xlabel="t", yscale="log", title="mean squared error over t")
    errors.legend(fontsize=7)
    told = fig.add_subplot(grid[n, half:])
    for t, (t_models, values) in sweeps.items():
        (line,) = told.plot(t_models, values, label=f"x_t made at t = {t}")
        told.axvline(t, color=line.get_color(), linestyle=":", linewidth=1)
    told.set(xlabel="t_model (the step the network is told)", yscale="log", title="MSE(ε_hat, ε) against the t told")
    told.legend(fontsize=7)
    for ax in (errors, told):
        ax.grid(alpha=0.3, which="both")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def read_grid(path: str | Path, image_size: int, padding: int = 2) -> torch.Tensor:
    """Read back the images of a grid PNG written by :func:`save_grid`, as (B, C, H, W) in [-1, 1]."""
    with Image.open(path) as image:
        array = np.asarray(image.convert("RGB"), dtype=np.float32) / 127.5 - 1.0
    step = image_size + padding
    rows, columns = (array.shape[0] - padding) // step, (array.shape[1] - padding) // step
    cells = [
        array[
            padding + r * step : padding + r * step + image_size, padding + c * step : padding + c * step + image_size
        ]
        for r in range(rows)
        for c in range(columns)
    ]
    batch = torch.from_numpy(np.stack(cells)).permute(0, 3, 1, 2)
    gray = torch.allclose(batch[:, :1], batch[:, 1:2]) and torch.allclose(batch[:, :1], batch[:, 2:])
    return batch[:, :1].contiguous() if gray else batch


def image_paths(folder: str | Path) -> list[Path]:
    """The PNG files of ``folder``, sorted by name."""
    return sorted(Path(folder).glob("*.png"))


GRAY_MODES = ("1", "L", "LA", "I", "I;16", "F")


def image_channels(path: str | Path) -> int:
    """1 for a gray image file (a gray mode, or RGB whose three channels are equal everywhere, as many tools
    save gray images), 3 for a colour one."""
    with Image.open(path) as image:
        if image.mode in GRAY_MODES:
            return 1
        rgb = np.asarray(image.convert("RGB"))
    return 1 if (rgb == rgb[..., :1]).all() else 3


def read_mask(path: str | Path) -> torch.Tensor:
    """A PNG as a (H, W) boolean mask, True where it is light (gray level above 127); ``ValueError`` if it is
    not a readable image."""
    try:
        with Image.open(path) as image:
            return torch.from_numpy(np.asarray(image.convert("L")) > 127)
    except (OSError, SyntaxError, ValueError) as err:
        raise ValueError(f"{path} is not a readable image ({type(err).__name__})") from None


def load_image_folder(folder: str | Path, channels: int = 1) -> torch.Tensor:
    """All PNG images in ``folder`` (sorted by name) as (N, C, H, W) in [-1, 1], converted to gray
    (``channels=1``) or RGB whatever their mode; they must share one size. A file that is not an image, or
    of another size, is a ``ValueError`` naming it."""
    paths = image_paths(folder)
    if not paths:
        raise ValueError(f"no .png images in {folder}")
    mode = "L" if channels == 1 else "RGB"
    arrays = []
    for path in paths:
        try:
            with Image.open(path) as image:
                arrays.append(np.asarray(image.convert(mode), dtype=np.float32))
        except (OSError, SyntaxError, ValueError) as err:  # PIL's UnidentifiedImageError is an OSError
            raise ValueError(f"{path} is not a readable image ({type(err).__name__})") from None
        if arrays[-1].shape != arrays[0].shape:
            raise ValueError(
                f"{path} is {arrays[-1].shape[1]}x{arrays[-1].shape[0]} pixels but {paths[0].name} is "
                f"{arrays[0].shape[1]}x{arrays[0].shape[0]}: all images must have one size"
            )
    batch = torch.from_numpy(np.stack(arrays)) / 127.5 - 1.0
    return batch.unsqueeze(1) if channels == 1 else batch.permute(0, 3, 1, 2)
