"""Recipe search: train named variants of the default recipe for the same number of optimiser steps and
score each with several samplers, so what changes quality can be told from noise.

    .venv/bin/python benchmarks/recipe_search.py --variants adamw muon --epochs 10
    .venv/bin/python benchmarks/recipe_search.py --variants muon --seeds 0 1 2 --epochs 20 --num_images 1000

Quality after a fixed number of steps does not depend on the machine's speed, so several searches can run
at once (``--threads 1`` each) and their rows are appended to one JSON-lines file (``--results``). Every
row scores the EMA weights with each sampler and the raw weights with the first one. ``--show FILE``
prints the table of a results file.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import harness  # benchmarks/ is on the path when a script in it runs
import torch
from rich.console import Console
from rich.table import Table

import core

# Every variant names all the settings it is about, so rows stay comparable when the defaults change.
HO_2020 = {
    "prediction": "eps",
    "schedule": "linear",
    "timestep_density": "uniform",
    "upsample": "resize_conv",
    "time_conditioning": "add",
    "attention": "lowest",
    "lr": 1e-3,
    "grad_clip": 0.0,
    "optimiser": "adamw",
}
VARIANTS: dict[str, dict[str, Any]] = {
    "eps_linear": HO_2020,  # the recipe before this search: Ho et al.'s objective and schedule
    "eps_linear_lognormal": {**HO_2020, "timestep_density": "lognormal"},
    "v_linear": {**HO_2020, "prediction": "v"},
    "v_linear_lognormal": {**HO_2020, "prediction": "v", "timestep_density": "lognormal"},
    "v_linear_lognormal_lr2e-3": {
        **HO_2020,
        "prediction": "v",
        "timestep_density": "lognormal",
        "lr": 2e-3,
        "grad_clip": 1.0,
    },
    "v_cosine": {**HO_2020, "prediction": "v", "schedule": "cosine"},
    "v_cosine_scale_shift": {**HO_2020, "prediction": "v", "schedule": "cosine", "time_conditioning": "scale_shift"},
    "v_cosine_conv_resize": {**HO_2020, "prediction": "v", "schedule": "cosine", "upsample": "conv_resize"},
    "v_cosine_lr2e-3": {**HO_2020, "prediction": "v", "schedule": "cosine", "lr": 2e-3, "grad_clip": 1.0},
}
# The log-normal t density on the cosine schedule, ln(sigma) ~ N(MEAN, STD^2) (EDM's -1.2 and 1.2 first);
# named v_cosine_conv_resize_lognormal+MEAN, with _stdSTD when STD is not 1.2.
V_COSINE_CONV_RESIZE = VARIANTS["v_cosine_conv_resize"]
for _mean, _std in ((-1.2, 1.2), (0.0, 1.2), (0.5, 1.2), (1.0, 1.2), (0.5, 0.8), (0.5, 1.6)):
    VARIANTS[f"v_cosine_conv_resize_lognormal{_mean:+.1f}" + ("" if _std == 1.2 else f"_std{_std}")] = {
        **V_COSINE_CONV_RESIZE,
        "timestep_density": "lognormal",
        "log_sigma_mean": _mean,
        "log_sigma_std": _std,
    }
# The recipe this search chose, trained by AdamW, and by Muon for the weight matrices (the default now).
VARIANTS["adamw"] = VARIANTS["v_cosine_conv_resize_lognormal+0.5_std0.8"]
VARIANTS["muon"] = {**VARIANTS["adamw"], "optimiser": "muon"}
# Cheaper networks, and shorter epochs, that would buy back Muon's minutes (docs/muon.md).
VARIANTS["muon_width24"] = {**VARIANTS["muon"], "base_channels": 24}
VARIANTS["muon_16_1x3x4"] = {**VARIANTS["muon"], "base_channels": 16, "channel_mults": (1, 3, 4)}
VARIANTS["muon_16_1x4x4"] = {**VARIANTS["muon"], "base_channels": 16, "channel_mults": (1, 4, 4)}
VARIANTS["muon_4480_images"] = {**VARIANTS["muon"], "max_images": 4480}
# Self-attention nowhere: 1.16x the training speed (docs/attention.md).
VARIANTS["muon_no_attention"] = {**VARIANTS["muon"], "attention": "none"}


def parse_sampler(text: str) -> tuple[str, int]:
    """``name:steps``, e.g. ``dpm++:20``."""
    name, _, steps = text.partition(":")
    return name, int(steps) if steps else core.DEFAULT_STEPS[name]


def score(
    model: torch.nn.Module,
    trainer: core.Trainer,
    evaluator: core.Evaluator,
    sampler: str,
    steps: int | None,
    count: int,
    **sampling: Any,
) -> dict[str, float]:
    """Sample ``count`` images (seed 0; ``sampling`` passes on, e.g. ``guide`` and ``autoguidance``) and
    score them: FD, recognised share, class entropy, seconds taken."""
    shape, device = trainer.data.image_shape, trainer.device
    images, _, seconds = harness.draw(model, trainer.schedule, shape, sampler, steps, count, device, **sampling)
    return {**harness.figures(evaluator.score(images)), "seconds": round(seconds, 1)}


def run_variant(name: str, seed: int, args: argparse.Namespace, evaluator: core.Evaluator) -> dict[str, Any]:
    overrides = {**VARIANTS[name], **json.loads(args.extra)}
    config = core.TrainConfig(
        **{
            "epochs": args.epochs,
            "seed": seed,
            "sample_every": 10_000,
            "output_dir": tempfile.mkdtemp(prefix=f"recipe-{name}-"),
            **overrides,
        }
    )
    trainer = core.Trainer(config)
    start = time.perf_counter()
    for event in trainer.run():
        if isinstance(event, core.FinishedEvent):
            break
    row: dict[str, Any] = {
        "variant": name,
        "overrides": overrides,
        "config": dataclasses.asdict(config),
        "seed": seed,
        "epochs": args.epochs,
        "steps": trainer.step,
        "train_minutes": round((time.perf_counter() - start) / 60, 2),
        "threads": torch.get_num_threads(),
        "num_images": args.num_images,
        "scores": {},
    }
    for i, (sampler, steps) in enumerate(args.samplers):
        row["scores"][f"{sampler}:{steps}"] = score(
            trainer.sampling_model(), trainer, evaluator, sampler, steps, args.num_images
        )
        if i == 0:
            raw = core.noise_predictor(trainer.model.eval(), trainer.schedule, config.prediction)
            row["scores"][f"raw {sampler}:{steps}"] = score(raw, trainer, evaluator, sampler, steps, args.num_images)
    return row


def show(path: Path, console: Console) -> None:
    rows = list(harness.read(path))
    columns = sorted({key for row in rows for key in row["scores"]}, key=lambda k: (k.startswith("raw"), k))
    table = Table(title=f"{path}: FD / recognised per sampler (EMA weights unless 'raw')")
    for column in ("variant", "seed", "steps", "min", *columns):
        table.add_column(column, justify="right")
    for row in rows:
        cells = [row["scores"].get(c) for c in columns]
        table.add_row(
            row["variant"],
            str(row["seed"]),
            str(row["steps"]),
            f"{row['train_minutes']:.1f}",
            *[f"{c['fd']:.1f} / {c['recognised']:.1%}" if c else "-" for c in cells],
        )
    console.print(table)


def main() -> None:
    parser = harness.parser(__doc__, Path("outputs/recipe_search.jsonl"))
    parser.set_defaults(num_images=500)
    parser.add_argument("--variants", nargs="+", choices=tuple(VARIANTS), default=["muon"])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--epochs", type=int, default=10, help="screening budget (the default recipe has 20)")
    parser.add_argument("--extra", default="{}", help="JSON of TrainConfig overrides applied to every variant")
    parser.add_argument(
        "--samplers",
        type=parse_sampler,
        nargs="+",
        default=[parse_sampler(s) for s in ("dpm++:20", "dpm++sde:50", "ddim:50")],
    )
    args = parser.parse_args()
    console = Console(width=200)
    if harness.only_show(args, show, console):
        return
    evaluator = core.Evaluator(core.load_classifier(json.loads(args.extra).get("dataset", "mnist")))
    for seed in args.seeds:
        for name in args.variants:
            harness.record(args.results, run_variant(name, seed, args, evaluator))
    show(args.results, console)


if __name__ == "__main__":
    main()
