"""ddpm-tui's PyTorch core: everything the command line and the app compute, with no UI code.

Front ends import only the names listed in ``__all__``.
"""

from .checkpoint import CheckpointError, LoadedModel, atomic_save, build_model, load_checkpoint, load_model
from .config import MODEL_PRESETS, ConfigError, TrainConfig
from .data import CLASS_NAMES, DATA_MODES, DATASETS, DataError, Dataset, load_dataset
from .device import DEVICES, DeviceError, autocast, configure_for_speed, describe, resolve_device, use_bf16
from .ema import EMA
from .classifier import SCORED_DATASETS, Classifier, load_classifier
from .images import (export_images, grid_tensor, load_image_folder, plot_forward_grid, plot_loss, plot_schedule, read_grid, save_gif,
                     save_grid, smooth, snapshot_indices)
from .run_control import REQUESTS, STATES, RunStatus, process_alive, read_status, send_request
from .metrics import Evaluator, Scores, class_entropy, frechet_distance, per_class_accuracy, recognised_share
from .objective import l_simple
from .samplers import (DEFAULT_STEPS, SAMPLERS, NoisePredictor, SamplerStep, ddim_step, ddim_timesteps, ddpm_step, dpm_solver_step, generate,
                       guided, sample, sampler_timesteps)
from .schedule import SCHEDULES, NoiseSchedule, display_timesteps
from .trainer import EpochEvent, check_writable, Event, FinishedEvent, StepEvent, Trainer, TrainingError
from .unet import UNet, count_parameters, timestep_embedding

__all__ = [
    "CLASS_NAMES", "DATASETS", "DEFAULT_STEPS", "MODEL_PRESETS", "SCORED_DATASETS", "DATA_MODES", "DEVICES", "SAMPLERS", "SCHEDULES",
    "CheckpointError", "ConfigError", "DataError", "DeviceError", "TrainingError",
    "Dataset", "EMA", "EpochEvent", "Event", "FinishedEvent", "LoadedModel", "NoisePredictor", "NoiseSchedule", "SamplerStep",
    "StepEvent", "TrainConfig", "Trainer", "UNet",
    "atomic_save", "autocast", "build_model", "check_writable", "configure_for_speed", "count_parameters", "ddim_step",
    "ddim_timesteps", "ddpm_step", "dpm_solver_step", "guided", "sampler_timesteps", "describe", "display_timesteps", "export_images", "grid_tensor", "l_simple",
    "load_checkpoint", "load_dataset", "load_model", "plot_forward_grid", "plot_loss", "plot_schedule", "read_grid",
    "Classifier", "Evaluator", "Scores", "class_entropy", "frechet_distance", "load_classifier",
    "load_image_folder", "per_class_accuracy", "recognised_share", "generate", "process_alive", "read_status", "send_request", "smooth", "REQUESTS", "STATES", "RunStatus",
    "resolve_device", "sample", "save_gif", "save_grid", "snapshot_indices", "timestep_embedding", "use_bf16",
]
