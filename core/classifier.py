"""A small classifier of the dataset's classes, used as the feature extractor for evaluation.

Inception features, the usual basis of FID, say little about 28x28 gray digits, so MNIST-like data is
scored in the feature space of a LeNet-style network trained on the dataset itself (the "Frechet
LeNet distance"). The package ships one trained classifier per scored dataset (``core/assets``, made by
``scripts/bundle_classifiers.py`` with :func:`train_classifier`), so every machine scores with the same
network; ``retrain=True`` trains one here (about half a minute on two CPU cores) and caches it.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .checkpoint import CheckpointError, atomic_save
from .data import Dataset, cache_dir, load_bundled, load_dataset

SCORED_DATASETS: tuple[str, ...] = ("mnist", "fashion_mnist")
FEATURES = 128
EPOCHS = 12
BATCH = 128


class LeNet(nn.Module):
    """Two conv-pool stages and two dense layers; :meth:`features` is the 128-d penultimate layer."""

    def __init__(self, in_channels: int = 1, classes: int = 10) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, 32, 3, padding=1)
        self.conv2 = nn.Conv2d(32, 64, 3, padding=1)
        self.fc1 = nn.LazyLinear(FEATURES)
        self.dropout = nn.Dropout(0.3)
        self.fc2 = nn.Linear(FEATURES, classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        h = F.max_pool2d(F.relu(self.conv1(x)), 2)
        h = F.max_pool2d(F.relu(self.conv2(h)), 2)
        return F.relu(self.fc1(h.flatten(1)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.dropout(self.features(x)))


@dataclass
class Classifier:
    """A trained classifier with its held-out accuracy."""

    model: LeNet
    dataset: str
    test_accuracy: float

    @torch.no_grad()
    def features_and_probabilities(self, images: torch.Tensor, batch: int = 500) -> tuple[torch.Tensor, torch.Tensor]:
        """Penultimate features (N, 128) and class probabilities (N, classes) of images in [-1, 1]."""
        self.model.eval()
        feats, probs = [], []
        for chunk in images.split(batch):
            f = self.model.features(chunk.float())
            feats.append(f)
            probs.append(self.model.fc2(f).softmax(dim=1))
        return torch.cat(feats), torch.cat(probs)


def shift_augment(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Random shifts of up to 2 pixels, so 5,000 training digits generalise like many more."""
    dx, dy = (torch.randint(-2, 3, (2,), generator=generator)).tolist()
    return torch.roll(x, shifts=(dy, dx), dims=(2, 3))


def train_classifier(train: Dataset, test: Dataset, epochs: int = EPOCHS, seed: int = 0) -> Classifier:
    """Train on ``train`` and report accuracy on ``test`` (which evaluation never uses as references)."""
    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    model = LeNet(train.images.shape[1], int(train.labels.max()) + 1)
    model(train.images[:2])
    optimizer = torch.optim.Adam(model.parameters(), lr=2e-3)
    steps = epochs * -(-len(train) // BATCH)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=3e-3, total_steps=steps)
    for _ in range(epochs):
        model.train()
        for idx in torch.randperm(len(train), generator=generator).split(BATCH):
            loss = F.cross_entropy(model(shift_augment(train.images[idx], generator)), train.labels[idx])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            scheduler.step()
    model.eval()
    with torch.no_grad():
        predicted = torch.cat([model(chunk).argmax(1) for chunk in test.images.split(1000)])
    accuracy = (predicted == test.labels).float().mean().item()
    return Classifier(model, train.name, accuracy)


def classifier_split(dataset: str) -> tuple[Dataset, Dataset, Dataset]:
    """(classifier training images, classifier test images, evaluation references).

    The bundled training subset trains the classifier; the test set is split in two fixed halves:
    the first measures the classifier's accuracy, the second holds the real images that generated
    ones are compared with, so references are never the classifier's training images.
    """
    train = load_bundled(dataset, "train")
    test = load_dataset(dataset, "test")
    order = torch.randperm(len(test), generator=torch.Generator().manual_seed(0))
    half = len(test) // 2
    return train, test.subset(order[:half], "classifier half"), test.subset(order[half:], "reference half")


def classifier_payload(classifier: Classifier, image_shape: tuple[int, ...]) -> dict[str, Any]:
    """What a cached classifier holds: its weights, the image shape and its held-out accuracy."""
    return {
        "model": classifier.model.state_dict(),
        "in_channels": image_shape[0],
        "classes": classifier.model.fc2.out_features,
        "size": list(image_shape[1:]),
        "test_accuracy": classifier.test_accuracy,
    }


def save_bundled(classifier: Classifier, image_shape: tuple[int, ...], path: Path) -> None:
    """Write a classifier to ship: plain fp16 arrays in a compressed ``.npz`` (no pickle), ``w.`` before
    each weight's name."""
    payload = classifier_payload(classifier, image_shape)
    arrays = {f"w.{k}": v.half().numpy() if v.is_floating_point() else v.numpy() for k, v in payload["model"].items()}
    meta = {k: np.asarray(payload[k]) for k in ("in_channels", "classes", "size", "test_accuracy")}
    np.savez_compressed(path, **arrays, **meta)


def _build(payload: dict[str, Any], dataset: str) -> Classifier:
    model = LeNet(int(payload["in_channels"]), int(payload["classes"]))
    model(torch.zeros(1, int(payload["in_channels"]), *[int(v) for v in payload["size"]]))
    model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in payload["model"].items()})
    return Classifier(model.eval(), dataset, float(payload["test_accuracy"]))


def _read_cached(path: Path, dataset: str) -> Classifier:
    return _build(torch.load(path, map_location="cpu", weights_only=True), dataset)


def _read_bundled(dataset: str) -> Classifier:
    with resources.as_file(bundled_classifier_path(dataset)) as path, np.load(path) as arrays:
        model = {k[2:]: torch.from_numpy(arrays[k].copy()) for k in arrays.files if k.startswith("w.")}
        payload = {k: arrays[k].tolist() for k in arrays.files if not k.startswith("w.")}
    return _build({**payload, "model": model}, dataset)


def bundled_classifier_path(dataset: str):
    """Where the package ships the trained classifier of ``dataset`` (it may not exist)."""
    return resources.files("core") / "assets" / f"classifier_{dataset}.npz"


def load_classifier(dataset: str, retrain: bool = False) -> Classifier:
    """The classifier for ``dataset``: one trained here earlier (``retrain=True`` caches one), else the
    one the package ships, else trained now and cached."""
    path = cache_dir() / "classifiers" / f"{dataset}.pt"
    if path.exists() and not retrain:
        try:
            return _read_cached(path, dataset)
        except Exception:  # a damaged or outdated cache is simply trained again
            path.unlink(missing_ok=True)
    if bundled_classifier_path(dataset).is_file() and not retrain:
        return _read_bundled(dataset)
    train, test, _ = classifier_split(dataset)
    classifier = train_classifier(train, test)
    try:
        atomic_save(classifier_payload(classifier, tuple(train.images.shape[1:])), Path(path))
    except OSError as err:
        raise CheckpointError(f"cannot cache the classifier at {path}: {err}") from None
    return classifier
