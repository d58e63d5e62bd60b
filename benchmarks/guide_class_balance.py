"""How autoguidance changes which digits an unconditional model draws: the classifier's class histogram of
the final model alone, its guide alone, and the two together, on the same starting noise.

    .venv/bin/python benchmarks/guide_class_balance.py --checkpoint RUN/model_final.pt
    .venv/bin/python benchmarks/guide_class_balance.py --checkpoint RUN/model_final.pt --autoguidance 2.5

Autoguidance samples (roughly) from p_final(x)^w / p_guide(x)^(w-1), so a class that the guide draws
more often than the final model is drawn less often still, by about the ratio of the two shares to the
power w - 1. Each run's guide prefers different classes, so the guided class shares scatter from run to
run, and the Frechet distance counts a wrong mix of classes as much as badly drawn digits. The last rows
say how much of the distance that is: the guided samples resampled (with replacement, the same draws for
every set) to the reference images' class shares, against the same resampling of the final model alone.
Each set is ``--num_images`` images of the default fast sampler, batch i seeded i as ``ddpm-tui eval``
draws them. The guided sets are guided above noise level ``core.GUIDANCE_SIGMA_MIN`` on every step (the
interval open above, as before ``core.GUIDANCE_SIGMA_MAX`` existed), and between the two bounds (the
default), each with as many steps as the same network calls allow.
"""

from __future__ import annotations

import argparse
import math

import torch
from rich.console import Console
from rich.table import Table
from sampler_spacing import draw  # benchmarks/ is on the path when a script in it runs

import core


def with_reference_shares(
    features: torch.Tensor, classes: torch.Tensor, shares: torch.Tensor, generator: torch.Generator
) -> torch.Tensor:
    """Indices that resample ``features`` (with replacement) so that each class has its reference share."""
    count = len(features)
    picks = []
    for k, share in enumerate(shares.tolist()):
        members = torch.nonzero(classes == k).flatten()
        if len(members):
            picks.append(members[torch.randint(len(members), (round(share * count),), generator=generator)])
    return torch.cat(picks)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", required=True, help="a run's model_final.pt that kept its guide")
    parser.add_argument("--num_images", type=int, default=1000)
    parser.add_argument("--autoguidance", type=float, help="w (default: the dataset's)")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: one per core)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    loaded = core.load_model(args.checkpoint)
    if loaded.guide is None:
        raise SystemExit(f"{args.checkpoint} kept no guide (train with --guide_at)")
    dataset = loaded.config.dataset
    w = args.autoguidance or core.default_autoguidance(dataset)
    eta = core.DEFAULT_ETA[core.FAST_SAMPLER]
    plain_times = core.sampler_timesteps(loaded.schedule, core.FAST_SAMPLER, core.DEFAULT_STEPS[core.FAST_SAMPLER])
    sets = {
        "final model alone": draw(loaded.model, loaded, plain_times, args.num_images, eta),
        "guide alone": draw(loaded.guide, loaded, plain_times, args.num_images, eta),
    }
    for sigma_max in (math.inf, core.GUIDANCE_SIGMA_MAX):
        interval = core.guidance_interval(loaded.schedule, core.GUIDANCE_SIGMA_MIN, sigma_max)
        steps = core.autoguided_steps(loaded.schedule, core.FAST_SAMPLER, interval)
        times = core.sampler_timesteps(loaded.schedule, core.FAST_SAMPLER, steps)
        name = f"autoguided, w = {w:g}, sigma > {core.GUIDANCE_SIGMA_MIN:g}" + (
            "" if math.isinf(sigma_max) else f" and < {sigma_max:g}"
        )
        sets[name] = draw(core.autoguided(loaded.model, loaded.guide, w, interval), loaded, times, args.num_images, eta)

    classifier = core.load_classifier(dataset)
    evaluator = core.Evaluator(classifier)
    labels = evaluator.reference_labels
    shares = torch.bincount(labels, minlength=10).double() / len(labels)
    table = Table(title=f"{args.checkpoint}: predicted classes of {args.num_images} images each")
    table.add_column("images")
    for k in range(10):
        table.add_column(str(k), justify="right")
    table.add_column("recognised", justify="right")
    table.add_column("FD", justify="right")
    table.add_column("FD, reference class shares", justify="right")
    table.add_row(
        "reference (real, as shares of the same count)",
        *[f"{s * args.num_images:.0f}" for s in shares.tolist()],
        "",
        "",
        "",
    )
    for name, images in sets.items():
        features, probabilities = classifier.features_and_probabilities(images)
        classes = probabilities.argmax(1)
        picks = with_reference_shares(features, classes, shares, torch.Generator().manual_seed(0))
        scores = evaluator.score(images)
        table.add_row(
            name,
            *[str(n) for n in torch.bincount(classes, minlength=10).tolist()],
            f"{scores.recognised:.1%}",
            f"{scores.frechet_distance:.1f}",
            f"{core.frechet_distance(features[picks], evaluator.reference_features):.1f}",
        )
    Console(width=160).print(table)


if __name__ == "__main__":
    main()
