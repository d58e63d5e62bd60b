"""ddpm-tui's PyTorch core: everything the command line and the app compute, with no UI code.

Front ends import only the names listed in ``__all__``, grouped here by the stage they serve.
"""

# The forward process and its schedules.
from .schedule import SCHEDULES, NoiseSchedule, display_timesteps

# The network.
from .config import MODEL_PRESETS, ConfigError, TrainConfig, resolve_overrides, setting_choices
from .unet import UNet, count_parameters, timestep_embedding

# Data.
from .data import (
    CLASS_NAMES,
    DATA_MODES,
    DATASETS,
    MAX_FORWARD_ROWS,
    DataError,
    Dataset,
    forward_examples,
    load_dataset,
    pick_images,
)

# Training.
from .device import (
    DEVICES,
    PRECISIONS,
    DeviceError,
    autocast,
    configure_for_speed,
    device_label,
    resolve_device,
    use_bf16,
)
from .ema import EMA
from .objective import PREDICTIONS, TIMESTEP_DENSITIES, l_simple, noise_predictor, timestep_probabilities
from .trainer import EpochEvent, FinishedEvent, StepEvent, Trainer, TrainingError
from .distributed import DistributedError

# Sampling.
from .samplers import (
    DEFAULT_ETA,
    DEFAULT_STEPS,
    SIGMA_MAX,
    GUIDANCE_SIGMA_MAX,
    GUIDANCE_SIGMA_MIN,
    FAST_SAMPLER,
    SAMPLERS,
    NoisePredictor,
    autoguided,
    guidance_interval,
    guided_calls,
    ddim_step,
    ddim_timesteps,
    log_snr_timesteps,
    ddpm_step,
    dpm_solver_sde_step,
    dpm_solver_step,
    guided,
    last_step,
    resolve_eta,
    sample,
    sampler_timesteps,
)
from .sampling import (
    ALL_CLASSES,
    DEFAULT_AUTOGUIDANCE,
    default_autoguidance,
    default_autoguidance_text,
    DEFAULT_GUIDANCE,
    SamplingPlan,
    class_labels,
    generate,
    autoguided_steps,
    plan_sampling,
)

# Evaluating.
from .classifier import SCORED_DATASETS, Classifier, load_classifier
from .metrics import (
    ONE_CLASS_NOTE,
    Evaluator,
    Scores,
    class_entropy,
    frechet_distance,
    one_class_warning,
    per_class_accuracy,
    recognised_share,
)

# Run files: checkpoints, run control, images and curves.
from .checkpoint import (
    CheckpointError,
    LoadedModel,
    atomic_save,
    build_model,
    find_checkpoints,
    load_checkpoint,
    load_model,
)
from .curves import smooth
from .files import OutputError, check_writable
from .images import (
    export_images,
    load_image_folder,
    plot_forward_grid,
    plot_inspection,
    plot_schedule,
    read_grid,
    save_gif,
    save_grid,
    snapshot_indices,
)
from .run_control import RunStatus, read_status, send_request

# Inside a trained network.
from .inspect import (
    INSPECT_TIMESTEPS,
    PANELS,
    Bottleneck,
    ErrorProfile,
    Level,
    Prediction,
    describe_levels,
    embedding_map,
    error_profile,
    panels,
    predict,
    profile_timesteps,
    skips_cut,
    structure_lines,
    time_sweep,
    unet_of,
    wrong_time,
)

__all__ = [
    # the forward process
    "SCHEDULES",
    "NoiseSchedule",
    "display_timesteps",
    # the network
    "MODEL_PRESETS",
    "ConfigError",
    "TrainConfig",
    "UNet",
    "count_parameters",
    "resolve_overrides",
    "setting_choices",
    "timestep_embedding",
    # data
    "CLASS_NAMES",
    "DATA_MODES",
    "DATASETS",
    "MAX_FORWARD_ROWS",
    "DataError",
    "Dataset",
    "forward_examples",
    "load_dataset",
    "pick_images",
    # training
    "DEVICES",
    "PRECISIONS",
    "DeviceError",
    "EMA",
    "EpochEvent",
    "FinishedEvent",
    "PREDICTIONS",
    "StepEvent",
    "TIMESTEP_DENSITIES",
    "Trainer",
    "TrainingError",
    "DistributedError",
    "autocast",
    "configure_for_speed",
    "device_label",
    "l_simple",
    "noise_predictor",
    "resolve_device",
    "timestep_probabilities",
    "use_bf16",
    # sampling
    "ALL_CLASSES",
    "DEFAULT_AUTOGUIDANCE",
    "default_autoguidance",
    "default_autoguidance_text",
    "DEFAULT_GUIDANCE",
    "DEFAULT_ETA",
    "DEFAULT_STEPS",
    "SIGMA_MAX",
    "FAST_SAMPLER",
    "SAMPLERS",
    "NoisePredictor",
    "autoguided",
    "guidance_interval",
    "guided_calls",
    "autoguided_steps",
    "GUIDANCE_SIGMA_MAX",
    "GUIDANCE_SIGMA_MIN",
    "SamplingPlan",
    "class_labels",
    "plan_sampling",
    "ddim_step",
    "ddim_timesteps",
    "log_snr_timesteps",
    "ddpm_step",
    "dpm_solver_sde_step",
    "dpm_solver_step",
    "generate",
    "guided",
    "last_step",
    "resolve_eta",
    "sample",
    "sampler_timesteps",
    # evaluating
    "SCORED_DATASETS",
    "Classifier",
    "Evaluator",
    "Scores",
    "class_entropy",
    "frechet_distance",
    "load_classifier",
    "per_class_accuracy",
    "recognised_share",
    "one_class_warning",
    "ONE_CLASS_NOTE",
    # run files
    "CheckpointError",
    "LoadedModel",
    "OutputError",
    "RunStatus",
    "atomic_save",
    "build_model",
    "find_checkpoints",
    "check_writable",
    "export_images",
    "load_checkpoint",
    "load_image_folder",
    "load_model",
    "plot_forward_grid",
    "plot_inspection",
    "plot_schedule",
    "read_grid",
    "read_status",
    "save_gif",
    "save_grid",
    "send_request",
    "smooth",
    "snapshot_indices",
    # inside a trained network
    "INSPECT_TIMESTEPS",
    "PANELS",
    "Bottleneck",
    "ErrorProfile",
    "Level",
    "Prediction",
    "describe_levels",
    "embedding_map",
    "error_profile",
    "panels",
    "predict",
    "profile_timesteps",
    "skips_cut",
    "structure_lines",
    "time_sweep",
    "unet_of",
    "wrong_time",
]
