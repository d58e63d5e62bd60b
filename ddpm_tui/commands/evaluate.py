"""``ddpm-tui eval``: score a checkpoint's samples, or a folder of PNGs, beside the real-vs-real floor, and
measure how many of them copy a training image (the memorised share, see :mod:`core.memorisation`)."""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

import torch

import core

from ..console import console, fail, table
from ..flags import add_flag, positive_int
from .sample import add_sampling_flags, say_if_not_compiled

NAME = "eval"
HELP = "score generated images against held-out real ones"
COMPUTES = True  # a job that shares the cores (core.jobs), with --threads


def add_arguments(parser: argparse.ArgumentParser) -> None:
    source = parser.add_mutually_exclusive_group(required=True)
    add_flag(source, "checkpoint", type=Path, help="generate from this model, then score")
    add_flag(source, "images", type=Path, help="score the PNG images in this folder")
    add_flag(
        parser,
        "dataset",
        choices=(*core.DATASETS, core.FOLDER),
        help="the data to compare with (default: the checkpoint's, or mnist)",
    )
    add_flag(
        parser,
        "data_dir",
        type=Path,
        help="the folder of training images (--dataset folder), when the checkpoint's has moved",
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
    add_flag(
        parser,
        "nearest",
        type=Path,
        help="write the first images, each beside its nearest training image, to this PNG (default with "
        "--checkpoint: nearest.png beside it)",
    )
    add_flag(parser, "json", action="store_true", help="print the result as one JSON object (keys include memorised)")


NO_CLASSIFIER = (
    "no Frechet distance or recognised share: they are measured in the feature space of a classifier trained on "
    "the same kind of images, and ddpm-tui has one for {scored} only"
)


def scored_dataset(dataset: str) -> str:
    """``dataset``, when a classifier can score it; otherwise a usage error."""
    if dataset not in core.SCORED_DATASETS:
        fail(f"eval scores {' and '.join(core.SCORED_DATASETS)} images; {dataset} has no scoring classifier yet")
    return dataset


def no_classifier_note() -> str:
    return NO_CLASSIFIER.format(scored=" and ".join(core.SCORED_DATASETS))


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
        "memorised_quantile": core.MEMORISED_QUANTILE,  # scores cached before memorisation was measured are redone
    }


def cached_result(path: Path, settings: dict) -> dict | None:
    """The ``eval.json`` beside the checkpoint, if it scored this checkpoint file with these settings and
    holds every score eval now gives (one written before the training images were scored is redone)."""
    cache = path.parent / "eval.json"
    try:
        cached = json.loads(cache.read_text())
    except (OSError, json.JSONDecodeError):
        return None
    complete = "scores" not in cached or "training" in cached
    if complete and cached.get("settings") == settings and cached.get("mtime") == path.stat().st_mtime:
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
    guidance_scale: float | None = None,
    autoguidance: float | None = None,
    eta: float | None = None,
    data_dir: Path | None = None,
    compile_mode: str = "auto",
) -> dict:
    """Generate ``num_images`` from a checkpoint and score them; cached in ``eval.json`` beside it.

    A class-conditional model draws every class equally often with guidance ``guidance_scale`` (None: the dataset's
    default), and the result adds each class's accuracy. A checkpoint that kept an early EMA snapshot is autoguided
    by it with w = ``autoguidance``; ``eta`` is the sampler's fresh noise and ``compile_mode`` when the network
    runs compiled (see :func:`core.plan_sampling`).
    Datasets without a scoring classifier (a folder) get the memorised share and class balance only;
    ``data_dir`` says where a folder-trained model's images are now."""
    device = core.resolve_device(device_name)
    loaded = core.load_model(path, device)
    dataset = loaded.config.dataset
    request = core.SamplingRequest(
        sampler, steps, guidance_scale, loaded.guide, autoguidance, dataset, eta, compile_mode
    )
    settings = sampling_settings(path, loaded, num_images, seed, request)
    cached = cached_result(path, settings)
    if cached is not None:
        return cached
    if evaluator is None and dataset in core.SCORED_DATASETS:
        evaluator = core.Evaluator(classifier(dataset))
    start = time.perf_counter()
    with console.status(f"generating {num_images} images ({sampler})"), core.autocast(device, core.use_bf16(device)):
        images, labels = core.generate(
            loaded.model, loaded.schedule, num_images, loaded.image_shape, seed=seed, device=device, **vars(request)
        )
    say_if_not_compiled(loaded.model)
    result = {
        "settings": settings,
        "mtime": path.stat().st_mtime,
        "dataset": dataset,
        "class_names": list(loaded.class_names),
        "autoguidance": settings["autoguidance"],
        "sampling_seconds": time.perf_counter() - start,
    }
    if evaluator is not None:
        result["scores"] = evaluator.score(images, labels).to_dict()
        result["floor"] = evaluator.floor(num_images).to_dict()
        result["training"] = evaluator.training(num_images).to_dict()
        result["classifier_accuracy"] = evaluator.classifier.test_accuracy
    config = dataclasses.replace(loaded.config, data_dir=str(data_dir)) if data_dir else loaded.config
    result.update(copying(config, images, labels, path.parent / "nearest.png"))
    (path.parent / "eval.json").write_text(json.dumps(result, indent=2) + "\n")
    return result


def copying(config: core.TrainConfig, images: torch.Tensor, labels: torch.Tensor | None, grid: Path | None) -> dict:
    """``memorised`` and the figures behind it for ``images`` of a run of ``config``; the class each
    image's nearest training image has (with ``labels``: how often it is the class asked for); and the
    first images beside their nearest training images in the PNG ``grid``. Where the training images
    cannot be read, ``memorised`` is None and ``memorised_note`` says why."""
    try:
        with console.status("comparing with the training images"):
            training, found = core.run_memorisation(config, images)
    except (core.DataError, ValueError) as err:
        return {"memorised": None, "memorised_note": str(err)}
    result = found.to_dict()
    if training.classes:
        classes = len(training.classes)
        result["nearest_class_shares"] = core.nearest_class_shares(found.nearest, training.labels, classes)
        if labels is not None:
            hits = training.labels[found.nearest] == labels
            result["nearest_class_accuracy"] = [float(hits[labels == k].float().mean()) for k in labels.unique()]
    if grid is not None:
        pairs = core.beside_nearest(images, training.pixels, found.nearest)
        result["nearest_grid"] = str(core.save_grid(pairs, grid, nrow=8))
    return result


def scores_table(title: str, name: str, scores: core.Scores, references: dict[str, core.Scores]) -> None:
    """One row for the scored images and a dimmed row for each reference set of real images."""
    t = table("images", "Frechet distance", "recognised", "class entropy", "class shares", title=title)
    t.columns[0].no_wrap = t.columns[-1].no_wrap = True
    t.caption = (
        "distance: lower is better; recognised: the classifier is at least 90% sure of a class; "
        "class shares: the rarest and the commonest class"
    )
    t.caption_justify = "left"
    for label, row, style in [(name, scores, None)] + [(k, v, "dim") for k, v in references.items()]:
        shares = row.class_shares
        spread = f"{min(shares):.1%}-{max(shares):.1%}" if shares else ""
        cells = (f"{row.frechet_distance:.2f}", f"{row.recognised:.1%}", f"{row.class_entropy:.3f}", spread)
        t.add_row(label, *cells, style=style)
    console.print(t)
    warning = core.one_class_warning(scores.class_entropy)
    if warning:
        console.print(f"{name}: {warning}.")


def copying_report(result: dict) -> None:
    """The memorised share in words, the class balance by nearest training image, and the grid's path."""
    if result.get("memorised") is None:
        console.print(f"Memorised: not measured ({result.get('memorised_note', 'no training images')})")
        return
    console.print(
        f"Memorised: [bold]{result['memorised']:.1%}[/] of the images are nearer to a training image than 95% of "
        f"{result['held_out']:,} held-out real images are to theirs (threshold {result['threshold']:.3f} RMS per "
        f"pixel). Held-out images score {core.MEMORISED_QUANTILE:.0%} by construction; far above that, the model "
        "copies. Median distance to the nearest training image: "
        f"{result['median_distance']:.3f}, held-out {result['held_out_median']:.3f}"
    )
    shares, names = result.get("nearest_class_shares"), result.get("class_names") or []
    if shares and names:
        t = table("class", "share of images", title="Class balance by nearest training image")
        for name, share in zip(names, shares, strict=False):
            t.add_row(name, f"{share:.1%}")
        console.print(t)
    if result.get("nearest_class_accuracy"):
        accuracy = result["nearest_class_accuracy"]
        console.print(f"Drawn as the class asked for (by nearest training image): {sum(accuracy) / len(accuracy):.1%}")
    if result.get("nearest_grid"):
        console.print(f"Each image beside its nearest training image: {result['nearest_grid']}")


def evaluate_images(args: argparse.Namespace) -> dict:
    """Score the PNGs of ``--images`` against a dataset (or a folder's held-out images): the classifier's
    scores where there is one, and the memorised share."""
    dataset = args.dataset or "mnist"
    given = {"dataset": dataset, "data_dir": str(args.data_dir) if args.data_dir else None}
    core.TrainConfig(**given).validate()  # a folder needs its --data_dir
    first = core.image_paths(args.images)
    if not first:
        fail(f"no .png images in {args.images}")
    images = core.load_image_folder(args.images, core.image_channels(first[0]))
    result: dict = {"dataset": dataset, "images": str(args.images), "count": len(images)}
    if dataset in core.SCORED_DATASETS:
        evaluator = core.Evaluator(classifier(dataset, args.retrain_classifier))
        if images.shape[1:] != evaluator.floor_pool.shape[1:]:
            fail(
                f"the images are {core.shape_text(images.shape[1:])}; {dataset} images are "
                f"{core.shape_text(evaluator.floor_pool.shape[1:])}"
            )
        result["scores"] = evaluator.score(images).to_dict()
        result["floor"] = evaluator.floor(len(images)).to_dict()
        result["training"] = evaluator.training(len(images)).to_dict()
    if dataset == core.FOLDER:
        given.update(image_size=images.shape[-1], channels=images.shape[1])
    config = core.TrainConfig(**given).validate()
    result.update(copying(config, images, None, args.nearest))
    return result


def run(args: argparse.Namespace) -> int:
    """Score a checkpoint's samples, or a folder of PNGs, beside the real-vs-real floor, and measure how
    many copy a training image; with ``--json`` only the result's JSON is printed."""
    quiet, console.quiet = console.quiet, args.json
    try:
        return report(args)
    finally:
        console.quiet = quiet


def report(args: argparse.Namespace) -> int:
    """:func:`run`'s work: measure, then print the tables (or the JSON)."""
    if args.images is not None:
        result = evaluate_images(args)
        title = f"{result['count']} images from {args.images} vs held-out {result['dataset']}"
    else:
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
            data_dir=args.data_dir,
            compile_mode=args.compile,
        )
        title = f"{args.num_images} samples ({describe_sampling(args, result)}) vs held-out {result['dataset']}"
    if args.json:
        print(json.dumps(result))
        return 0
    if "scores" in result:
        scores, floor = core.Scores(**result["scores"]), core.Scores(**result["floor"])
        references = {f"real floor ({floor.count})": floor}
        if "training" in result:
            references[f"training images ({floor.count})"] = core.Scores(**result["training"])
        scores_table(title, "samples" if args.checkpoint else "these images", scores, references)
        guidance = result.get("settings", {}).get("guidance_scale")  # only a checkpoint's samples were guided
        class_accuracy_table(scores, result.get("class_names") or [], guidance)
        console.print(distance_ratios(scores, floor, result.get("training")))
    else:
        console.print(f"{result['dataset']}: {no_classifier_note()}.")
    copying_report(result)
    if args.checkpoint is not None:
        console.print(
            f"Sampling took {result['sampling_seconds']:.0f}s. Cached in {args.checkpoint.parent / 'eval.json'}"
        )
    return 0


def distance_ratios(scores: core.Scores, floor: core.Scores, training: dict | None) -> str:
    """The Frechet distance as a multiple of the real floor's and of the training images'."""
    text = f"Frechet distance is {scores.frechet_distance / floor.frechet_distance:.1f}x the real floor"
    if training:
        text += f" and {scores.frechet_distance / training['frechet_distance']:.1f}x the training images'"
    return text + "."


def describe_sampling(args: argparse.Namespace, result: dict) -> str:
    """ "dpm++sde, eta 1, autoguided w = 2": how the scored images were drawn."""
    how = args.sampler
    if args.sampler in core.DEFAULT_ETA:
        how += f", eta {result['settings']['eta']:g}"
    if result.get("autoguidance"):
        how += f", autoguided w = {result['autoguidance']:g}"
    return how


def class_accuracy_table(scores: core.Scores, names: list[str], guidance_scale: float | None) -> None:
    """Per requested class, the share the classifier recognises as that class (conditional models)."""
    if scores.class_accuracy is None:
        return
    t = table("requested class", "drawn as that class", title=f"Per-class accuracy, w = {guidance_scale:g}")
    for name, accuracy in zip(names, scores.class_accuracy, strict=True):
        t.add_row(name, f"{accuracy:.1%}")
    console.print(t)
    console.print(
        f"Mean per-class accuracy {scores.mean_class_accuracy:.1%} with guidance w = "
        f"{guidance_scale:g} (chance: {1 / len(names):.0%})"
    )
