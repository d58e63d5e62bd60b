"""``ddpm-tui eval``: score a checkpoint's samples, or a folder of PNGs, beside the real-vs-real floor."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import core

from ..console import console, fail, table
from ..flags import add_flag, positive_int
from .sample import add_sampling_flags

NAME = "eval"
HELP = "score generated images against held-out real ones"
COMPUTES = True  # a job that shares the cores (core.jobs), with --threads


def add_arguments(parser: argparse.ArgumentParser) -> None:
    source = parser.add_mutually_exclusive_group(required=True)
    add_flag(source, "checkpoint", type=Path, help="generate from this model, then score")
    add_flag(source, "images", type=Path, help="score the PNG images in this folder")
    add_flag(
        parser, "dataset", choices=core.DATASETS, help="the data to compare with (default: the checkpoint's, or mnist)"
    )
    add_flag(
        parser,
        "num_images",
        type=positive_int,
        default=1000,
        help="images to generate; a conditional model draws every class equally often",
    )
    add_sampling_flags(parser, core.FAST_SAMPLER)
    add_flag(parser, "retrain_classifier", action="store_true", help="train the scoring classifier again, here")


def scored_dataset(dataset: str) -> str:
    """``dataset``, when a classifier can score it; otherwise a usage error."""
    if dataset not in core.SCORED_DATASETS:
        fail(f"eval scores {' and '.join(core.SCORED_DATASETS)} images; {dataset} has no scoring classifier yet")
    return dataset


def classifier(dataset: str, retrain: bool = False) -> core.Classifier:
    with console.status(f"loading the {dataset} classifier"):
        loaded = core.load_classifier(dataset, retrain)
    console.print(f"Scoring with a {dataset} classifier of {loaded.test_accuracy:.2%} held-out accuracy")
    return loaded


def sampling_settings(
    path: Path, loaded: core.LoadedModel, num_images: int, seed: int, request: core.SamplingRequest
) -> dict:
    """What a cached score depends on. The timesteps the sampler will visit, the w it is autoguided with,
    the noise levels it guides and its fresh noise (checked here, before anything is sampled) are part of
    it: a ddpm-tui that places or guides its steps differently, or samples with another default w or eta,
    does not reuse a score."""
    plan = core.plan_sampling(loaded.model, loaded.schedule, loaded.image_shape, 1, **vars(request))
    return {
        "checkpoint": path.name,
        "num_images": num_images,
        "sampler": request.sampler,
        "steps": request.steps,
        "seed": seed,
        "guidance_scale": request.guidance_scale,
        "autoguidance": plan.autoguidance,
        "guided_sigmas": [core.GUIDANCE_SIGMA_MIN, core.GUIDANCE_SIGMA_MAX] if plan.autoguidance else None,
        "timesteps": plan.timesteps,
        "eta": plan.eta,
    }


def cached_result(path: Path, settings: dict) -> dict | None:
    """The ``eval.json`` beside the checkpoint, if it scored this checkpoint file with these settings."""
    cache = path.parent / "eval.json"
    try:
        cached = json.loads(cache.read_text())
    except (OSError, json.JSONDecodeError):
        return None
    if cached.get("settings") == settings and cached.get("mtime") == path.stat().st_mtime:
        return cached
    return None


def evaluate_checkpoint(
    path: Path,
    num_images: int,
    sampler: str,
    steps: int | None,
    seed: int,
    device_name: str,
    evaluator: core.Evaluator | None = None,
    guidance_scale: float = core.DEFAULT_GUIDANCE,
    autoguidance: float | None = None,
    eta: float | None = None,
) -> dict:
    """Generate ``num_images`` from a checkpoint and score them; cached in ``eval.json`` beside it.

    A class-conditional model draws every class equally often with guidance ``guidance_scale``, and the
    result adds each class's accuracy. A checkpoint that kept an early EMA snapshot is autoguided by it
    with w = ``autoguidance``; ``eta`` is the sampler's fresh noise (see :func:`core.plan_sampling`)."""
    device = core.resolve_device(device_name)
    loaded = core.load_model(path, device)
    dataset = loaded.config.dataset
    request = core.SamplingRequest(sampler, steps, guidance_scale, loaded.guide, autoguidance, dataset, eta)
    settings = sampling_settings(path, loaded, num_images, seed, request)
    cached = cached_result(path, settings)
    if cached is not None:
        return cached
    evaluator = evaluator or core.Evaluator(classifier(scored_dataset(dataset)))
    start = time.perf_counter()
    with console.status(f"generating {num_images} images ({sampler})"), core.autocast(device, core.use_bf16(device)):
        images, labels = core.generate(
            loaded.model,
            loaded.schedule,
            num_images,
            loaded.image_shape,
            seed=seed,
            device=device,
            **vars(request),
        )
    result = {
        "settings": settings,
        "mtime": path.stat().st_mtime,
        "dataset": dataset,
        "autoguidance": settings["autoguidance"],
        "sampling_seconds": time.perf_counter() - start,
        "scores": evaluator.score(images, labels).to_dict(),
        "floor": evaluator.floor(num_images).to_dict(),
        "classifier_accuracy": evaluator.classifier.test_accuracy,
    }
    (path.parent / "eval.json").write_text(json.dumps(result, indent=2) + "\n")
    return result


def scores_table(title: str, rows: dict[str, tuple[core.Scores, core.Scores]]) -> None:
    t = table("images", "Frechet distance (lower is better)", "recognised (conf >= 0.9)", "class entropy", title=title)
    for name, (scores, floor) in rows.items():
        t.add_row(name, f"{scores.frechet_distance:.2f}", f"{scores.recognised:.1%}", f"{scores.class_entropy:.3f}")
        t.add_row(
            f"real floor ({floor.count})",
            f"{floor.frechet_distance:.2f}",
            f"{floor.recognised:.1%}",
            f"{floor.class_entropy:.3f}",
            style="dim",
        )
    console.print(t)
    for name, (scores, _) in rows.items():
        warning = core.one_class_warning(scores.class_entropy)
        if warning:
            console.print(f"{name}: {warning}.")


def run(args: argparse.Namespace) -> int:
    """Score a checkpoint's samples, or a folder of PNGs, beside the real-vs-real floor."""
    if args.images is not None:
        dataset = scored_dataset(args.dataset or "mnist")
        images = core.load_image_folder(args.images)
        evaluator = core.Evaluator(classifier(dataset, args.retrain_classifier))
        if images.shape[1:] != evaluator.floor_pool.shape[1:]:
            fail(
                f"the images are {tuple(images.shape[2:])} pixels; {dataset} images are "
                f"{tuple(evaluator.floor_pool.shape[2:])}"
            )
        scores_table(
            f"{len(images)} images from {args.images} vs held-out {dataset}",
            {str(args.images): (evaluator.score(images), evaluator.floor(len(images)))},
        )
        return 0
    if args.retrain_classifier:
        dataset = args.dataset or core.load_model(args.checkpoint).config.dataset
        core.load_classifier(scored_dataset(dataset), retrain=True)
    result = evaluate_checkpoint(
        args.checkpoint,
        args.num_images,
        args.sampler,
        args.steps,
        args.seed,
        args.device,
        guidance_scale=args.guidance_scale,
        autoguidance=args.autoguidance,
        eta=args.eta,
    )
    scores, floor = core.Scores(**result["scores"]), core.Scores(**result["floor"])
    how = args.sampler
    if args.sampler in core.DEFAULT_ETA:
        how += f", eta {result['settings']['eta']:g}"
    if result.get("autoguidance"):
        how += f", autoguided w = {result['autoguidance']:g}"
    scores_table(
        f"{args.num_images} samples ({how}) vs held-out {result['dataset']}",
        {str(args.checkpoint): (scores, floor)},
    )
    if scores.class_accuracy is not None:
        names = core.CLASS_NAMES[result["dataset"]]
        t = table("requested class", "drawn as that class", title=f"Per-class accuracy, w = {args.guidance_scale:g}")
        for name, accuracy in zip(names, scores.class_accuracy, strict=True):
            t.add_row(name, f"{accuracy:.1%}")
        console.print(t)
        console.print(
            f"Mean per-class accuracy {scores.mean_class_accuracy:.1%} with guidance w = "
            f"{args.guidance_scale:g} (chance: {1 / len(names):.0%})"
        )
    console.print(
        f"Frechet distance is {scores.frechet_distance / floor.frechet_distance:.1f}x the real floor; "
        f"sampling took {result['sampling_seconds']:.0f}s. Cached in {args.checkpoint.parent / 'eval.json'}"
    )
    return 0
