"""Where the time of a training step and of a sampling step goes: PyTorch's profiler on the default network.

    .venv/bin/python benchmarks/profile_step.py                 # CPU, bf16 as the default run trains
    .venv/bin/python benchmarks/profile_step.py --device cuda
    .venv/bin/python benchmarks/profile_step.py --model base    # another preset's network

Each step kind is run ``--warmup`` times untimed, then ``--steps`` times under ``torch.profiler``. The table
of operators by their own (self) time is written to ``docs/records/speed/profile_<kind>_<device>.txt`` (with
``_<model>`` before ``.txt`` for a ``--model`` other than the default), and
one record per kind, with the ten largest operators' share of the step, to ``profile.jsonl``.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import harness  # benchmarks/ is on the path when a script in it runs
import torch
from torch.profiler import ProfilerActivity, profile

import core

ROWS = 25


def training_step(trainer: core.Trainer):
    x0 = trainer.images_at(torch.arange(trainer.config.batch_size, device=trainer.device))
    return lambda: trainer.train_step(x0)


def sampling_step(trainer: core.Trainer, count: int):
    """One network call and one DPM-Solver++ SDE update on ``count`` images, as the fast sampler takes them."""
    model = core.noise_predictor(trainer.ema.model.eval(), trainer.schedule, trainer.config.prediction)
    x = torch.randn(count, *trainer.data.image_shape, device=trainer.device)
    t = torch.full((count,), 500, device=trainer.device)

    @torch.no_grad()
    def step() -> None:
        with core.autocast(trainer.device, trainer.bf16):
            eps = model(x, t).float()
        core.ddim_step(trainer.schedule, x, 500, 480, eps, torch.randn_like(x), eta=1.0)

    return step


def profiled(step, steps: int, warmup: int, device: torch.device):
    for _ in range(warmup):
        step()
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    with profile(activities=activities) as prof:
        for _ in range(steps):
            step()
        if device.type == "cuda":
            torch.cuda.synchronize()
    return prof


def top_operators(prof, steps: int, device: torch.device) -> tuple[str, list[dict]]:
    """The profiler's table by self time, and the ten largest operators with their share and ms per step."""
    key = "self_cuda_time_total" if device.type == "cuda" else "self_cpu_time_total"
    text = prof.key_averages().table(sort_by=key, row_limit=ROWS)
    events = [e for e in prof.key_averages() if not e.key.startswith("ProfilerStep")]
    attribute = "self_device_time_total" if device.type == "cuda" else "self_cpu_time_total"
    total = sum(getattr(e, attribute) for e in events)
    ranked = sorted(events, key=lambda e: getattr(e, attribute), reverse=True)[:10]
    rows = [
        {
            "op": e.key,
            "share": round(getattr(e, attribute) / total, 4),
            "ms_per_step": round(getattr(e, attribute) / 1000 / steps, 3),
            "calls_per_step": e.count / steps,
        }
        for e in ranked
    ]
    return text, rows


def main() -> None:
    parser = harness.parser(__doc__)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--sample_images", type=int, default=64)
    parser.add_argument("--out", type=Path, default=harness.RECORDS / "speed")
    parser.add_argument("--model", choices=core.MODEL_PRESETS, help="a preset network (default: the default one)")
    args = parser.parse_args()
    device = harness.setup(args)
    env = harness.environment(device)
    with tempfile.TemporaryDirectory() as folder:
        overrides = core.resolve_overrides({}, args.model)
        trainer = core.Trainer(core.TrainConfig(device=args.device, output_dir=folder, guide_at=0.0, **overrides))
        suffix = f"_{args.model}" if args.model else ""
        kinds = {"train": training_step(trainer), "sample": sampling_step(trainer, args.sample_images)}
        for kind, step in kinds.items():
            prof = profiled(step, args.steps, args.warmup, trainer.device)
            text, rows = top_operators(prof, args.steps, trainer.device)
            args.out.mkdir(parents=True, exist_ok=True)
            (args.out / f"profile_{kind}_{trainer.device.type}{suffix}.txt").write_text(text + "\n")
            config = {"kind": kind, "model": trainer.config.model_name, "bf16": trainer.bf16, "steps": args.steps}
            config["images"] = trainer.config.batch_size if kind == "train" else args.sample_images
            config.update({"preset": args.model} if args.model else {})
            harness.record(args.out / "profile.jsonl", {"part": "profile", "config": config, "top": rows}, env)


if __name__ == "__main__":
    main()
