"""The settings of a training run: one source of their defaults, choices, limits and documentation.

Each field of :class:`TrainConfig` is a ``ddpm-tui train`` flag of the same name; the command line builds
its flags, help and checks from the field's :func:`setting`, and the app's Train form its fields, so a
default or a limit is changed here and nowhere else. Every checkpoint stores its run's settings.
"""

from __future__ import annotations

import math
from dataclasses import Field, asdict, dataclass, field, fields
from typing import Any

from .data import CLASS_NAMES, DATA_MODES, DATASETS, DEFAULT_SIZE_CAP, FOLDER, IMAGE_SIZES
from .device import DEVICES, PRECISIONS
from .objective import LOGNORMAL_MEAN, LOGNORMAL_STD, PREDICTIONS, TIMESTEP_DENSITIES
from .optimiser import OPTIMISERS
from .schedule import SCHEDULES
from .unet import ATTENTIONS, DECODERS, TIME_CONDITIONINGS, UPSAMPLINGS

LR_SCHEDULES: tuple[str, ...] = ("constant", "cosine")
# The CPU-sized networks leave out self-attention (measured on MNIST: no loss, 1.16x the training speed) and take the
# lean decoder (docs/decoder.md: 1.4x the training speed, so 30 epochs take the minutes of 20 with the full one and
# score better). The GPU-sized ones keep Ho et al.'s attention at the lowest resolution and Ho et al.'s full decoder,
# where CIFAR-10's objects are not measured.
MODEL_PRESETS: dict[str, dict[str, Any]] = {
    "tiny": {
        "base_channels": 16,
        "channel_mults": (1, 2, 2),
        "num_res_blocks": 1,
        "attention": "none",
        "decoder": "lean",
    },
    "small": {
        "base_channels": 32,
        "channel_mults": (1, 2, 2),
        "num_res_blocks": 1,
        "attention": "none",
        "decoder": "lean",
    },
    "base": {
        "base_channels": 64,
        "channel_mults": (1, 2, 2),
        "num_res_blocks": 2,
        "attention": "lowest",
        "decoder": "full",
    },
    "large": {
        "base_channels": 128,
        "channel_mults": (1, 2, 2, 2),
        "num_res_blocks": 2,
        "attention": "lowest",
        "decoder": "full",
    },
}

# What a checkpoint written before a field existed was trained with, whatever today's default is.
BEFORE_THE_FIELD_EXISTED: dict[str, Any] = {
    "prediction": "eps",
    "timestep_density": "uniform",
    "log_sigma_mean": LOGNORMAL_MEAN,
    "log_sigma_std": LOGNORMAL_STD,
    "grad_clip": 0.0,
    "time_conditioning": "add",
    "upsample": "resize_conv",
    "guide_at": 0.0,
    "optimiser": "adamw",
    "attention": "lowest",
    "decoder": "full",
}


# Where in the run the autoguidance snapshot is kept, for each dataset it was measured on (docs/autoguidance.md: which
# snapshot guides; a harder push for clothes): an earlier, worse guide pushes harder. Others take MNIST's.
DEFAULT_GUIDE_AT: dict[str, float] = {"mnist": 0.4, "fashion_mnist": 0.2}


# Datasets whose runs learn class-conditional generation unless asked otherwise (docs/fashion-mnist.md: told each
# garment's class and drawing every class equally often, clothes come within twice the distance of the training
# images themselves, where an unconditional model stays three to five times away). Others train unconditionally, as
# Ho et al. 2020 did.
DEFAULT_CONDITIONAL: dict[str, bool] = {"fashion_mnist": True}


def default_conditional(dataset: str) -> bool:
    """Whether a run on ``dataset`` learns class-conditional generation unless asked otherwise."""
    return DEFAULT_CONDITIONAL.get(dataset, False)


def default_guide_at(dataset: str) -> float:
    """The fraction of the epochs after which a run on ``dataset`` keeps its guide unless asked otherwise."""
    return DEFAULT_GUIDE_AT.get(dataset, DEFAULT_GUIDE_AT["mnist"])


def default_guide_at_text() -> str:
    """The measured defaults as the help prints them, e.g. "0.4 for mnist, 0.2 for fashion_mnist"."""
    return ", ".join(f"{at:g} for {dataset}" for dataset, at in DEFAULT_GUIDE_AT.items())


class ConfigError(ValueError):
    """A setting is out of range; the message names the flag and what it accepts."""


def setting(
    default: Any,
    help: str,
    choices: tuple[str, ...] | None = None,
    low: float | None = None,
    open_low: bool = False,
    high: float | None = None,
) -> Any:
    """A field of :class:`TrainConfig`: its default, a one-line ``help``, and what it accepts: one of
    ``choices``, or a number of at least ``low`` (above it with ``open_low``) and below ``high``."""
    return field(
        default=default, metadata={"help": help, "choices": choices, "low": low, "open_low": open_low, "high": high}
    )


def check_value(spec: Field, value: Any) -> str | None:
    """Why ``value`` is not acceptable for the setting ``spec`` ("must be ..."), or None when it is."""
    meta = spec.metadata
    if value is None or isinstance(value, (bool, tuple, list)):
        return None
    if meta["choices"] is not None:
        return None if value in meta["choices"] else f"must be one of {', '.join(meta['choices'])}"
    if isinstance(value, float) and not math.isfinite(value):
        return "must be a finite number"
    low, high = meta["low"], meta["high"]
    if low is not None and (value <= low if meta["open_low"] else value < low):
        if str(spec.type).startswith("int") and low == 1:
            return "must be a positive integer"
        if low == 0:
            return "must be positive" if meta["open_low"] else "must be 0 or more"
        return f"must be at least {low:g}"
    if high is not None and value >= high:
        return f"must be below {high:g}"
    return None


@dataclass
class TrainConfig:
    """Everything that defines a training run (the command line's flags, with the same names)."""

    dataset: str = setting(
        "mnist", "the images to learn (folder: your own, from --data_dir, see docs/own-images.md)", (*DATASETS, FOLDER)
    )
    data: str = setting(
        "subset", "subset: the bundled subset; full: the full dataset; auto: full when available", DATA_MODES
    )
    data_dir: str | None = setting(
        None, "folder with the dataset's files (implies --data full); with --dataset folder, your images"
    )
    image_size: int | None = setting(
        None,
        f"with --dataset folder: the images' side, {IMAGE_SIZES[0]} to {IMAGE_SIZES[1]} (shorter side resized, centre "
        f"cropped; default: the folder's most common size, at most {DEFAULT_SIZE_CAP})",
        low=1,
    )
    channels: int | None = setting(None, "with --dataset folder: 1 (gray) or 3 (RGB); default gray if all images are")
    hflip: bool = setting(
        False, "mirror a random half of each batch left-right (photographs; not digits or text; CIFAR-10 always does)"
    )
    max_images: int | None = setting(None, "train on only the first N images (quick experiments)", low=1)
    epochs: int = setting(30, "passes over the data", low=1)
    batch_size: int = setting(32, "images per optimiser step", low=1)
    optimiser: str = setting(
        "muon", "muon: Muon for the weight matrices, AdamW for the rest; adamw: AdamW for everything", OPTIMISERS
    )
    lr: float = setting(1e-3, "peak learning rate, reached after the warm-up", low=0, open_low=True)
    warmup_steps: int = setting(100, "optimiser steps of linear learning-rate warm-up", low=0)
    lr_schedule: str = setting("cosine", "after warm-up: cosine decay to 0 at the last step, or constant", LR_SCHEDULES)
    timesteps: int = setting(1000, "T, the number of diffusion steps", low=2)
    schedule: str = setting("cosine", "the noise schedule beta_t", SCHEDULES)
    base_channels: int = setting(32, "U-Net width of the first level (a multiple of 8)", low=8)
    channel_mults: tuple[int, ...] = setting((1, 2, 2), "width multiplier of each resolution level")
    num_res_blocks: int = setting(1, "residual blocks per level on the down path", low=1)
    time_conditioning: str = setting(
        "add", "how t enters each block: added, or as a GroupNorm scale and shift", TIME_CONDITIONINGS
    )
    upsample: str = setting(
        "conv_resize", "up path: resize then convolve, or convolve at the lower resolution first", UPSAMPLINGS
    )
    attention: str = setting(
        "none",
        "where self-attention runs: after every block at the lowest resolution and in the bottleneck, in the "
        "bottleneck only, or nowhere (at 7x7 a few 3x3 convolutions already see the whole digit: no attention "
        "trains 1.16x faster and scored as well)",
        ATTENTIONS,
    )
    decoder: str = setting(
        "lean",
        "up path: lean, a stage per residual block narrowing as it upsamples (a third fewer multiply-adds, so 30 "
        "epochs take the minutes of 20 with the other), or full, a stage per down-path tensor (Ho et al.)",
        DECODERS,
    )
    ema_decay: float = setting(
        0.999,
        "largest decay of the weights' moving average used for sampling; its warm-up (1 + n)/(10 + n) reaches "
        "0.999 only after 8,990 steps, so in the default run's 4,710 any cap above 0.998 has no effect",
        low=0,
        high=1,
    )
    guide_at: float | None = setting(
        None,
        "keep the EMA weights at this fraction of the epochs as the worse model that autoguides sampling; "
        f"0 = none (default: as measured for the dataset, {default_guide_at_text()})",
        low=0,
        high=1,
    )
    conditional: bool | None = setting(
        None,
        "learn class-conditional generation (labels dropped 10% of the time, for classifier-free guidance); "
        "default on for " + ", ".join(name for name, on in DEFAULT_CONDITIONAL.items() if on) + ", off elsewhere",
    )
    min_snr_gamma: float = setting(0.0, "Min-SNR loss weighting min(SNR, gamma)/SNR; 0 = off", low=0)
    prediction: str = setting("v", "what the network predicts: the noise eps, or the velocity v", PREDICTIONS)
    timestep_density: str = setting(
        "lognormal", "how training steps are drawn: log-normal in noise level, or uniformly", TIMESTEP_DENSITIES
    )
    log_sigma_mean: float = setting(
        0.5,
        "with the log-normal density: the mean of ln(sigma) the steps are drawn around (0.5: sigma 1.65, "
        "where digits take shape; EDM's -1.2 suits images whose detail forms later)",
    )
    log_sigma_std: float = setting(
        0.8,
        "with the log-normal density: the standard deviation of ln(sigma) (0.8: 95% of the steps between "
        "sigma 0.34 and 8; EDM's 1.2 spreads them wider)",
        low=0,
        open_low=True,
    )
    grad_clip: float = setting(0.0, "clip the gradient's norm to this; 0 = off", low=0)
    output_dir: str = setting("outputs", "the run folder")
    seed: int = setting(0, "seed of the weights, the data order and the noise")
    device: str = setting("auto", "auto: CUDA, then Apple MPS, then the CPU", DEVICES)
    precision: str = setting("auto", "auto: bf16 autocast where the hardware has it", PRECISIONS)
    sample_every: int = setting(1, "write (and rate) a preview grid every N epochs", low=1)
    sample_steps: int = setting(10, "sampler steps for the preview grid", low=1)

    def __post_init__(self) -> None:
        if self.guide_at is None:
            self.guide_at = default_guide_at(self.dataset)
        if self.conditional is None:
            self.conditional = default_conditional(self.dataset)

    def validate(self) -> TrainConfig:
        """Raise :class:`ConfigError` for the first bad value; return self when all are fine."""
        for spec in fields(self):
            problem = check_value(spec, getattr(self, spec.name))
            if problem is not None:
                raise ConfigError(f"--{spec.name} {problem}, got {getattr(self, spec.name)!r}")
        if self.base_channels % 8:
            raise ConfigError(
                f"--base_channels must be a multiple of 8 (GroupNorm's 8 groups), got {self.base_channels}"
            )
        if not self.channel_mults or min(self.channel_mults) < 1:
            raise ConfigError("--channel_mults must be one or more positive integers")
        self._validate_folder()
        return self

    def _validate_folder(self) -> None:
        """The settings of ``--dataset folder``: a folder, and an image size and channels it can take."""
        if self.dataset == FOLDER and not self.data_dir:
            raise ConfigError("--dataset folder needs --data_dir PATH, the folder of your images")
        for name in ("image_size", "channels"):
            if getattr(self, name) is not None and self.dataset != FOLDER:
                raise ConfigError(f"--{name} applies to --dataset folder only; {self.dataset} images have one size")
        low, high = IMAGE_SIZES
        if self.image_size is not None and not low <= self.image_size <= high:
            raise ConfigError(f"--image_size must be {low} to {high} pixels, got {self.image_size}")
        if self.channels not in (None, 1, 3):
            raise ConfigError(f"--channels must be 1 (gray) or 3 (RGB), got {self.channels}")

    def to_dict(self) -> dict[str, Any]:
        """Plain values only (lists, not tuples), safe for JSON and for ``torch.load(weights_only=True)``."""
        values = asdict(self)
        values["channel_mults"] = list(self.channel_mults)
        return values

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TrainConfig:
        """Inverse of :meth:`to_dict`; unknown keys (from newer versions) are ignored, and keys an older
        version did not write take the value that version used."""
        known = {f.name for f in fields(cls)}
        kept = {**BEFORE_THE_FIELD_EXISTED, **{k: v for k, v in values.items() if k in known}}
        if "channel_mults" in kept:
            kept["channel_mults"] = tuple(kept["channel_mults"])
        return cls(**kept)

    def model_kwargs(self, classes: int | None = None) -> dict[str, Any]:
        """The arguments of :class:`core.unet.UNet` this run uses (besides the input channels), for a
        dataset of ``classes`` classes (default: as many as the named dataset has)."""
        classes = len(CLASS_NAMES.get(self.dataset, ())) if classes is None else classes
        return {
            "base_channels": self.base_channels,
            "channel_mults": tuple(self.channel_mults),
            "num_res_blocks": self.num_res_blocks,
            "num_classes": classes if self.conditional else 0,
            "time_conditioning": self.time_conditioning,
            "upsample": self.upsample,
            "attention": self.attention,
            "decoder": self.decoder,
        }

    @property
    def model_name(self) -> str:
        """The ``--model`` preset this run's U-Net matches, or "custom"."""
        mine = {
            "base_channels": self.base_channels,
            "channel_mults": tuple(self.channel_mults),
            "num_res_blocks": self.num_res_blocks,
            "attention": self.attention,
            "decoder": self.decoder,
        }
        return next((name for name, preset in MODEL_PRESETS.items() if preset == mine), "custom")


def settings() -> tuple[Field, ...]:
    """The fields of :class:`TrainConfig`, each with its ``metadata`` (help, choices, limits)."""
    return fields(TrainConfig)


def setting_choices(name: str) -> tuple[str, ...]:
    """What the setting ``name`` accepts, for a setting with a fixed set of choices."""
    return next(spec.metadata["choices"] for spec in settings() if spec.name == name)


def resolve_overrides(given: dict[str, Any], model: str | None = None) -> dict[str, Any]:
    """Settings asked for by name, completed: the ``model`` preset (see ``MODEL_PRESETS``) sets the U-Net's
    size where no size was given, and a ``data_dir`` means the full dataset unless ``data`` says otherwise.
    Channel multipliers become a tuple. Settings not given keep the config's defaults."""
    resolved = dict(given)
    if resolved.get("data_dir") is not None and "data" not in resolved:
        resolved["data"] = "full"
    if model is not None:
        if model not in MODEL_PRESETS:
            raise ConfigError(f"--model must be one of {', '.join(MODEL_PRESETS)}, got {model!r}")
        resolved = {**MODEL_PRESETS[model], **resolved}
    if "channel_mults" in resolved:
        resolved["channel_mults"] = tuple(resolved["channel_mults"])
    return resolved
