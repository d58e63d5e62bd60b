"""Full-budget runs scored as ``ddpm-tui eval`` scores them, under a grid of sampling settings.

Train each recipe and seed with ``ddpm-tui train`` (one core each, two at a time), then score every run:

    taskset -c 0 .venv/bin/ddpm-tui train --dataset fashion_mnist --seed 0 --threads 1 \\
        --output_dir outputs/fashion/default_s0
    .venv/bin/python benchmarks/fashion_recipe.py --runs outputs/fashion/default_s* \\
        --autoguidance 1 3.5 --threads 1

``--train_seeds S ...`` instead trains each seed as a learner would (``ddpm-tui train --dataset fashion_mnist``,
every default, this machine's cores) and records its wall time beside its scores.

Each row is one run under one setting, scored by ``ddpm-tui eval``'s own function on ``--num_images``
images: Frechet distance, recognised share and class shares beside the same scores for as many real
held-out images (the floor) and as many training images (what a perfect copy of the training set would
score). A conditional run draws every class equally often, guided by ``--guidance_scale``.
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import harness  # benchmarks/ is on the path when a script in it runs
from rich.console import Console
from rich.table import Table

import core
from ddpm_tui.commands.evaluate import evaluate_checkpoint

RESULTS = harness.RECORDS / "fashion-recipe" / "full.jsonl"
# Settings that say where or how a run was made, not what it learned.
NOT_RECIPE = {"output_dir", "seed", "device", "data_dir", "sample_every", "sample_steps"}


def recipe(config: core.TrainConfig) -> dict[str, Any]:
    """The settings where ``config`` differs from the defaults for its dataset (its recipe's name)."""
    default = core.TrainConfig(dataset=config.dataset).validate()
    return {
        field.name: getattr(config, field.name)
        for field in dataclasses.fields(config)
        if field.name not in NOT_RECIPE and getattr(config, field.name) != getattr(default, field.name)
    }


def shares_range(scores: dict[str, Any]) -> list[float]:
    """The rarest and the commonest class's share."""
    return [round(min(scores["class_shares"]), 4), round(max(scores["class_shares"]), 4)]


def run_config(run: Path) -> core.TrainConfig:
    """The settings a run was trained with, from its ``config.json`` (no network is built)."""
    return core.TrainConfig.from_dict(json.loads((run / "config.json").read_text()))


def score_run(run: Path, settings: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    """One run under one sampling setting, as ``ddpm-tui eval`` would score it."""
    checkpoint = run / "model_final.pt"
    config = run_config(run)
    result = evaluate_checkpoint(
        checkpoint, args.num_images, args.sampler, args.steps, args.seed, args.device, **settings
    )
    scores, floor, training = result["scores"], result["floor"], result["training"]
    row = {
        "run": str(run),
        "dataset": config.dataset,
        "seed": config.seed,
        "conditional": config.conditional,
        "recipe": recipe(config),
        "config": dataclasses.asdict(config),
        "sampler": args.sampler,
        "steps": args.steps,
        "settings": {"guidance_scale": result["settings"]["guidance_scale"], "autoguidance": result["autoguidance"]},
        "num_images": args.num_images,
        "sampling_seconds": round(result["sampling_seconds"], 1),
        **harness.figures(core.Scores(**scores)),
        "class_shares": [round(s, 4) for s in scores["class_shares"]],
        "floor": {**harness.figures(core.Scores(**floor)), "class_range": shares_range(floor)},
        "training": {**harness.figures(core.Scores(**training)), "class_range": shares_range(training)},
    }
    row["fd_over_training"] = round(row["fd"] / row["training"]["fd"], 3)
    row["recognised_over_real"] = round(row["recognised"] / row["floor"]["recognised"], 3)
    row["class_range"] = shares_range(scores)
    return row


def train_as_a_learner(seed: int, runs: Path) -> tuple[Path, float]:
    """``ddpm-tui train --dataset fashion_mnist --seed SEED`` with every other default; the run and its seconds."""
    run = runs / f"end_to_end_s{seed}"
    start = time.perf_counter()
    command = ["train", "--dataset", "fashion_mnist", "--epochs", "20", "--seed", str(seed), "--output_dir", str(run)]
    subprocess.run([sys.executable, "-m", "ddpm_tui", *command], check=True)
    return run, time.perf_counter() - start


def show(path: Path, console: Console) -> None:
    table = Table(title=f"{path}: one row per run and sampling setting")
    for column in ("run", "w (cfg / auto)", "FD", "x training", "recognised", "x real", "classes"):
        table.add_column(column, justify="right")
    for r in harness.read(path):
        low, high = r["class_range"]
        guidance = f"{r['settings']['guidance_scale']:g} / {r['settings']['autoguidance'] or 1:g}"
        cells = (f"{r['fd']:.1f}", f"{r['fd_over_training']:.2f}", f"{r['recognised']:.1%}")
        table.add_row(r["run"], guidance, *cells, f"{r['recognised_over_real']:.2f}", f"{low:.1%}-{high:.1%}")
    console.print(table)


def main() -> None:
    parser = harness.parser(__doc__, RESULTS)
    parser.add_argument("--runs", type=Path, nargs="+", default=[], help="run folders holding model_final.pt")
    parser.add_argument("--sampler", default=core.FAST_SAMPLER, choices=core.SAMPLERS)
    parser.add_argument("--autoguidance", type=float, nargs="+", default=[None], help="w; 1 = none")
    parser.add_argument("--guidance_scale", type=float, nargs="+", default=[None], help="w; default by dataset")
    parser.add_argument("--seed", type=int, default=0, help="the sampling seed")
    parser.add_argument("--steps", type=int, help="sampler steps (default: the sampler's, as eval's)")
    parser.add_argument("--train_seeds", type=int, nargs="+", default=[], help="train these seeds first, timed")
    parser.add_argument("--runs_dir", type=Path, default=Path("outputs/fashion"), help="where --train_seeds train")
    args = parser.parse_args()
    console = Console()
    if harness.only_show(args, show, console):
        return
    for seed in args.train_seeds:
        run, seconds = train_as_a_learner(seed, args.runs_dir)
        row = {**score_run(run, {"autoguidance": None, "guidance_scale": None}, args), "train_seconds": round(seconds)}
        harness.record(args.results, row, harness.environment(core.resolve_device(args.device)))
    for run, auto, cfg in itertools.product(args.runs, args.autoguidance, args.guidance_scale):
        if cfg != args.guidance_scale[0] and not run_config(run).conditional:
            continue  # classifier-free guidance needs labels: score an unconditional run once
        settings = {"autoguidance": auto, "guidance_scale": cfg}
        environment = harness.environment(core.resolve_device(args.device))
        harness.record(args.results, score_run(run, settings, args), environment)


if __name__ == "__main__":
    main()
