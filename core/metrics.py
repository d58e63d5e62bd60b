r"""Scores for generated images, measured in a trained classifier's feature space.

* **Frechet distance** between Gaussians fitted to the features of generated and real images
  (Heusel et al. 2017): :math:`\|\mu_g-\mu_r\|^2 + \mathrm{Tr}\big(\Sigma_g+\Sigma_r-2(\Sigma_g\Sigma_r)^{1/2}\big)`.
  Lower is better; 0 means the same mean and covariance.
* **Recognised**: the share of images the classifier assigns to some class with probability >= 0.9.
* **Class entropy**: the entropy of the histogram of predicted classes divided by log K, so 1.0 means
  all K classes equally often and 0 means one class only (mode collapse).
* **Class shares**: the share of images the classifier assigns to each class (a balanced data set gives
  each of K classes about 1/K).
* **Per-class accuracy** (class-conditional models): of the images generated for class k, the share the
  classifier assigns to k.

Each score is reported beside two references of the same count: real held-out images (the floor), and the
training images themselves, which is what a model that had learned its training set perfectly would score.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch

from .classifier import Classifier, classifier_split

CONFIDENT = 0.9


def frechet_distance(features_a: torch.Tensor, features_b: torch.Tensor) -> float:
    r"""Frechet distance between Gaussians fitted to two feature sets (N, D), computed in float64.

    :math:`\mathrm{Tr}\,(\Sigma_a\Sigma_b)^{1/2}` is the sum of the square roots of the eigenvalues of
    :math:`\Sigma_a^{1/2}\Sigma_b\Sigma_a^{1/2}`, a symmetric matrix, so ``eigh`` suffices.
    """
    a, b = features_a.double(), features_b.double()
    mu_a, mu_b = a.mean(0), b.mean(0)
    cov_a, cov_b = torch.cov(a.T), torch.cov(b.T)
    values, vectors = torch.linalg.eigh(cov_a)
    sqrt_a = vectors @ torch.diag(values.clamp(min=0).sqrt()) @ vectors.T
    cross = torch.linalg.eigvalsh(sqrt_a @ cov_b @ sqrt_a).clamp(min=0).sqrt().sum()
    return float((mu_a - mu_b).pow(2).sum() + cov_a.trace() + cov_b.trace() - 2 * cross)


def recognised_share(probabilities: torch.Tensor, threshold: float = CONFIDENT) -> float:
    """Share of images whose most likely class has probability >= ``threshold``."""
    return float((probabilities.max(dim=1).values >= threshold).float().mean())


def class_entropy(probabilities: torch.Tensor) -> float:
    """Entropy of the predicted-class histogram over log K: 1 for all classes equally often, 0 for one."""
    classes = probabilities.shape[1]
    counts = torch.bincount(probabilities.argmax(dim=1), minlength=classes).double()
    p = counts / counts.sum()
    p = p[p > 0]
    return float(-(p * p.log()).sum() / math.log(classes)) + 0.0  # + 0.0 turns -0.0 into 0.0


def class_shares(probabilities: torch.Tensor) -> list[float]:
    """The share of images whose most likely class is k, for each of the K classes."""
    counts = torch.bincount(probabilities.argmax(dim=1), minlength=probabilities.shape[1])
    return (counts.double() / len(probabilities)).tolist()


# Below this class entropy most images are one class (0.5: about 70% one digit, the rest spread evenly).
ONE_CLASS_ENTROPY = 0.5
ONE_CLASS_NOTE = "nearly all one class, so the recognised share says little"


def one_class_warning(entropy: float) -> str | None:
    """A caution where the recognised share misleads: below ``ONE_CLASS_ENTROPY`` nearly every image is the
    same class, so "recognised" means the classifier is sure which digit they all resemble, not that they
    are good digits (an untrained network's blobs can be 80% "recognised" as one digit). None otherwise."""
    if entropy >= ONE_CLASS_ENTROPY:
        return None
    return f"class entropy {entropy:.2f}: {ONE_CLASS_NOTE}"


def per_class_accuracy(probabilities: torch.Tensor, labels: torch.Tensor) -> list[float]:
    """For each class k, the share of images requested as k that the classifier assigns to k (NaN if none)."""
    hits = probabilities.argmax(dim=1) == labels
    return [
        float(hits[labels == k].float().mean()) if (labels == k).any() else math.nan
        for k in range(probabilities.shape[1])
    ]


@dataclass(frozen=True)
class Scores:
    count: int
    frechet_distance: float
    recognised: float
    class_entropy: float
    class_accuracy: list[float] | None = None
    class_shares: list[float] | None = None

    @property
    def mean_class_accuracy(self) -> float | None:
        """The share of all requested images drawn as their class (None for unconditional samples)."""
        if self.class_accuracy is None:
            return None
        return sum(self.class_accuracy) / len(self.class_accuracy)

    def to_dict(self) -> dict:
        return asdict(self)


class Evaluator:
    """Scores image sets of one dataset against its held-out reference images."""

    def __init__(self, classifier: Classifier) -> None:
        self.classifier = classifier
        training, floor_pool, references = classifier_split(classifier.dataset)
        self.training_pool = training.images
        self.floor_pool = floor_pool.images
        self.reference_labels = references.labels
        self.reference_features, _ = classifier.features_and_probabilities(references.images)

    def score(self, images: torch.Tensor, labels: torch.Tensor | None = None) -> Scores:
        """Score ``images``; with the ``labels`` they were generated for, also per-class accuracy."""
        features, probabilities = self.classifier.features_and_probabilities(images)
        accuracy = per_class_accuracy(probabilities, labels) if labels is not None else None
        return Scores(
            len(images),
            frechet_distance(features, self.reference_features),
            recognised_share(probabilities),
            class_entropy(probabilities),
            accuracy,
            class_shares(probabilities),
        )

    def floor(self, count: int) -> Scores:
        """The scores of ``count`` real images that are neither references nor classifier training data."""
        if count > len(self.floor_pool):
            raise ValueError(f"at most {len(self.floor_pool)} images can be compared with real ones")
        return self.score(self.floor_pool[:count])

    def training(self, count: int) -> Scores:
        """The scores of the first ``count`` training images (the first images of the bundled subset, which
        every model of the dataset trains on): what a model that reproduced its training set would score.
        They are the classifier's training images too, so they are not the floor."""
        if count > len(self.training_pool):
            raise ValueError(f"at most {len(self.training_pool)} training images can be scored")
        return self.score(self.training_pool[:count])
