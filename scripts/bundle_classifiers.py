"""Train the scoring classifiers shipped in ``core/assets`` (``classifier_<dataset>.npz``, fp16 arrays).

A maintainer's tool, run by hand after a change to the classifier or the bundled data; the product
never runs it. Shipping them means every machine scores samples with the same network, and the first
``ddpm-tui eval`` or training run does not spend half a minute training one.

    .venv/bin/python scripts/bundle_classifiers.py
"""

from __future__ import annotations

from pathlib import Path

import torch

from core.classifier import SCORED_DATASETS, classifier_split, save_bundled, train_classifier

ASSETS = Path(__file__).resolve().parent.parent / "core" / "assets"


def main() -> None:
    torch.set_num_threads(2)
    for dataset in SCORED_DATASETS:
        train, test, _ = classifier_split(dataset)
        classifier = train_classifier(train, test)
        path = ASSETS / f"classifier_{dataset}.npz"
        save_bundled(classifier, tuple(train.images.shape[1:]), path)
        print(f"{path.name}: held-out accuracy {classifier.test_accuracy:.2%}, {path.stat().st_size:,} bytes")


if __name__ == "__main__":
    main()
