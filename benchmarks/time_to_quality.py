"""Time to quality: train the default recipe and score the EMA model every few minutes of training, until
the classifier recognises at least the target share of its samples (or the epochs run out).

    .venv/bin/python benchmarks/time_to_quality.py                       # MNIST, defaults, every 2 minutes
    .venv/bin/python benchmarks/time_to_quality.py --every 1 --target 0.9 -- --batch_size 64 --lr 2e-3

Arguments after ``--`` are ``ddpm-tui train`` flags, so any recipe can be timed. Minutes are training time
only: the time spent scoring is measured and subtracted. Scores use the recommended fast sampler
(``core.FAST_SAMPLER``) with its default steps.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time

from rich.console import Console
from rich.table import Table

import core
from ddpm_tui.cli import build_parser
from ddpm_tui.flags import setting_overrides


def main() -> None:
    argv = sys.argv[1:]
    split = argv.index("--") if "--" in argv else len(argv)
    ours, train_flags = argv[:split], argv[split + 1 :]
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--every", type=float, default=2.0, help="minutes of training between scores")
    parser.add_argument("--target", type=float, default=0.9, help="recognised share to reach")
    parser.add_argument("--num_images", type=int, default=500)
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
    scoring, next_score, reached, minutes = 0.0, args.every, None, 0.0
    for event in trainer.run():
        if isinstance(event, core.FinishedEvent):
            break
        if isinstance(event, core.StepEvent):
            minutes = (event.elapsed - scoring) / 60
        last = isinstance(event, core.EpochEvent) and event.epoch == trainer.config.epochs
        if minutes < next_score and not last:
            continue
        start = time.perf_counter()
        with core.autocast(trainer.device, trainer.bf16):
            images, _ = core.generate(
                trainer.sampling_model(),
                trainer.schedule,
                args.num_images,
                trainer.data.image_shape,
                core.FAST_SAMPLER,
                seed=0,
                device=trainer.device,
            )
        scores = evaluator.score(images)
        scoring += time.perf_counter() - start
        next_score = minutes + args.every
        table.add_row(
            f"{minutes:.1f}",
            str(trainer.step),
            str(trainer.epoch + (0 if last else 1)),
            f"{scores.frechet_distance:.1f}",
            f"{scores.recognised:.1%}",
            f"{scores.class_entropy:.3f}",
        )
        console.print(
            f"{minutes:.1f} min: recognised {scores.recognised:.1%}, FD {scores.frechet_distance:.1f}", style="dim"
        )
        if scores.recognised >= args.target:
            reached = minutes
            break
    console.print(table)
    console.print(
        f"recognised >= {args.target:.0%} after {reached:.1f} min of training"
        if reached is not None
        else f"recognised >= {args.target:.0%} was not reached in {trainer.config.epochs} epochs"
    )


if __name__ == "__main__":
    main()
