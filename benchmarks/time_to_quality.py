"""Time to quality: train the default recipe and score the EMA model every few minutes of training, until
the classifier recognises at least the target share of its samples (or the epochs run out).

    .venv/bin/python benchmarks/time_to_quality.py                       # MNIST, defaults, every 2 minutes
    .venv/bin/python benchmarks/time_to_quality.py --every 1 --target 0.9 -- --batch_size 64 --lr 2e-3

Arguments after ``--`` are ``ddpm-tui train`` flags, so any recipe can be timed. Minutes are training time
only: the time spent scoring is measured and subtracted. Each score is appended to ``--results``
as a record. Scores use the recommended fast sampler
(``core.FAST_SAMPLER``) with its default steps.
"""

from __future__ import annotations

import dataclasses
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import harness  # benchmarks/ is on the path when a script in it runs
from rich.console import Console
from rich.table import Table

import core
from ddpm_tui.cli import build_parser
from ddpm_tui.flags import setting_overrides


def timed_scores(trainer: core.Trainer, evaluator: core.Evaluator, every: float, count: int) -> Iterator[dict]:
    """Train, and every ``every`` minutes of training (and after the last epoch) score ``count`` samples of
    the EMA model; yields each score's row. The minutes leave out the time spent scoring."""
    scoring, next_score, minutes = 0.0, every, 0.0
    for event in trainer.run():
        if isinstance(event, core.FinishedEvent):
            return
        if isinstance(event, core.StepEvent):
            minutes = (event.elapsed - scoring) / 60
        last = isinstance(event, core.EpochEvent) and event.epoch == trainer.config.epochs
        if minutes < next_score and not last:
            continue
        model, shape = trainer.sampling_model(), trainer.data.image_shape
        images, _, seconds = harness.draw(
            model, trainer.schedule, shape, core.FAST_SAMPLER, None, count, trainer.device
        )
        scoring += seconds
        next_score = minutes + every
        epoch = trainer.epoch + (0 if last else 1)
        yield {
            "minutes": round(minutes, 2),
            "step": trainer.step,
            "epoch": epoch,
            **harness.figures(evaluator.score(images)),
        }


def main() -> None:
    argv = sys.argv[1:]
    split = argv.index("--") if "--" in argv else len(argv)
    ours, train_flags = argv[:split], argv[split + 1 :]
    parser = harness.parser(__doc__, Path("outputs/records/time_to_quality.jsonl"))
    parser.set_defaults(num_images=500)
    parser.add_argument("--every", type=float, default=2.0, help="minutes of training between scores")
    parser.add_argument("--target", type=float, default=0.9, help="recognised share to reach")
    args = parser.parse_args(ours)
    overrides = setting_overrides(build_parser().parse_args(["train", *train_flags]))
    overrides.setdefault("output_dir", tempfile.mkdtemp(prefix="time_to_quality-"))
    trainer = core.Trainer(core.TrainConfig(**overrides))
    evaluator = core.Evaluator(core.load_classifier(trainer.config.dataset))
    console = Console(width=160)
    console.print(
        f"{trainer.param_count:,} parameters, {trainer.config.epochs} epochs of "
        f"{trainer.batches_per_epoch} steps, {trainer.device_label}, into {trainer.output_dir}"
    )
    table = Table(
        title=f"time to quality: {args.num_images} {core.FAST_SAMPLER} samples per row, "
        f"floor {evaluator.floor(args.num_images).recognised:.1%} recognised"
    )
    for column in ("training min", "step", "epoch", "FD", "recognised", "entropy"):
        table.add_column(column, justify="right")
    reached = None
    for row in timed_scores(trainer, evaluator, args.every, args.num_images):
        table.add_row(f"{row['minutes']:.1f}", str(row["step"]), str(row["epoch"]), *harness.score_cells(
            {**row, "num_images": 0})[1:])  # fmt: skip
        harness.record(args.results, {"config": dataclasses.asdict(trainer.config), "figures": row})
        if row["recognised"] >= args.target:
            reached = row["minutes"]
            break
    console.print(table)
    console.print(
        f"recognised >= {args.target:.0%} after {reached:.1f} min of training"
        if reached is not None
        else f"recognised >= {args.target:.0%} was not reached in {trainer.config.epochs} epochs"
    )


if __name__ == "__main__":
    main()
