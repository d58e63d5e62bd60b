"""Sample quality per sampler and step count: the eval metrics of DPM-Solver++(2M) and DDIM at 10, 20 and 50
steps (and DDPM with all T steps), all from one checkpoint and the same starting noise.

    .venv/bin/python benchmarks/sampler_quality.py --checkpoint outputs/model_final.pt
    .venv/bin/python benchmarks/sampler_quality.py --checkpoint RUN/model_final.pt --num_images 1000 --ddpm
    .venv/bin/python benchmarks/sampler_quality.py --checkpoint RUN/model_final.pt --samplers dpm++sde \
        --steps 0 --autoguidance 2 --ddpm     # the default fast sampler, autoguided, against DDPM-1000

Each row prints the seconds it took beside its scores, so quality per second can be read off directly;
the last row is real held-out images (the floor). Every row is also appended to ``--results`` as a record.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import harness  # benchmarks/ is on the path when a script in it runs
from rich.console import Console
from rich.table import Table

import core


def scored(
    loaded: core.LoadedModel, evaluator: core.Evaluator, sampler: str, steps: int | None, args
) -> dict[str, Any]:
    """One row: ``args.num_images`` images of ``sampler`` from the same noise as every other row, scored."""
    w = args.autoguidance if sampler != "ddpm" else 1.0
    how = {"guidance_scale": args.guidance_scale, "guide": loaded.guide, "autoguidance": w}
    device, dataset = next(loaded.model.parameters()).device, loaded.config.dataset
    images, labels, seconds = harness.draw(
        loaded.model, loaded.schedule, loaded.image_shape, sampler, steps, args.num_images, device, **how,
        dataset=dataset,
    )  # fmt: skip
    plan = core.plan_sampling(
        loaded.model, loaded.schedule, loaded.image_shape, 1, sampler, steps, **how, dataset=dataset
    )
    scores = evaluator.score(images, labels)
    figures = {**harness.figures(scores), "steps": len(plan.timesteps), "seconds": round(seconds, 1)}
    if loaded.model.num_classes:
        figures["class_accuracy"] = round(scores.mean_class_accuracy, 4)
    name = sampler + ("" if plan.autoguidance is None else f", autoguided w = {plan.autoguidance:g}")
    return {"sampler": name, "config": {"checkpoint": str(args.checkpoint), "num_images": args.num_images,
            "requested_steps": steps, "guidance_scale": args.guidance_scale}, "figures": figures}  # fmt: skip


def parse() -> argparse.Namespace:
    parser = harness.parser(__doc__, Path("outputs/records/sampler_quality.jsonl"))
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--steps", type=int, nargs="+", default=[10, 20, 50], help="0: the sampler's default")
    parser.add_argument("--samplers", nargs="+", default=["dpm++sde", "dpm++", "ddim"])
    parser.add_argument("--ddpm", action="store_true", help="also DDPM with all T steps (slow on a CPU)")
    parser.add_argument("--guidance_scale", type=float, default=3.0, help="for class-conditional checkpoints")
    parser.add_argument(
        "--autoguidance",
        type=float,
        default=1.0,
        help="w for the fast samplers when the checkpoint kept a guide (1: none; DDPM is never guided)",
    )
    return parser.parse_args()


def main() -> None:
    args = parse()
    device = harness.setup(args)
    loaded = core.load_model(args.checkpoint, device)
    evaluator = core.Evaluator(core.load_classifier(loaded.config.dataset))
    runs = [(sampler, steps or None) for sampler in args.samplers for steps in args.steps]
    if args.ddpm:
        runs.append(("ddpm", None))
    console = Console(width=160)
    rows = []
    for sampler, steps in runs:
        rows.append(harness.record(args.results, scored(loaded, evaluator, sampler, steps, args)))
        console.print(f"{sampler} {steps}: done in {rows[-1]['figures']['seconds']:.0f}s", style="dim")
    floor = harness.figures(evaluator.floor(args.num_images))
    title = f"{args.num_images} images from {args.checkpoint} ({loaded.config.dataset}), "
    table = Table(title=title + core.device_label(device, core.use_bf16(device)))
    classes = bool(loaded.model.num_classes)
    for column in ("sampler", "steps", "seconds", "FD", "recognised", "entropy") + (("class acc.",) if classes else ()):
        table.add_column(column, justify="right")
    for row in rows:
        f = row["figures"]
        accuracy = [f"{f['class_accuracy']:.1%}"] if classes else []
        cells = [str(f["steps"]), f"{f['seconds']:.1f}", *harness.score_cells({**f, "num_images": 0})[1:]]
        table.add_row(row["sampler"], *cells, *accuracy)
    real = ["-", "-", *harness.score_cells({**floor, "num_images": 0})[1:], *(["-"] if classes else [])]
    table.add_row("real images", *real, style="dim")
    console.print(table)


if __name__ == "__main__":
    main()
