"""Sample quality per sampler and step count: the eval metrics of DPM-Solver++(2M) and DDIM at 10, 20 and 50
steps (and DDPM with all T steps), all from one checkpoint and the same starting noise.

    .venv/bin/python benchmarks/sampler_quality.py --checkpoint outputs/model_final.pt
    .venv/bin/python benchmarks/sampler_quality.py --checkpoint RUN/model_final.pt --num_images 1000 --ddpm
    .venv/bin/python benchmarks/sampler_quality.py --checkpoint RUN/model_final.pt --samplers dpm++sde \
        --steps 0 --autoguidance 2 --ddpm     # the default fast sampler, autoguided, against DDPM-1000

Each row prints the seconds it took beside its scores, so quality per second can be read off directly;
the last row is real held-out images (the floor).
"""

from __future__ import annotations

import argparse
import time

from rich.console import Console
from rich.table import Table

import core


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--num_images", type=int, default=1000)
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
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()

    device = core.resolve_device(args.device)
    core.configure_for_speed(device)
    loaded = core.load_model(args.checkpoint, device)
    evaluator = core.Evaluator(core.load_classifier(loaded.config.dataset))
    classes = loaded.model.num_classes
    runs = [(sampler, steps or None) for sampler in args.samplers for steps in args.steps]
    if args.ddpm:
        runs.append(("ddpm", None))

    console = Console(width=160)
    table = Table(
        title=f"{args.num_images} images from {args.checkpoint} ({loaded.config.dataset}), "
        f"{core.device_label(device, core.use_bf16(device))}"
    )
    for column in ("sampler", "steps", "seconds", "FD", "recognised", "entropy") + (("class acc.",) if classes else ()):
        table.add_column(column, justify="right")
    for sampler, steps in runs:
        start = time.perf_counter()
        with core.autocast(device, core.use_bf16(device)):
            images, labels = core.generate(
                loaded.model,
                loaded.schedule,
                args.num_images,
                loaded.image_shape,
                sampler,
                steps,
                seed=0,
                device=device,
                guidance_scale=args.guidance_scale,
                guide=loaded.guide,
                autoguidance=args.autoguidance if sampler != "ddpm" else 1.0,
            )
        seconds = time.perf_counter() - start
        scores = evaluator.score(images, labels)
        plan = core.plan_sampling(
            loaded.model,
            loaded.schedule,
            loaded.image_shape,
            1,
            sampler,
            steps,
            guide=loaded.guide,
            autoguidance=args.autoguidance if sampler != "ddpm" else 1.0,
        )
        row = [
            sampler + ("" if plan.autoguidance is None else f", autoguided w = {plan.autoguidance:g}"),
            str(len(plan.timesteps)),
            f"{seconds:.1f}",
            f"{scores.frechet_distance:.2f}",
            f"{scores.recognised:.1%}",
            f"{scores.class_entropy:.3f}",
        ]
        if classes:
            row.append(f"{scores.mean_class_accuracy:.1%}")
        table.add_row(*row)
        console.print(f"{sampler} {steps}: done in {seconds:.0f}s", style="dim")
    floor = evaluator.floor(args.num_images)
    table.add_row(
        "real images",
        "-",
        "-",
        f"{floor.frechet_distance:.2f}",
        f"{floor.recognised:.1%}",
        f"{floor.class_entropy:.3f}",
        *(["-"] if classes else []),
        style="dim",
    )
    console.print(table)


if __name__ == "__main__":
    main()
