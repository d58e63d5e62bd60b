"""What a trained model does besides sampling, measured: inversion, interpolation and inpainting.

    .venv/bin/python benchmarks/editing.py --checkpoint outputs/model_final.pt
    .venv/bin/python benchmarks/editing.py --checkpoint RUN/model_final.pt --parts inpaint --resample 1 2 4 8

Each part appends records to ``docs/records/editing/PART.jsonl`` (``--out``):

- ``invert``: held-out images encoded by the ODE and decoded back, for several step counts: the
  reconstruction error against a random sample's, and the moments of the x_T found.
- ``interpolate``: the mid-points of ``--pairs`` pairs of noise vectors, slerp and lerp, decoded by the
  same deterministic sampler as ordinary samples from fresh noise: the share the classifier recognises of
  each, and the mid-points' noise norm.
- ``inpaint``: for each mask, held-out digits filled with ``--resample`` jumps per step: the share that keeps
  its original's class (by the bundled classifier), and the seconds taken.
- ``speed``: each command with its defaults on 64 images, wall time of the real process.
"""

from __future__ import annotations

import argparse
import itertools
import math
import subprocess
import sys
import time
from pathlib import Path

import harness  # benchmarks/ is on the path when a script in it runs
import torch

import core

PARTS = ("invert", "interpolate", "inpaint", "speed")


def recognised(evaluator: core.Evaluator, images: torch.Tensor) -> float:
    return round(evaluator.score(images).recognised, 4)


def invert_rows(loaded: core.LoadedModel, images: torch.Tensor, steps: list[int]) -> list[dict]:
    rows = []
    for count in steps:
        times = core.sampler_timesteps(loaded.schedule, "ddim", count)
        start = time.perf_counter()
        x_T = core.last_step(core.invert(loaded.model, loaded.schedule, images, times)).x
        back = core.last_step(core.sample(loaded.model, loaded.schedule, x_T, "ddim", times=times, clip=False)).x
        fresh = torch.randn(images.shape, generator=torch.Generator().manual_seed(1))
        random = core.last_step(core.sample(loaded.model, loaded.schedule, fresh, "ddim", times=times)).x
        mse, random_mse = core.pixel_mse(back, images), core.pixel_mse(random, images)
        figures = {"mse": round(mse, 6), "random_mse": round(random_mse, 6), "ratio": round(random_mse / mse, 1)}
        figures.update(x_T_mean=round(x_T.mean().item(), 4), x_T_std=round(x_T.std().item(), 4))
        config = {"steps": count, "num_images": len(images), "solver": "ddim"}
        rows.append({"part": "invert", "config": config, "figures": figures, "wall_s": time.perf_counter() - start})
    return rows


def decoded_figures(evaluator: core.Evaluator, images: torch.Tensor) -> dict[str, float]:
    """What a decoded set looks like to the classifier (recognised share, distance to real digits) and to the
    eye: its ink, the mean brightness on the [0, 1] scale, which a blur spreads thin."""
    scores = evaluator.score(images)
    ink = round(((images.clamp(-1, 1) + 1) / 2).mean().item(), 4)
    return {"recognised": round(scores.recognised, 4), "fd": round(scores.frechet_distance, 2), "ink": ink}


def interpolate_rows(loaded: core.LoadedModel, evaluator: core.Evaluator, pairs: int, steps: int) -> list[dict]:
    times = core.sampler_timesteps(loaded.schedule, "ddim", steps)
    generator = torch.Generator().manual_seed(2)
    a, b = (torch.randn(pairs, *loaded.image_shape, generator=generator) for _ in range(2))

    def decoded(noise: torch.Tensor) -> torch.Tensor:
        return core.last_step(core.sample(loaded.model, loaded.schedule, noise, "ddim", times=times)).x

    rows = [{"part": "interpolate", "method": "ordinary samples", "figures": decoded_figures(evaluator, decoded(a))}]
    for method, mix in (("slerp", core.slerp), ("lerp", core.lerp)):
        middle = mix(a, b, 0.5)
        norm = middle.flatten(1).norm(dim=1).mean().item() / math.sqrt(a[0].numel())
        figures = {**decoded_figures(evaluator, decoded(middle)), "norm_over_sqrt_d": round(norm, 3)}
        rows.append({"part": "interpolate", "method": method, "figures": figures})
    for row in rows:
        row["config"] = {"pairs": pairs, "steps": steps, "sampler": "ddim"}
    return rows


def inpaint_rows(loaded: core.LoadedModel, evaluator: core.Evaluator, args: argparse.Namespace) -> list[dict]:
    generator = torch.Generator().manual_seed(3)
    data = core.load_dataset(loaded.config.dataset, "test")
    times = core.ddim_timesteps(loaded.schedule.timesteps, args.inpaint_steps)
    dataset = loaded.config.dataset
    model, w = core.edit_predictor(loaded.model, loaded.schedule, loaded.guide, args.autoguidance, dataset)
    rows = []
    for mask_name in args.masks:
        count = args.num_images if mask_name == "bottom" else args.other_masks_images
        images = core.pick_images(data, count, generator)
        wanted = evaluator.classifier.features_and_probabilities(images)[1].argmax(1)
        mask = core.region_mask(mask_name, loaded.image_shape)
        for resample, guidance in itertools.product(args.resample, args.guidance):
            start = time.perf_counter()
            generator = torch.Generator().manual_seed(4)
            run = core.inpaint(model, loaded.schedule, images, mask, times, resample, generator, args.jump, guidance)
            filled = core.last_step(run).x.clamp(-1, 1)
            seconds = time.perf_counter() - start
            kept = (evaluator.classifier.features_and_probabilities(filled)[1].argmax(1) == wanted).float().mean()
            config = {"mask": mask_name, "resample": resample, "steps": args.inpaint_steps, "num_images": count}
            config.update(autoguidance=w, jump=args.jump, guidance=guidance)
            rows.append(
                {
                    "part": "inpaint",
                    "config": config,
                    "figures": {"kept_class": round(kept.item(), 4)},
                    "wall_s": seconds,
                }
            )
    return rows


def speed_rows(checkpoint: str) -> list[dict]:
    rows = []
    for command in ("invert", "interpolate", "inpaint"):
        argv = [sys.executable, "-m", "ddpm_tui", command, "--checkpoint", checkpoint]
        argv += ["--export_dir", f"outputs/editing_speed/{command}"]
        if command == "interpolate":
            argv += ["--output", "outputs/editing_speed/interpolation.png"]
        start = time.perf_counter()
        subprocess.run(argv, check=True, capture_output=True)
        seconds = time.perf_counter() - start
        rows.append(
            {
                "part": "speed",
                "command": command,
                "config": {"argv": argv[2:]},
                "figures": {"seconds": round(seconds, 1)},
            }
        )
    return rows


def main() -> None:
    parser = harness.parser(__doc__)
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--parts", nargs="+", choices=PARTS, default=list(PARTS))
    parser.add_argument("--invert_steps", type=int, nargs="+", default=[10, 50, 200])
    parser.add_argument("--pairs", type=int, default=500, help="interpolation pairs")
    parser.add_argument("--masks", nargs="+", choices=core.MASKS, default=list(core.MASKS))
    parser.add_argument("--resample", type=int, nargs="+", default=[4], help="RePaint jumps per step to measure")
    parser.add_argument("--inpaint_steps", type=int, default=25)
    parser.add_argument("--autoguidance", type=float, default=1.0, help="w for inpainting (1: none)")
    parser.add_argument("--jump", type=int, default=1, help="RePaint's jump length in steps")
    parser.add_argument("--guidance", type=float, nargs="+", default=[0.0], help="reconstruction guidance w")
    parser.add_argument("--other_masks_images", type=int, default=250, help="images for the masks other than bottom")
    parser.add_argument("--out", type=Path, default=harness.RECORDS / "editing")
    args = parser.parse_args()
    device = harness.setup(args)
    env = harness.environment(device)
    loaded = core.load_model(args.checkpoint, device)
    evaluator = core.Evaluator(core.load_classifier(loaded.config.dataset))
    rows: list[dict] = []
    with core.autocast(device, core.use_bf16(device)):
        if "invert" in args.parts:
            held_out = core.pick_images(
                core.load_dataset(loaded.config.dataset, "test"), 256, torch.Generator().manual_seed(5)
            )
            rows += invert_rows(loaded, held_out, args.invert_steps)
        if "interpolate" in args.parts:
            rows += interpolate_rows(loaded, evaluator, args.pairs, core.DEFAULT_STEPS["ddim"])
        if "inpaint" in args.parts:
            rows += inpaint_rows(loaded, evaluator, args)
    if "speed" in args.parts:
        rows += speed_rows(args.checkpoint)
    for row in rows:
        row["config"] = {**row.get("config", {}), "checkpoint": args.checkpoint}
        harness.record(args.out / f"{row['part']}.jsonl", row, env)


if __name__ == "__main__":
    main()
