"""Autoguidance search: which early EMA snapshot guides the final model best, and with what w.

    .venv/bin/python benchmarks/autoguidance_search.py --seeds 1 --snapshots 3 5 8 12 --guidance 2 3
    .venv/bin/python benchmarks/autoguidance_search.py --dataset fashion_mnist --snapshots 5 8 --guidance 3 4
    .venv/bin/python benchmarks/autoguidance_search.py --seeds 0 2 --snapshots 8 --guidance 1 3 --num_images 1000

Each seed trains the default recipe once on ``--dataset`` (``--epochs``, default 20) and keeps the EMA
weights after each epoch of ``--snapshots``; then every (snapshot, w) pair samples ``--num_images`` with
the default fast sampler as ``ddpm-tui eval`` runs it: w = 1 is the final model alone (one network call
per step, ``DEFAULT_STEPS`` steps); any other w guides the steps of ``core.guidance_interval`` at two
calls each, with as many steps as the same calls allow (``core.autoguided_steps``). Rows append to a
JSON-lines file (``--results``), so seeds can run in parallel (``--threads 1`` each); ``--show FILE``
prints its table.
"""

from __future__ import annotations

import argparse
import dataclasses
import tempfile
from pathlib import Path

import harness  # benchmarks/ is on the path when a script in it runs
import torch
from recipe_search import score
from rich.console import Console
from rich.table import Table

import core


def train(seed: int, args: argparse.Namespace) -> tuple[core.Trainer, dict[int, dict[str, torch.Tensor]]]:
    """The default recipe for ``args.epochs``, with the EMA weights kept after each snapshot epoch."""
    config = core.TrainConfig(
        dataset=args.dataset,
        epochs=args.epochs,
        seed=seed,
        sample_every=10_000,
        output_dir=tempfile.mkdtemp(prefix="autoguide-"),
    )
    trainer = core.Trainer(config)
    snapshots = {}
    for event in trainer.run():
        if isinstance(event, core.EpochEvent) and event.epoch in args.snapshots:
            snapshots[event.epoch] = {k: v.clone() for k, v in trainer.ema.state_dict().items()}
    return trainer, snapshots


def show(path: Path, console: Console) -> None:
    rows = list(harness.read(path))
    table = Table(title=f"{path}: {core.FAST_SAMPLER}, the same network calls per image in every row")
    for column in ("dataset", "seed", "guide (epoch)", "w", "steps", "images", "FD", "recognised", "entropy"):
        table.add_column(column, justify="right")
    for r in sorted(rows, key=lambda r: (r.get("dataset", "mnist"), r["seed"], r["guide_epoch"] or 0, r["w"])):
        table.add_row(
            r.get("dataset", "mnist"),
            str(r["seed"]),
            "-" if r["w"] == 1 else str(r["guide_epoch"]),
            f"{r['w']:g}",
            str(r["steps"]),
            *harness.score_cells(r),
        )
    console.print(table)


def scored_rows(seed: int, args: argparse.Namespace, evaluator: core.Evaluator) -> list[dict]:
    """Train one seed, then score every (snapshot, w) pair at the same network calls per image."""
    trainer, snapshots = train(seed, args)
    rows = []
    for epoch, state in snapshots.items():
        guide = core.build_model(trainer.config, trainer.data.image_shape).to(trainer.device)
        guide.load_state_dict(state)
        predictor = core.noise_predictor(guide.eval(), trainer.schedule, trainer.config.prediction)
        for w in args.guidance:
            if w == 1 and epoch != min(snapshots):
                continue  # w = 1 ignores the guide: score it once
            steps = core.DEFAULT_STEPS[core.FAST_SAMPLER]
            if w != 1:
                interval = core.guidance_interval(trainer.schedule)
                steps = core.autoguided_steps(trainer.schedule, core.FAST_SAMPLER, interval)
            row = {"dataset": args.dataset, "seed": seed, "guide_epoch": epoch, "w": w, "steps": steps}
            row.update(config=dataclasses.asdict(trainer.config), num_images=args.num_images)
            model = trainer.sampling_model()
            sampler, count = core.FAST_SAMPLER, args.num_images
            row.update(score(model, trainer, evaluator, sampler, None, count, guide=predictor, autoguidance=w))
            rows.append(row)
    return rows


def main() -> None:
    parser = harness.parser(__doc__, Path("outputs/autoguidance_search.jsonl"))
    parser.set_defaults(num_images=500)
    parser.add_argument("--dataset", choices=core.SCORED_DATASETS, default="mnist")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--snapshots", type=int, nargs="+", default=[5], help="epochs whose EMA may guide")
    parser.add_argument("--guidance", type=float, nargs="+", default=[1.0, 1.5], help="autoguidance w (1 = none)")
    args = parser.parse_args()
    console = Console(width=160)
    if harness.only_show(args, show, console):
        return
    evaluator = core.Evaluator(core.load_classifier(args.dataset))
    for seed in args.seeds:
        for row in scored_rows(seed, args, evaluator):
            harness.record(args.results, row)
    show(args.results, console)


if __name__ == "__main__":
    main()
