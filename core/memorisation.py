r"""Does the model draw new images, or copy its training set? Nearest neighbours in pixel space.

Each image's nearest training image minimises the distance

.. math:: d(x, r) = \sqrt{\tfrac{1}{D} \lVert x - r \rVert^2}, \qquad
          \lVert x - r \rVert^2 = \lVert x \rVert^2 - 2\, x \cdot r + \lVert r \rVert^2,

the root-mean-square difference per pixel on the [0, 1] scale, over D = C x H x W pixels. The expansion
turns the search into one matrix product per chunk of the training set, fast for all 60,000 MNIST digits.

Real images the model never saw are near some training image too (a 7 resembles other 7s). The
threshold is the distance only :data:`MEMORISED_QUANTILE` (5%) of held-out real images come within.
``memorised`` is the share of generated images nearer than that to a training image: held-out images
score 0.05 by construction, so does a model that draws new images like its training set, and a model that
reproduces its training images scores up to 1. A small folder trained for many epochs drifts up.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

MEMORISED_QUANTILE = 0.05
MAX_HELD_OUT = 2000  # held-out images that set the threshold (more change it little and cost time)
CHUNK = 4096  # training images per matrix product


def unit_pixels(images: torch.Tensor) -> torch.Tensor:
    """Images as float32 rows (N, D) on the [0, 1] scale: uint8 pixels / 255, or [-1, 1] floats mapped
    by (x + 1) / 2."""
    if images.dtype == torch.uint8:
        return images.float().div(255.0).flatten(1)
    return images.float().clamp(-1.0, 1.0).add(1.0).div(2.0).flatten(1)


def nearest_training(queries: torch.Tensor, training: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Each query's distance d (see the module docstring) to its nearest image of ``training`` (uint8 or
    [-1, 1] floats, same shape), and that image's index."""
    if queries.shape[1:] != training.shape[1:]:
        raise ValueError(
            f"the images are {tuple(queries.shape[1:])} but the training images {tuple(training.shape[1:])}"
        )
    q = unit_pixels(queries)
    q_norms = q.square().sum(1, keepdim=True)
    best = torch.full((len(q),), float("inf"))
    index = torch.zeros(len(q), dtype=torch.long)
    for start in range(0, len(training), CHUNK):
        r = unit_pixels(training[start : start + CHUNK])
        squared = q_norms - 2.0 * q @ r.T + r.square().sum(1)[None]
        chunk_best, chunk_index = squared.min(1)
        better = chunk_best < best
        best = torch.where(better, chunk_best, best)
        index = torch.where(better, chunk_index + start, index)
    return best.clamp_min(0.0).div(q.shape[1]).sqrt(), index


@dataclass(frozen=True)
class Memorisation:
    """How near generated images come to the training set, against held-out real images."""

    memorised: float  # share of images nearer to a training image than the threshold
    threshold: float  # the distance only 5% of held-out real images come within
    median_distance: float  # the generated images' median distance to their nearest training image
    held_out_median: float  # the same for the held-out real images
    held_out: int  # how many held-out images set the threshold
    distances: torch.Tensor  # each generated image's distance to its nearest training image
    nearest: torch.Tensor  # and that training image's index

    def to_dict(self) -> dict:
        """The figures, without the per-image tensors."""
        return {
            "memorised": self.memorised,
            "threshold": self.threshold,
            "median_distance": self.median_distance,
            "held_out_median": self.held_out_median,
            "held_out": self.held_out,
        }


def memorisation(images: torch.Tensor, training: torch.Tensor, held_out: torch.Tensor) -> Memorisation:
    """The memorised share of ``images`` (see the module docstring): the training images they may copy,
    and real images of the same kind the model never saw (at most :data:`MAX_HELD_OUT` of them)."""
    if len(held_out) < 1:
        raise ValueError("memorisation needs held-out real images, and there are none")
    real, _ = nearest_training(held_out[:MAX_HELD_OUT], training)
    threshold = float(torch.quantile(real, MEMORISED_QUANTILE))
    distances, nearest = nearest_training(images, training)
    return Memorisation(
        memorised=float((distances < threshold).float().mean()),
        threshold=threshold,
        median_distance=float(distances.median()),
        held_out_median=float(real.median()),
        held_out=len(real),
        distances=distances,
        nearest=nearest,
    )


def nearest_class_shares(nearest: torch.Tensor, labels: torch.Tensor, classes: int) -> list[float]:
    """The share of images whose nearest training image is of each class: a class balance that needs no
    classifier (a 1-nearest-neighbour classifier in pixel space)."""
    counts = torch.bincount(labels[nearest], minlength=classes).float()
    return (counts / counts.sum()).tolist()


def beside_nearest(
    images: torch.Tensor, training: torch.Tensor, nearest: torch.Tensor, count: int = 32
) -> torch.Tensor:
    """The first ``count`` images, each followed by its nearest training image, in [-1, 1] (for a grid of
    pairs: an even number of columns puts each pair side by side)."""
    chosen = images[:count].float().clamp(-1.0, 1.0)
    partners = unit_pixels(training[nearest[:count]]).view_as(chosen) * 2.0 - 1.0
    return torch.stack([chosen, partners], dim=1).flatten(0, 1)
