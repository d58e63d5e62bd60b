"""The channels-last GroupNorm-SiLU kernel (``core/fused_norm.py``) against PyTorch's operators, timed in turn in
one process.

    .venv/bin/python benchmarks/fused_norm.py
    .venv/bin/python benchmarks/fused_norm.py --models small base --repeats 10

Two parts, each a record in ``docs/records/speed/fused_norm.jsonl``:

- ``layer``: one GroupNorm and SiLU, forward and backward, on bf16 activations of 32 images of 64 channels at
  28 x 28: PyTorch's kernels in NCHW order (what a network without the kernel runs), PyTorch's in NHWC order,
  and the kernel in NHWC order;
- ``call``: one call of the default network on 64 images, as sampling without a compiled package makes it
  (weights in NCHW order: the first convolution's output is what turns channels-last);
- ``step``: the training step of each of ``--models`` (a preset, or ``small``: the default network) at its
  batch size, the trainer as it runs with the kernel (channels-last) and without it (NCHW), from the same
  seed, with the largest relative difference of their losses over the timed steps.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import harness  # benchmarks/ is on the path when a script in it runs
import torch
import torch.nn.functional as F

import core
from core import fused_norm

RESULTS = harness.RECORDS / "speed" / "fused_norm.jsonl"


def layer_runs() -> dict[str, object]:
    """GroupNorm-SiLU forward and backward three ways, on the same values."""
    torch.manual_seed(0)
    norm = torch.nn.GroupNorm(8, 64)
    nchw = torch.randn(32, 64, 28, 28).to(torch.bfloat16).requires_grad_()
    nhwc = nchw.detach().contiguous(memory_format=torch.channels_last).requires_grad_()
    dy = torch.randn_like(nchw)

    def pytorch(x: torch.Tensor) -> None:
        with torch.autocast("cpu", dtype=torch.bfloat16):
            F.silu(norm(x)).backward(dy)

    return {
        "pytorch_nchw": lambda: pytorch(nchw),
        "pytorch_nhwc": lambda: pytorch(nhwc),
        "kernel_nhwc": lambda: fused_norm.group_norm_silu(norm, nhwc).backward(dy),
    }


def call_runs() -> dict[str, object]:
    """One no-grad call of the default network (weights in NCHW order, as sampling's) on 64 images at t = 500
    under bf16 autocast, without and with the kernel, each switching it on or off for its own calls."""
    torch.manual_seed(0)
    model = core.build_model(core.TrainConfig(), (1, 28, 28)).eval()
    x, t = torch.randn(64, 1, 28, 28), torch.full((64,), 500)

    @torch.no_grad()
    def call(enabled: bool) -> None:
        fused_norm.set_enabled(enabled)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            model(x, t)
        fused_norm.set_enabled(True)

    return {"without": lambda: call(False), "with": lambda: call(True)}


def step_runs(model: str, folder: str) -> tuple[dict[str, object], dict[str, list[float]], int]:
    """The training step of ``model`` without and with the kernel, each switching it on or off around its
    own steps; the losses each step returns; the batch size."""
    losses: dict[str, list[float]] = {"without": [], "with": []}
    runs, noise = {}, {}
    for name in losses:
        fused_norm.set_enabled(name == "with")
        overrides = core.resolve_overrides({}, None if model == "small" else model)
        trainer = core.Trainer(core.TrainConfig(output_dir=f"{folder}/{name}", guide_at=0.0, seed=0, **overrides))
        x0 = trainer.images_at(torch.arange(trainer.config.batch_size))
        noise[name] = torch.get_rng_state()  # each draws the same timesteps and noise, step after step

        def step(trainer=trainer, x0=x0, name=name) -> None:
            fused_norm.set_enabled(name == "with")
            torch.set_rng_state(noise[name])
            losses[name].append(trainer.train_step(x0))
            noise[name] = torch.get_rng_state()

        runs[name] = step
    fused_norm.set_enabled(True)
    return runs, losses, trainer.config.batch_size


def main() -> None:
    parser = harness.parser(__doc__)
    parser.add_argument("--models", nargs="+", default=["small", "base"], choices=["small", *core.MODEL_PRESETS])
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    device = harness.setup(args)
    env = harness.environment(device)
    if fused_norm.kernel() is None:
        raise SystemExit("the kernel cannot be built here (no C compiler?)")
    seconds = harness.alternating_medians(layer_runs(), args.repeats * 5, warmup=3)
    figures = {name: round(s * 1000, 2) for name, s in seconds.items()}
    harness.record(args.out, {"part": "layer", "config": {"shape": [32, 64, 28, 28]}, "figures": figures}, env)
    seconds = harness.alternating_medians(call_runs(), args.repeats * 3, warmup=3)
    figures = {f"{name}_ms": round(s * 1000, 2) for name, s in seconds.items()}
    harness.record(args.out, {"part": "call", "config": {"model": "small", "images": 64}, "figures": figures}, env)
    for model in args.models:
        with tempfile.TemporaryDirectory() as folder:
            runs, losses, batch = step_runs(model, folder)
            seconds = harness.alternating_medians(runs, args.repeats, warmup=3)
        gap = max(abs(a - b) / b for a, b in zip(losses["with"], losses["without"], strict=True))
        figures = {f"{name}_img_s": round(batch / s, 1) for name, s in seconds.items()}
        figures["largest_loss_difference"] = float(f"{gap:.2g}")
        row = {"part": "step", "config": {"model": model, "batch_size": batch}, "figures": figures}
        harness.record(args.out, row, env)


if __name__ == "__main__":
    main()
