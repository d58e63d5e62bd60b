"""The headless commands, each a Rich front end over :mod:`core`."""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import fields
import torch

import core

from .cli import console, err_console, fail, progress_bar, stop_on_interrupt, table


def visualize(args: argparse.Namespace) -> int:
    """Forward diffusion: a grid of images at increasing t, the schedule's plot and its numbers."""
    schedule = core.NoiseSchedule.create(args.schedule, args.timesteps)
    data = core.load_dataset(args.dataset, "train")
    rng = torch.Generator().manual_seed(args.seed)
    picks = torch.randperm(len(data), generator=rng)[: args.num_images]
    x0 = data.images[picks]
    noise = torch.randn(x0.shape, generator=rng)
    steps = core.display_timesteps(args.timesteps)
    rows = torch.stack([schedule.q_sample(x0, torch.full((len(x0),), t), noise) for t in steps], dim=1)
    alpha_bars = [schedule.alpha_bars[t].item() for t in steps]
    grid_path = core.plot_forward_grid(rows, steps, alpha_bars, args.output)
    plot_path = core.plot_schedule(schedule.betas.numpy(), schedule.alpha_bars.numpy(), schedule.name,
                                   args.output.parent / "noise_schedule.png")

    t_table = table("t", "beta_t", "alpha_bar_t", "signal scale sqrt(alpha_bar_t)",
                    "noise scale sqrt(1-alpha_bar_t)",
                    title=f"{schedule.name} schedule, T = {args.timesteps}: x_t = signal * x_0 + noise * eps")
    for t in steps:
        t_table.add_row(str(t), f"{schedule.betas[t]:.5f}", f"{schedule.alpha_bars[t]:.4f}",
                        f"{schedule.sqrt_alpha_bars[t]:.4f}", f"{schedule.sqrt_one_minus_alpha_bars[t]:.4f}")
    console.print(t_table)
    console.print(f"{len(x0)} {args.dataset} images from the {data.source}")
    console.print(f"Saved the forward process to [bold]{grid_path}[/] and the schedule to [bold]{plot_path}[/]")
    return 0


def _train_overrides(args: argparse.Namespace) -> dict:
    """The training settings given on the command line (flags left out keep the config's defaults)."""
    names = {f.name for f in fields(core.TrainConfig)}
    given = {k: v for k, v in vars(args).items() if k in names and v is not None}
    if given.get("data_dir") is not None and "data" not in given:
        given["data"] = "full"
    if getattr(args, "model", None):
        given = {**core.MODEL_PRESETS[args.model], **given}
    return given


def train(args: argparse.Namespace) -> int:
    """Train a model, printing a progress bar per epoch and a line per epoch."""
    overrides = _train_overrides(args)
    if args.resume is not None:
        trainer = core.Trainer(core.TrainConfig(), resume=args.resume, resume_overrides=overrides)
    else:
        trainer = core.Trainer(core.TrainConfig(**overrides))
    cfg = trainer.config
    console.print(f"[bold]Data:[/] {trainer.data.source}")
    kind = ", class-conditional (labels dropped 10% of the time)" if cfg.conditional else ""
    console.print(f"[bold]Model:[/] U-Net '{cfg.model_name}' (base_channels {cfg.base_channels}, levels "
                  f"{'x'.join(map(str, cfg.channel_mults))}, {cfg.num_res_blocks} blocks per level), "
                  f"{trainer.param_count:,} parameters{kind}")
    console.print(f"[bold]Device:[/] {trainer.device_label}   [bold]Schedule:[/] {cfg.schedule}, T = {cfg.timesteps}")
    resumed = f", resuming at step {trainer.step} (epoch {trainer.epoch + 1})" if trainer.step else ""
    console.print(f"[bold]Run:[/] {cfg.epochs} epochs x {trainer.batches_per_epoch} steps of {cfg.batch_size} "
                  f"images into {trainer.output_dir}/{resumed}")
    with stop_on_interrupt(trainer.request_stop), progress_bar() as progress:
        task = None
        try:
            for event in trainer.run():
                if isinstance(event, core.StepEvent):
                    if task is None:
                        task = progress.add_task(f"epoch {event.epoch}/{cfg.epochs}", total=event.batches,
                                                 completed=event.batch - 1, info="")
                    progress.update(task, completed=event.batch,
                                    info=f"loss {event.loss:.4f}  {event.images_per_sec:.0f} img/s")
                elif isinstance(event, core.EpochEvent):
                    if task is not None:
                        progress.remove_task(task)
                        task = None
                    where = f"  samples: {event.sample_path}" if event.sample_path else ""
                    progress.console.print(
                        f"epoch {event.epoch:3d}/{cfg.epochs}  loss {event.mean_loss:.4f}  "
                        f"{event.seconds:.1f}s  {trainer.device_label}{where}")
                else:
                    return _finished(event, trainer)
        except core.TrainingError as err:
            err_console.print(f"ddpm-tui train: error: {err}", markup=False, soft_wrap=True)
            return 1
    return 0


def _finished(event: core.FinishedEvent, trainer: core.Trainer) -> int:
    minutes = event.elapsed / 60
    if event.completed:
        console.print(f"[green]Done[/] in {minutes:.1f} min ({event.step} steps). "
                      f"Model: [bold]{event.model_path}[/]  loss curve: {trainer.output_dir / 'training_loss.png'}")
        console.print(f"Next: ddpm-tui sample --checkpoint {event.model_path} --show_intermediate")
        return 0
    console.print(f"[yellow]Stopped[/] at step {event.step}; state saved to [bold]{event.checkpoint_path}[/]")
    console.print(f"Resume with: ddpm-tui train --resume {event.checkpoint_path}")
    return 130


def sample(args: argparse.Namespace) -> int:
    """Generate images from a checkpoint, optionally saving the denoising as frames and a GIF."""
    device = core.resolve_device(args.device)
    loaded = core.load_model(args.checkpoint, device)
    T = loaded.schedule.timesteps
    if args.steps is not None and args.steps > T:
        fail(f"--steps {args.steps} is more than the model's T = {T}")
    if args.sampler == "ddpm" and args.steps not in (None, T):
        fail(f"--steps applies to --sampler ddim or dpm++; ddpm always runs all T = {T} steps")
    core.configure_for_speed(device)
    bf16 = core.use_bf16(device, args.precision)
    for target in filter(None, (args.output.parent, args.export_dir)):
        core.check_writable(target)

    labels, nrow = _requested_labels(loaded, args.class_label, args.num_images)
    num_images = args.num_images if labels is None else len(labels)
    generator = torch.Generator(device).manual_seed(args.seed)
    x_T = torch.randn(num_images, *loaded.image_shape, generator=generator, device=device)
    cfg = loaded.config
    console.print(f"[bold]Model:[/] {args.checkpoint} ({core.count_parameters(loaded.model):,} parameters, "
                  f"{cfg.dataset}, {cfg.schedule} schedule, T = {T})")
    model = loaded.model
    if labels is not None:
        model = core.guided(loaded.model, labels.to(device), args.guidance_scale, loaded.model.null_class)
        what = "one row per class" if args.class_label in (None, "all") else \
            f"class {args.class_label} ({core.CLASS_NAMES[cfg.dataset][args.class_label]})"
        console.print(f"[bold]Classes:[/] {what}, guidance w = {args.guidance_scale:g}")
    steps = core.sample(model, loaded.schedule, x_T, args.sampler, args.steps, args.eta, generator)
    frames: list[tuple[int, torch.Tensor]] = [(T, x_T.float().cpu())]
    keep: set[int] = set()
    start = time.perf_counter()
    with progress_bar() as progress, core.autocast(device, bf16):
        task = None
        for step in steps:
            if task is None:
                task = progress.add_task(f"{args.sampler} sampling", total=step.total, info="")
                keep = set(core.snapshot_indices(step.total))
            progress.update(task, completed=step.index + 1, info=f"t = {step.t}")
            if args.show_intermediate and step.index in keep:
                frames.append((step.t, step.x.float().cpu()))
        images = step.x.float().cpu()
    seconds = time.perf_counter() - start

    path = core.save_grid(images, args.output, nrow=nrow)
    console.print(f"{num_images} images in {seconds:.1f}s ({args.sampler}, {step.total} steps, "
                  f"{core.describe(device, bf16)}) -> [bold]{path}[/]")
    if args.show_intermediate:
        folder = args.output.parent / "intermediate"
        for t, x in frames[1:]:
            core.save_grid(x, folder / f"step_{t:04d}.png")
        gif = core.save_gif([x for _, x in frames], folder / "denoising.gif")
        console.print(f"{len(frames) - 1} denoising frames (step_XXXX.png, XXXX = t) and {gif} in {folder}/")
    if args.export_dir is not None:
        paths = core.export_images(images, args.export_dir)
        console.print(f"Exported {len(paths)} PNGs to {args.export_dir}/")
    return 0


def _requested_labels(loaded: core.LoadedModel, class_label: int | str | None,
                      num_images: int) -> tuple[torch.Tensor | None, int | None]:
    """The class of every image to draw and the grid's row length: ``num_images`` of one class, or for
    "all" (a conditional model's default) ceil(num_images / K) of each class, one row per class."""
    classes = loaded.model.num_classes
    if not classes:
        if class_label is not None:
            fail("this model was trained without class labels; train one with --conditional to use --class_label")
        return None, None
    if class_label in (None, "all"):
        per_class = -(-num_images // classes)
        return torch.arange(classes * per_class) // per_class, per_class
    if class_label >= classes:
        fail(f"--class_label {class_label} is out of range: this model knows classes 0-{classes - 1}")
    return torch.full((num_images,), class_label), None


def watch(args: argparse.Namespace) -> int:
    """Open the app's Train screen following the run in ``run_dir``."""
    if not args.run_dir.is_dir():
        fail(f"no run folder at {args.run_dir}")
    if core.read_status(args.run_dir) is None and not (args.run_dir / "metrics.jsonl").exists():
        fail(f"{args.run_dir} holds no training run (no status.json or metrics.jsonl)")
    from .app import DdpmApp

    DdpmApp(watch=str(args.run_dir)).run()
    return 0


def _scores_table(title: str, rows: dict[str, tuple[core.Scores, core.Scores]]) -> None:
    t = table("images", "Frechet distance (lower is better)", "recognised (conf >= 0.9)", "class entropy",
              title=title)
    for name, (scores, floor) in rows.items():
        t.add_row(name, f"{scores.frechet_distance:.2f}", f"{scores.recognised:.1%}", f"{scores.class_entropy:.3f}")
        t.add_row(f"real floor ({floor.count})", f"{floor.frechet_distance:.2f}", f"{floor.recognised:.1%}",
                  f"{floor.class_entropy:.3f}", style="dim")
    console.print(t)


def _classifier(dataset: str, retrain: bool = False) -> core.Classifier:
    with console.status(f"loading the {dataset} classifier (trained once, then cached)"):
        classifier = core.load_classifier(dataset, retrain)
    console.print(f"Scoring with a {dataset} classifier of {classifier.test_accuracy:.2%} held-out accuracy")
    return classifier


def evaluate_checkpoint(path, num_images: int, sampler: str, steps: int | None, seed: int, device_name: str,
                        evaluator: core.Evaluator | None = None, guidance_scale: float = 3.0) -> dict:
    """Generate ``num_images`` from a checkpoint and score them; cached in ``eval.json`` beside it.

    A class-conditional model draws the classes in turn with guidance ``guidance_scale``, and the result
    adds each class's accuracy."""
    settings = {"checkpoint": path.name, "num_images": num_images, "sampler": sampler, "steps": steps, "seed": seed,
                "guidance_scale": guidance_scale}
    cache = path.parent / "eval.json"
    if cache.exists():
        try:
            cached = json.loads(cache.read_text())
            if cached.get("settings") == settings and cached.get("mtime") == path.stat().st_mtime:
                return cached
        except (OSError, json.JSONDecodeError):
            pass
    device = core.resolve_device(device_name)
    loaded = core.load_model(path, device)
    if steps is not None and steps > loaded.schedule.timesteps:
        fail(f"--steps {steps} is more than the model's T = {loaded.schedule.timesteps}")
    if loaded.config.dataset not in core.SCORED_DATASETS:
        fail(f"eval scores {' and '.join(core.SCORED_DATASETS)} models; {loaded.config.dataset} has no scoring "
             "classifier yet")
    evaluator = evaluator or core.Evaluator(_classifier(loaded.config.dataset))
    classes = loaded.model.num_classes
    labels = torch.arange(num_images) % classes if classes else None
    start = time.perf_counter()
    with console.status(f"generating {num_images} images ({sampler})"), core.autocast(device, core.use_bf16(device)):
        images = core.generate(loaded.model, loaded.schedule, num_images, loaded.image_shape, sampler, steps, seed,
                               device=device, labels=labels, guidance_scale=guidance_scale)
    seconds = time.perf_counter() - start
    result = {"settings": settings, "mtime": path.stat().st_mtime, "dataset": loaded.config.dataset,
              "sampling_seconds": seconds, "scores": evaluator.score(images, labels).to_dict(),
              "floor": evaluator.floor(num_images).to_dict(),
              "classifier_accuracy": evaluator.classifier.test_accuracy}
    cache.write_text(json.dumps(result, indent=2) + "\n")
    return result


def eval(args: argparse.Namespace) -> int:  # noqa: A001 - the command's name
    """Score a checkpoint's samples, or a folder of PNGs, beside the real-vs-real floor."""
    if args.images is not None:
        dataset = args.dataset or "mnist"
        if dataset not in core.SCORED_DATASETS:
            fail(f"eval scores {' and '.join(core.SCORED_DATASETS)} images; {dataset} has no scoring classifier yet")
        try:
            images = core.load_image_folder(args.images)
        except ValueError as err:
            fail(str(err))
        evaluator = core.Evaluator(_classifier(dataset, args.retrain_classifier))
        if images.shape[1:] != evaluator.floor_pool.shape[1:]:
            fail(f"the images are {tuple(images.shape[2:])} pixels; {dataset} images are "
                 f"{tuple(evaluator.floor_pool.shape[2:])}")
        _scores_table(f"{len(images)} images from {args.images} vs held-out {dataset}",
                      {str(args.images): (evaluator.score(images), evaluator.floor(len(images)))})
        return 0
    if args.retrain_classifier:
        dataset = args.dataset or core.load_model(args.checkpoint).config.dataset
        core.load_classifier(dataset, retrain=True)
    result = evaluate_checkpoint(args.checkpoint, args.num_images, args.sampler, args.steps, args.seed, args.device,
                                 guidance_scale=args.guidance_scale)
    scores, floor = core.Scores(**result["scores"]), core.Scores(**result["floor"])
    _scores_table(f"{args.num_images} samples ({args.sampler}) vs held-out {result['dataset']}",
                  {str(args.checkpoint): (scores, floor)})
    if scores.class_accuracy is not None:
        names = core.CLASS_NAMES[result["dataset"]]
        t = table("requested class", "drawn as that class", title=f"Per-class accuracy, w = {args.guidance_scale:g}")
        for name, accuracy in zip(names, scores.class_accuracy):
            t.add_row(name, f"{accuracy:.1%}")
        console.print(t)
        console.print(f"Mean per-class accuracy {scores.mean_class_accuracy:.1%} with guidance w = "
                      f"{args.guidance_scale:g} (chance: {1 / len(names):.0%})")
    console.print(f"Frechet distance is {scores.frechet_distance / floor.frechet_distance:.1f}x the real floor; "
                  f"sampling took {result['sampling_seconds']:.0f}s. Cached in {args.checkpoint.parent / 'eval.json'}")
    return 0


def compare(args: argparse.Namespace) -> int:
    """One table of runs: the answer to "how long?", "which data?" and "is bigger better?"."""
    rows = []
    evaluators: dict[str, core.Evaluator] = {}
    for run in args.run_dirs:
        model = run / "model_final.pt"
        if not model.exists():
            fail(f"{run} has no model_final.pt (is it a finished training run?)")
        config = json.loads((run / "config.json").read_text())
        steps = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
        steps = [r for r in steps if r.get("kind") == "step"]
        dataset = config["dataset"]
        if dataset not in evaluators:
            evaluators[dataset] = core.Evaluator(_classifier(dataset))
        result = evaluate_checkpoint(model, args.num_images, args.sampler, args.steps, 0, args.device,
                                     evaluators[dataset])
        rows.append((run, config, steps, result))
    t = table("run", "data", "params", "epochs", "min", "img/s", "FD", "floor", "recog.", "entropy",
              title=f"{args.num_images} samples per run ({args.sampler}); FD floor: real vs real")
    for run, config, steps, result in rows:
        rates = sorted(r["images_per_sec"] for r in steps)
        s, f = result["scores"], result["floor"]
        t.add_row(run.name, config["dataset"], f"{config['parameters'] / 1e6:.2f}M", str(config["epochs"]),
                  f"{steps[-1]['elapsed'] / 60:.1f}" if steps else "-", f"{rates[len(rates) // 2]:.0f}" if rates else "-",
                  f"{s['frechet_distance']:.2f}", f"{f['frechet_distance']:.2f}", f"{s['recognised']:.1%}",
                  f"{s['class_entropy']:.3f}")
    console.print(t)
    return 0
