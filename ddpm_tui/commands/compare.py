"""``ddpm-tui compare RUN_DIR ...``: one table of runs: size, time, speed and sample scores."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import core

from ..console import console, fail, table
from ..flags import add_flag, positive_int
from .evaluate import classifier, evaluate_checkpoint, scored_dataset

NAME = "compare"
HELP = "one table of several runs: size, time, speed and scores"
COMPUTES = True  # a job that shares the cores (core.jobs), with --threads


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dirs", type=Path, nargs="+", metavar="RUN_DIR")
    add_flag(parser, "num_images", type=positive_int, default=1000, help="images per run for scoring")
    add_flag(parser, "sampler", choices=core.SAMPLERS, default=core.FAST_SAMPLER)
    add_flag(parser, "steps", type=positive_int)
    add_flag(parser, "device", choices=core.DEVICES, default="auto")


def run(args: argparse.Namespace) -> int:
    """One table of runs: the answer to "how long?", "which data?" and "is bigger better?"."""
    rows = []
    evaluators: dict[str, core.Evaluator] = {}
    for run_dir in args.run_dirs:
        model = run_dir / "model_final.pt"
        if not model.exists():
            fail(f"{run_dir} has no model_final.pt (is it a finished training run?)")
        config = json.loads((run_dir / "config.json").read_text())
        steps = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
        steps = [r for r in steps if r.get("kind") == "step"]
        dataset = scored_dataset(config["dataset"])
        if dataset not in evaluators:
            evaluators[dataset] = core.Evaluator(classifier(dataset))
        result = evaluate_checkpoint(
            model, args.num_images, args.sampler, args.steps, 0, args.device, evaluators[dataset]
        )
        rows.append((run_dir, config, steps, result))
    t = table(
        "run",
        "data",
        "params",
        "epochs",
        "min",
        "img/s",
        "FD",
        "floor",
        "recog.",
        "entropy",
        title=f"{args.num_images} samples per run ({args.sampler}); FD floor: real vs real",
    )
    for run_dir, config, steps, result in rows:
        rates = sorted(r["images_per_sec"] for r in steps)
        s, f = result["scores"], result["floor"]
        minutes = f"{steps[-1]['elapsed'] / 60:.1f}" if steps else "-"
        rate = f"{rates[len(rates) // 2]:.0f}" if rates else "-"
        t.add_row(
            run_dir.name,
            config["dataset"],
            f"{config['parameters'] / 1e6:.2f}M",
            str(config["epochs"]),
            minutes,
            rate,
            f"{s['frechet_distance']:.2f}",
            f"{f['frechet_distance']:.2f}",
            f"{s['recognised']:.1%}",
            f"{s['class_entropy']:.3f}",
        )
    console.print(t)
    return 0
