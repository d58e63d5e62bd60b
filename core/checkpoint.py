"""Saving and loading checkpoints: atomically on write, safely on read.

A checkpoint is a plain dictionary of tensors, numbers, strings and lists. Writing goes to a temporary
file in the same folder, which is flushed, fsynced and renamed over the target, so a killed process never
leaves a half-written model. Reading always uses ``torch.load(weights_only=True)``, which refuses pickles
that would run code. Every failure becomes a :class:`CheckpointError` with a one-line message.
"""

from __future__ import annotations

import os
import pickle
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .config import TrainConfig
from .data import CLASS_NAMES, Dataset
from .objective import noise_predictor
from .schedule import NoiseSchedule
from .unet import UNet

FORMAT = "ddpm-tui"
VERSION = 1


class CheckpointError(Exception):
    """A checkpoint is missing, unreadable, corrupt, unsafe or not one of ours."""


def atomic_save(payload: dict[str, Any], path: Path) -> None:
    """Write ``payload`` with ``torch.save`` so that ``path`` holds either the old file or the whole new one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(payload, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    if hasattr(os, "O_DIRECTORY"):
        dir_fd = os.open(path.parent, os.O_DIRECTORY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def make_payload(config: TrainConfig, image_shape: tuple[int, ...], model_state: dict, **extra: Any) -> dict:
    """The fields every checkpoint has, plus ``extra`` (optimiser, step, RNG states, ... for resuming)."""
    return {
        "format": FORMAT,
        "version": VERSION,
        "config": config.to_dict(),
        "image_shape": list(image_shape),
        "model": model_state,
        **extra,
    }


def data_entry(data: Dataset) -> dict[str, Any]:
    """What a checkpoint records of its training images: where they came from, how many, and the class
    names (never the images: ``sample`` and ``inspect`` need no data)."""
    return {"source": data.source, "images": len(data), "classes": list(data.classes)}


def class_names(payload: dict[str, Any], config: TrainConfig) -> tuple[str, ...]:
    """The names of a checkpoint's classes: those it recorded, else its named dataset's."""
    recorded = payload.get("data", {}).get("classes") if isinstance(payload.get("data"), dict) else None
    return tuple(recorded) if recorded else CLASS_NAMES.get(config.dataset, ())


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Read and check a checkpoint; raise :class:`CheckpointError` with a clear reason otherwise."""
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"checkpoint not found: {path}")
    if path.is_dir():
        raise CheckpointError(f"{path} is a folder; pass the checkpoint file inside it (e.g. {path}/model_final.pt)")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except PermissionError:
        raise CheckpointError(f"cannot read {path}: permission denied") from None
    except pickle.UnpicklingError as err:
        if "global" in str(err).lower():  # the pickle names a Python callable: code, not data
            raise CheckpointError(
                f"refused to load {path}: it contains Python objects other than tensors and plain values "
                "(a pickle that could run code); only load checkpoints you trust with other tools"
            ) from None
        raise CheckpointError(f"{path} is corrupt or truncated ({_first_line(err)})") from None
    except Exception as err:  # a damaged file can fail anywhere inside the unpickler
        raise CheckpointError(f"{path} is corrupt or truncated ({_first_line(err)})") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a ddpm-tui checkpoint (no '{FORMAT}' format marker)")
    if payload.get("version", 0) > VERSION:
        raise CheckpointError(f"{path} was written by a newer ddpm-tui (format version {payload['version']})")
    for key in ("config", "image_shape", "model"):
        if key not in payload:
            raise CheckpointError(f"{path} is incomplete: it has no {key!r}")
    return payload


def _first_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return text[0] if text else type(err).__name__


@dataclass
class LoadedModel:
    """A network ready to sample with, and everything needed to use it correctly."""

    model: nn.Module
    schedule: NoiseSchedule
    config: TrainConfig
    image_shape: tuple[int, int, int]
    payload: dict[str, Any]
    guide: nn.Module | None = None  # the early EMA snapshot that autoguides sampling, if the run kept one
    class_names: tuple[str, ...] = ()  # the names of the classes it learned, in label order


def build_model(config: TrainConfig, image_shape: tuple[int, ...], class_names: tuple[str, ...] | None = None) -> UNet:
    """The U-Net described by ``config`` for images of ``image_shape`` (C, H, W) with ``class_names``
    (default: its named dataset's classes)."""
    classes = None if class_names is None else len(class_names)
    return UNet(in_channels=image_shape[0], **config.model_kwargs(classes))


def load_model(path: str | Path, device: torch.device | str = "cpu") -> LoadedModel:
    """Load a checkpoint's network (its EMA weights when it has them) in eval mode, as a noise predictor
    (see :func:`core.objective.noise_predictor`), with its schedule, and its autoguidance model (the
    early EMA snapshot, see ``TrainConfig.guide_at``) when it has one.

    The model size, schedule and T always come from the checkpoint itself.
    """
    return _model_from(load_checkpoint(path), str(path), device)


def untrained_model(config: TrainConfig, data: Dataset, device: torch.device | str = "cpu") -> LoadedModel:
    """The network ``config`` trains on ``data``, freshly initialised, as :func:`load_model` would load it from
    that run's checkpoint: the same layers, wrapper and schedule (for compiling it ahead, see
    :func:`core.sampling.compile_for_sampling`)."""
    model = build_model(config, data.image_shape, data.classes)
    payload = make_payload(config, data.image_shape, model.state_dict(), data=data_entry(data))
    return _model_from(payload, f"the {config.dataset} network", device)


def _model_from(payload: dict[str, Any], source: str, device: torch.device | str) -> LoadedModel:
    """The :class:`LoadedModel` of a checkpoint's ``payload``; ``source`` names it in errors."""
    try:
        config = TrainConfig.from_dict(payload["config"])
        image_shape = tuple(int(v) for v in payload["image_shape"])
        schedule = NoiseSchedule.create(config.schedule, config.timesteps).to(device)
        names = class_names(payload, config)
        networks = [payload.get("ema", payload["model"])] + ([payload["guide"]] if "guide" in payload else [])
        predictors = []
        for state in networks:
            model = build_model(config, image_shape, names)
            model.load_state_dict(state)
            predictors.append(noise_predictor(model.to(device).eval(), schedule, config.prediction))
    except (TypeError, ValueError, KeyError, RuntimeError) as err:
        raise CheckpointError(f"{source} does not match this version of ddpm-tui ({_first_line(err)})") from None
    guide = predictors[1] if len(predictors) > 1 else None
    return LoadedModel(predictors[0], schedule, config, image_shape, payload, guide, names)  # type: ignore[arg-type]


@dataclass(frozen=True)
class CheckpointTraits:
    """What a checkpoint can be asked for when sampling: a class (``conditional``, then classifier-free
    guidance too) and autoguidance (``guided``: it kept an early EMA snapshot)."""

    dataset: str
    conditional: bool
    guided: bool
    class_names: tuple[str, ...] = ()

    def unavailable(self) -> dict[str, str]:
        """The sampling settings this checkpoint cannot use, each with the reason a front end shows."""
        reasons = {}
        if not self.conditional:
            reasons.update(class_label="this model has no classes", guidance_scale="this model has no classes")
        if not self.guided:
            reasons["autoguidance"] = "this model kept no guide"
        return reasons


def checkpoint_traits(path: str | Path) -> CheckpointTraits:
    """A checkpoint's :class:`CheckpointTraits`, read without building its networks."""
    payload = load_checkpoint(path)
    try:
        config = TrainConfig.from_dict(payload["config"])
    except (TypeError, ValueError, KeyError) as err:
        raise CheckpointError(f"{path} does not match this version of ddpm-tui ({_first_line(err)})") from None
    return CheckpointTraits(config.dataset, config.conditional, "guide" in payload, class_names(payload, config))


def find_checkpoints(root: str | Path) -> list[Path]:
    """``model_final.pt`` and ``checkpoint.pt`` files in ``root`` and one level of run folders below it
    (a run still training offers its latest ``checkpoint.pt``)."""
    found: list[Path] = []
    for pattern in ("model_final.pt", "*/model_final.pt", "checkpoint.pt", "*/checkpoint.pt"):
        found += sorted(Path(root).glob(pattern))
    return found
