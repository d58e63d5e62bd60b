"""Where the fast sampler puts its steps, and which of them autoguidance acts on: the same checkpoints,
sampler and guide, with the steps placed and guided by different rules, scored by the eval metrics.

    .venv/bin/python benchmarks/sampler_spacing.py --checkpoints RUN/model_final.pt --num_images 500
    .venv/bin/python benchmarks/sampler_spacing.py --checkpoints A/model_final.pt B/model_final.pt \\
        --spacings logsnr:inf logsnr:20 --num_images 1000

A spacing is one of

* ``logsnr:S``: T-1, then evenly in log-SNR from noise level sigma = S down to t = 0
  (:func:`core.log_snr_timesteps`; ``logsnr:inf`` spreads them over the schedule's whole range);
* ``uniform``: evenly in t (DDIM's placement, :func:`core.ddim_timesteps`);
* ``karras``: T-1, then EDM's sigma_i = (s_max^(1/7) + i/(n-1) (s_min^(1/7) - s_max^(1/7)))^7 from
  s_max = 80 (Karras et al. 2022), each at its nearest timestep.

``--guide_above S`` autoguides (w = ``--autoguidance``) only the steps above noise level S (0: all of them),
and ``--guide_below S`` only those below S as well (an interval with both ends, Kynkaanniemi et al. 2024);
each guided step costs two network calls, so compare rows of equal calls (``--steps``). ``--eta E`` sets
the sampler's fresh noise per step (0: the ODE, 1: the reverse SDE of DDPM; default ``core.DEFAULT_ETA``).
``--guide CHECKPOINT`` autoguides with that checkpoint's network (for example a smaller model, ``ddpm-tui
train --model tiny``) instead of each checkpoint's own early snapshot.
Every spacing samples from the same starting noise (batch i seeded i, as ``ddpm-tui eval`` does). Rows
append to a JSON-lines file (``--results``), so checkpoints can be scored in parallel (``--threads 1``
each); ``--show FILE`` prints its table.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import time
from pathlib import Path
from typing import Any

import harness  # benchmarks/ is on the path when a script in it runs
import torch
from rich.console import Console
from rich.table import Table

import core

KARRAS_RHO, KARRAS_SIGMA_MAX = 7.0, 80.0
BATCH = 250
COLUMNS = (
    "checkpoint",
    "spacing",
    "steps",
    "eta",
    "w",
    "guide",
    "above",
    "below",
    "images",
    "FD",
    "recognised",
    "entropy",
    "sigmas",
)


def timesteps(spacing: str, schedule: core.NoiseSchedule, steps: int) -> list[int]:
    """The timesteps ``spacing`` visits, noisiest first."""
    name, _, value = spacing.partition(":")
    if name == "logsnr":
        return core.log_snr_timesteps(schedule, steps, float(value))
    if name == "uniform":
        return core.ddim_timesteps(schedule.timesteps, steps)
    if name == "karras":
        log_sigmas = schedule.log_sigmas().double().cpu()
        low, high = math.exp(float(log_sigmas[0])) ** (1 / KARRAS_RHO), KARRAS_SIGMA_MAX ** (1 / KARRAS_RHO)
        times = [schedule.timesteps - 1]
        for i in range(steps - 1):
            sigma = (high + i / max(steps - 2, 1) * (low - high)) ** KARRAS_RHO
            t = int((log_sigmas - math.log(sigma)).abs().argmin())
            times.append(max(min(t, times[-1] - 1), steps - 2 - i))
        return times
    raise ValueError(f"unknown spacing {spacing!r}")


def guided_steps(schedule: core.NoiseSchedule, guide_above: float, guide_below: float) -> torch.Tensor | None:
    """The timesteps autoguidance acts on: those above noise level ``guide_above`` and below
    ``guide_below``; None (all) when neither bound is set."""
    if guide_above <= 0 and math.isinf(guide_below):
        return None
    return core.guidance_interval(schedule, guide_above, guide_below)


def draw(
    predictor: core.NoisePredictor, loaded: core.LoadedModel, times: list[int], count: int, eta: float
) -> torch.Tensor:
    """``count`` images of the fast sampler along ``times`` with fresh noise ``eta``, from the starting noise
    and generators ``ddpm-tui eval`` draws (batch i of ``BATCH`` seeded i)."""
    images = []
    with core.autocast(torch.device("cpu"), core.use_bf16(torch.device("cpu"))):
        for index, first in enumerate(range(0, count, BATCH)):
            plan = core.plan_sampling(
                loaded.model,
                loaded.schedule,
                loaded.image_shape,
                min(BATCH, count - first),
                core.FAST_SAMPLER,
                seed=index,
                autoguidance=1,
            )
            run = core.sample(
                predictor, plan.schedule, plan.x_T, plan.sampler, eta=eta, generator=plan.generator, times=times
            )
            images.append(core.last_step(run).x.float().clamp(-1, 1))
    return torch.cat(images)


def score(loaded: core.LoadedModel, times: list[int], args: argparse.Namespace, evaluator: core.Evaluator) -> dict:
    """``args.num_images`` samples along ``times``, autoguided with w = ``args.autoguidance`` between noise
    levels ``args.guide_above`` and ``args.guide_below`` (0 and inf: on every step), scored."""
    interval = guided_steps(loaded.schedule, args.guide_above, args.guide_below)
    predictor = loaded.model
    if loaded.guide is not None:
        predictor = core.autoguided(loaded.model, loaded.guide, args.autoguidance, interval)
    start = time.perf_counter()
    scores = evaluator.score(draw(predictor, loaded, times, args.num_images, args.eta))
    return {**harness.figures(scores), "seconds": round(time.perf_counter() - start, 1)}


def show(path: Path, console: Console) -> None:
    rows = list(harness.read(path))
    table = Table(title=f"{path}: {core.FAST_SAMPLER}, FD / recognised / class entropy")
    for column in COLUMNS:
        table.add_column(column, justify="right")

    def order(r: dict) -> tuple:
        return (
            r["checkpoint"],
            r["spacing"],
            r.get("eta", 1.0),
            r["w"],
            r.get("guide_above", 0),
            r.get("guide_below", math.inf),
            r["steps"],
        )

    for r in sorted(rows, key=order):
        sigmas = r["sigmas"]
        table.add_row(
            r["checkpoint"],
            r["spacing"],
            str(r["steps"]),
            f"{r.get('eta', 1.0):g}",
            f"{r['w']:g}",
            r.get("guide") or "own",
            f"{r.get('guide_above', 0):g}",
            f"{r.get('guide_below', math.inf):g}",
            *harness.score_cells(r),
            f"{sigmas[0]:.3g}, {sigmas[1]:.3g}, {sigmas[2]:.3g} ... {sigmas[-1]:.3g}",
        )
    console.print(table)


def main() -> None:
    parser = harness.parser(__doc__, Path("outputs/sampler_spacing.jsonl"))
    parser.set_defaults(num_images=500)
    parser.add_argument("--checkpoints", nargs="+", default=[])
    spacings = ["logsnr:inf", f"logsnr:{core.SIGMA_MAX:g}", "uniform", "karras"]
    parser.add_argument("--spacings", nargs="+", default=spacings)
    parser.add_argument("--steps", type=int, help="sampler steps (default: as many as 50 network calls allow)")
    parser.add_argument(
        "--autoguidance", type=float, default=core.default_autoguidance("mnist"), help="w; 1 = no guide"
    )
    parser.add_argument(
        "--guide_above", type=float, default=core.GUIDANCE_SIGMA_MIN, help="guide only above this sigma; 0 = always"
    )
    parser.add_argument(
        "--guide_below", type=float, default=core.GUIDANCE_SIGMA_MAX, help="and only below this sigma; inf = no bound"
    )
    parser.add_argument(
        "--eta", type=float, default=core.DEFAULT_ETA[core.FAST_SAMPLER], help="fresh noise per step (1: DDPM's)"
    )
    parser.add_argument("--guide", help="autoguide with this checkpoint's network instead of each one's own guide")
    args = parser.parse_args()
    console = Console(width=160)
    if harness.only_show(args, show, console):
        return
    guide = core.load_model(args.guide).model if args.guide else None
    for checkpoint in args.checkpoints:
        loaded = core.load_model(checkpoint)
        if guide is not None:
            loaded = dataclasses.replace(loaded, guide=guide)
        evaluator = core.Evaluator(core.load_classifier(loaded.config.dataset))
        log_sigmas = loaded.schedule.log_sigmas()
        steps = args.steps or core.DEFAULT_STEPS[core.FAST_SAMPLER]
        if args.steps is None and loaded.guide is not None and args.autoguidance != 1:
            steps = core.autoguided_steps(
                loaded.schedule, core.FAST_SAMPLER, guided_steps(loaded.schedule, args.guide_above, args.guide_below)
            )
        for spacing in args.spacings:
            times = timesteps(spacing, loaded.schedule, steps)
            row: dict[str, Any] = {
                "checkpoint": checkpoint,
                "spacing": spacing,
                "steps": len(times),
                "eta": args.eta,
                "w": args.autoguidance if loaded.guide is not None else 1.0,
                "guide": args.guide,
                "guide_above": args.guide_above,
                "guide_below": args.guide_below,
                "num_images": args.num_images,
                "sigmas": [round(math.exp(float(log_sigmas[t])), 3) for t in times],
                **score(loaded, times, args, evaluator),
            }
            harness.record(args.results, row)
    show(args.results, console)


if __name__ == "__main__":
    main()
