"""The settings of a training run, validated in one place and stored in every checkpoint."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

from .data import CLASS_NAMES, DATA_MODES, DATASETS
from .schedule import SCHEDULES

LR_SCHEDULES: tuple[str, ...] = ("constant", "cosine")
MODEL_PRESETS: dict[str, dict[str, Any]] = {
    "tiny": {"base_channels": 16, "channel_mults": (1, 2, 2), "num_res_blocks": 1},
    "small": {"base_channels": 32, "channel_mults": (1, 2, 2), "num_res_blocks": 1},
    "base": {"base_channels": 64, "channel_mults": (1, 2, 2), "num_res_blocks": 2},
    "large": {"base_channels": 128, "channel_mults": (1, 2, 2, 2), "num_res_blocks": 2},
}


class ConfigError(ValueError):
    """A setting is out of range; the message names the flag and what it accepts."""


@dataclass
class TrainConfig:
    """Everything that defines a training run (the command line's flags, with the same names)."""

    dataset: str = "mnist"
    data: str = "subset"
    data_dir: str | None = None
    max_images: int | None = None
    epochs: int = 20
    batch_size: int = 32
    lr: float = 1e-3
    warmup_steps: int = 100
    lr_schedule: str = "cosine"
    timesteps: int = 1000
    schedule: str = "linear"
    base_channels: int = 32
    channel_mults: tuple[int, ...] = (1, 2, 2)
    num_res_blocks: int = 1
    ema_decay: float = 0.999
    conditional: bool = False
    min_snr_gamma: float = 0.0
    output_dir: str = "outputs"
    seed: int = 0
    device: str = "auto"
    precision: str = "auto"
    sample_every: int = 1
    sample_steps: int = 20

    def validate(self) -> TrainConfig:
        """Raise :class:`ConfigError` for the first bad value; return self when all are fine."""
        checks = [
            (self.epochs > 0, "--epochs must be a positive integer"),
            (self.batch_size > 0, "--batch_size must be a positive integer"),
            (self.lr > 0, "--lr must be positive"),
            (self.timesteps >= 2, "--timesteps must be at least 2"),
            (self.base_channels >= 8 and self.base_channels % 8 == 0, "--base_channels must be a multiple of 8"),
            (self.max_images is None or self.max_images > 0, "--max_images must be a positive integer"),
            (self.warmup_steps >= 0, "--warmup_steps must be zero or more"),
            (0.0 <= self.ema_decay < 1.0, "--ema_decay must be in [0, 1)"),
            (self.min_snr_gamma >= 0, "--min_snr_gamma must be 0 (off) or positive"),
            (self.sample_every > 0, "--sample_every must be a positive integer"),
            (self.sample_steps >= 1, "--sample_steps must be a positive integer"),
            (self.dataset in DATASETS, f"unknown dataset {self.dataset!r}; choose one of {', '.join(DATASETS)}"),
            (self.data in DATA_MODES, f"--data must be one of {', '.join(DATA_MODES)}"),
            (self.lr_schedule in LR_SCHEDULES, f"--lr_schedule must be one of {', '.join(LR_SCHEDULES)}"),
            (self.schedule in SCHEDULES, f"--schedule must be one of {', '.join(SCHEDULES)}"),
            (self.precision in ("auto", "fp32", "bf16"), "--precision must be auto, fp32 or bf16"),
        ]
        for ok, message in checks:
            if not ok:
                raise ConfigError(message)
        return self

    def to_dict(self) -> dict[str, Any]:
        """Plain values only (lists, not tuples), safe for JSON and for ``torch.load(weights_only=True)``."""
        values = asdict(self)
        values["channel_mults"] = list(self.channel_mults)
        return values

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TrainConfig:
        """Inverse of :meth:`to_dict`; unknown keys (from newer versions) are ignored."""
        known = {f.name for f in fields(cls)}
        kept = {k: v for k, v in values.items() if k in known}
        if "channel_mults" in kept:
            kept["channel_mults"] = tuple(kept["channel_mults"])
        return cls(**kept)

    def model_kwargs(self) -> dict[str, Any]:
        """The arguments of :class:`core.unet.UNet` this run uses (besides the input channels)."""
        return {
            "base_channels": self.base_channels,
            "channel_mults": tuple(self.channel_mults),
            "num_res_blocks": self.num_res_blocks,
            "num_classes": len(CLASS_NAMES[self.dataset]) if self.conditional else 0,
        }

    @property
    def model_name(self) -> str:
        """The ``--model`` preset this run's U-Net matches, or "custom"."""
        mine = {"base_channels": self.base_channels, "channel_mults": tuple(self.channel_mults),
                "num_res_blocks": self.num_res_blocks}
        return next((name for name, preset in MODEL_PRESETS.items() if preset == mine), "custom")
