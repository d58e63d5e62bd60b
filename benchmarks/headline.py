"""The README's headline figures, measured on this machine with today's code and written as records.

    make results                                        # the same as the next line
    .venv/bin/python benchmarks/headline.py --seeds 0 1 2
    .venv/bin/python benchmarks/headline.py --seeds 3 --parts default_run    # one more seed of the default run

Four parts, each appending its records to ``docs/records/headline/PART.jsonl``:

- ``default_run``: for each seed, ``ddpm-tui train --seed S`` (the default recipe, its epochs included) then
  ``ddpm-tui eval`` on its checkpoint, both as a learner runs them: the training wall time, the final loss,
  and eval's Frechet distance, recognised share and class entropy for 1,000 images beside the real floor.
- ``samplers``: the first seed's checkpoint sampled by the default fast sampler and by DDPM's 1,000 steps,
  ``--sampler_images`` each from the same noise, with their seconds and scores.
- ``throughput``: training images/s at batch 32 (``--batch_sizes``: others too), the better precision of each
  side, of diffusers'
  ``UNet2DModel`` against ours with the same blocks (Ho et al.'s full decoder, no self-attention on either
  side), and of the default network (the lean decoder).
- ``phase3``: the wall time of QUICKSTART's Phase 3, ``ddpm-tui sample --num_images 64
  --show_intermediate`` with DDPM's 1,000 steps, start-up and files included: from an empty compile cache
  and again (``--compile auto``), then from the network's package, the run that builds it and the next
  (``--compile on``): :data:`PHASE3_RUNS`.

Run it on an otherwise idle machine: the wall times are the figures. ``scripts/render_results.py`` then
rewrites the tables.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import harness  # benchmarks/ is on the path when a script in it runs
import torch

import core

PARTS = ("default_run", "samplers", "throughput", "phase3")
CLI = [sys.executable, "-m", "ddpm_tui"]


def command(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> float:
    """Run ``ddpm-tui ARGS`` as a learner would (in ``env``, default this process's; from ``cwd``, whose
    ``ddpm_tui`` then runs, default this one's), its output passed through; returns its wall seconds."""
    print("$ ddpm-tui " + " ".join(args), flush=True)
    start = time.perf_counter()
    subprocess.run([*CLI, *args], check=True, env=env, cwd=cwd)
    return time.perf_counter() - start


# Phase 3 on a machine that has built nothing, in this order: `--compile auto` (the first run builds the GroupNorm
# kernel, in seconds; where it serves, auto runs the network eagerly), the same again, then the network's package
# (`--compile on`: the first run builds it, the next loads it), which auto runs where the kernel does not serve.
PHASE3_RUNS: dict[str, tuple[str, ...]] = {
    "first": ("--compile", "auto"),
    "again": ("--compile", "auto"),
    "package_build": ("--compile", "on"),
    "package": ("--compile", "on"),
}


def phase3(checkpoint: Path, output: Path) -> list[dict[str, Any]]:
    """QUICKSTART's Phase 3, ``ddpm-tui sample --num_images 64 --show_intermediate`` (DDPM's 1,000 steps),
    timed from an empty compile cache through :data:`PHASE3_RUNS`."""
    rows = []
    with tempfile.TemporaryDirectory() as cache:
        env = {**os.environ, "TORCHINDUCTOR_CACHE_DIR": cache}
        for run, flags in PHASE3_RUNS.items():
            seconds = command(
                "sample", "--checkpoint", str(checkpoint), "--num_images", "64", "--show_intermediate",
                "--output", str(output / "samples.png"), *flags, env=env,
            )  # fmt: skip
            config = {"sampler": "ddpm", "num_images": 64, "frames": True, "compile": flags[1]}
            rows.append({"part": "phase3", "run": run, "config": config, "figures": {"seconds": round(seconds, 1)}})
    return rows


def final_loss(run_dir: Path) -> float:
    """The last epoch's mean loss of the run in ``run_dir``, from its ``metrics.jsonl``."""
    epochs = [json.loads(line) for line in (run_dir / "metrics.jsonl").open() if '"kind": "epoch"' in line]
    return round(epochs[-1]["loss"], 4)


def default_run(seed: int, run_dir: Path) -> dict[str, Any]:
    """Train the default recipe with ``seed`` and score it as ``ddpm-tui eval`` does."""
    train_seconds = command("train", "--seed", str(seed), "--output_dir", str(run_dir))
    eval_seconds = command("eval", "--checkpoint", str(run_dir / "model_final.pt"))
    result = json.loads((run_dir / "eval.json").read_text())
    return {
        "part": "default_run",
        "seed": seed,
        "config": json.loads((run_dir / "config.json").read_text()),
        "eval_settings": result["settings"],
        "figures": {
            "train_minutes": round(train_seconds / 60, 2),
            "final_loss": final_loss(run_dir),
            **{k: v for k, v in result["scores"].items() if k in ("frechet_distance", "recognised", "class_entropy")},
            "floor_fd": result["floor"]["frechet_distance"],
            "floor_recognised": result["floor"]["recognised"],
            "eval_minutes": round(eval_seconds / 60, 2),
        },
        "wall_s": round(train_seconds + eval_seconds, 1),
    }


def samplers(checkpoint: Path, count: int) -> list[dict[str, Any]]:
    """The default fast sampler (autoguided as ``eval`` runs it) against DDPM's T steps, from the same
    noise, scored beside ``count`` real images."""
    device = core.resolve_device("auto")
    loaded = core.load_model(checkpoint, device)
    evaluator = core.Evaluator(core.load_classifier(loaded.config.dataset))
    floor = harness.figures(evaluator.floor(count))
    rows = []
    for sampler in (core.FAST_SAMPLER, "ddpm"):
        plan = core.plan_sampling(
            loaded.model,
            loaded.schedule,
            loaded.image_shape,
            1,
            sampler,
            guide=loaded.guide,
            dataset=loaded.config.dataset,
        )
        images, labels, seconds = harness.draw(
            loaded.model,
            loaded.schedule,
            loaded.image_shape,
            sampler,
            None,
            count,
            device,
            guide=loaded.guide,
            dataset=loaded.config.dataset,
        )
        rows.append(
            {
                "part": "samplers",
                "sampler": sampler,
                "config": {"checkpoint": str(checkpoint), "num_images": count, "autoguidance": plan.autoguidance},
                "figures": {
                    "steps": len(plan.timesteps),
                    "calls": harness.calls(loaded.schedule, plan),
                    **harness.figures(evaluator.score(images, labels)),
                    "floor_fd": floor["fd"],
                    "floor_recognised": floor["recognised"],
                },
                "wall_s": round(seconds, 1),
            }
        )
    return rows


def throughput(batch: int, repeats: int) -> dict[str, Any]:
    """Training images/s of the default network, of ours with Ho et al.'s full decoder and of diffusers' at the
    full decoder's blocks (equal blocks: diffusers has no lean decoder), each in both precisions, medians of
    ``repeats`` alternating timings of 10 steps."""
    import torch.nn.functional as F
    from diffusers import DDPMScheduler

    config = core.TrainConfig(batch_size=batch, max_images=batch, output_dir=tempfile.mkdtemp(prefix="headline-"))
    networks = {"ours": "full", "default": config.decoder}
    ours = {
        f"{name} {p}": core.Trainer(dataclasses.replace(config, decoder=decoder, precision=p))
        for name, decoder in networks.items()
        for p in ("fp32", "bf16")
    }
    x0 = ours["ours fp32"].images_at(torch.arange(batch))
    theirs = harness.diffusers_unet(
        tuple(x0.shape[1:]), config.base_channels, config.channel_mults, config.num_res_blocks, config.attention
    )
    optimiser = torch.optim.AdamW(theirs.parameters(), lr=1e-3)
    scheduler = DDPMScheduler(num_train_timesteps=config.timesteps)

    def their_step(bf16: bool) -> None:
        noise, t = torch.randn_like(x0), torch.randint(0, config.timesteps, (batch,))
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss = F.mse_loss(theirs(scheduler.add_noise(x0, noise, t), t).sample.float(), noise)
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()

    runs = {
        **{name: (lambda t=t: [t.train_step(x0) for _ in range(10)]) for name, t in ours.items()},
        **{f"diffusers {p}": (lambda b=p == "bf16": [their_step(b) for _ in range(10)]) for p in ("fp32", "bf16")},
    }
    rates = {name: 10 * batch / seconds for name, seconds in harness.alternating_medians(runs, repeats).items()}
    best = {side: max(rates[f"{side} fp32"], rates[f"{side} bf16"]) for side in ("ours", "default", "diffusers")}
    return {
        "part": "throughput",
        "config": {
            "batch_size": batch,
            "repeats": repeats,
            "attention": f"{config.attention} on both sides",
            "decoders": {"ours": "full", "default": config.decoder, "diffusers": "full"},
        },
        "figures": {
            **{f"{k.replace(' ', '_')}_images_per_s": round(v, 1) for k, v in rates.items()},
            "ours_parameters": ours["ours fp32"].param_count,
            "default_parameters": ours["default fp32"].param_count,
            "diffusers_parameters": sum(p.numel() for p in theirs.parameters()),
            "ratio": round(best["ours"] / best["diffusers"], 2),
            "default_ratio": round(best["default"] / best["diffusers"], 2),
        },
    }


def main() -> None:
    parser = harness.parser(__doc__)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--parts", nargs="+", choices=PARTS, default=list(PARTS))
    parser.add_argument("--sampler_images", type=int, default=1000, help="images per sampler in 'samplers'")
    parser.add_argument("--repeats", type=int, default=15, help="alternating timings per network in 'throughput'")
    parser.add_argument("--batch_sizes", type=int, nargs="+", default=[32], help="batch sizes 'throughput' times")
    parser.add_argument("--out", type=Path, default=harness.RECORDS / "headline")
    parser.add_argument("--runs", type=Path, default=Path("outputs/headline"), help="where the runs are trained")
    args = parser.parse_args()
    env = harness.environment(harness.setup(args))
    first = args.runs / f"seed{args.seeds[0]}"
    if "default_run" in args.parts:
        for seed in args.seeds:
            harness.record(args.out / "default_run.jsonl", default_run(seed, args.runs / f"seed{seed}"), env)
    if "samplers" in args.parts:
        for row in samplers(first / "model_final.pt", args.sampler_images):
            harness.record(args.out / "samplers.jsonl", row, env)
    if "throughput" in args.parts:
        for batch in args.batch_sizes:
            harness.record(args.out / "throughput.jsonl", throughput(batch, args.repeats), env)
    if "phase3" in args.parts:
        for row in phase3(first / "model_final.pt", args.runs / "phase3"):
            harness.record(args.out / "phase3.jsonl", row, env)


if __name__ == "__main__":
    main()
