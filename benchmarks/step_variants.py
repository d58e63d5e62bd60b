"""Ways to run the default network (or a ``--model`` preset) faster, against the way it runs now, timed in turn
in one process.

    .venv/bin/python benchmarks/step_variants.py
    .venv/bin/python benchmarks/step_variants.py --variants eager channels_last --device cuda
    .venv/bin/python benchmarks/step_variants.py --model base --variants eager compile --cold --repeats 5

For each variant: the median milliseconds of one network call on ``--num_images`` images (a sampling step,
bf16 autocast where the device has it) and the images/s of the training step at batch 32, over ``--repeats``
rounds that time every variant in turn, and the largest difference of its output from eager's. Ratios
compare a variant with the eager row of the same run. Variants:

- ``eager``: the network as ``core`` runs it;
- ``channels_last``: weights and inputs in NHWC memory order, which some convolution kernels prefer;
- ``channels_last_fp32_norm``: the same with every GroupNorm computing in fp32, as it does when compiled
  (CPU autocast leaves it in bf16, whose channels-last kernel is slow);
- ``compile``: ``torch.compile`` (inductor) of the network, with its one-time compile seconds (``--cold``:
  with an empty compile cache, as a learner's first run has; otherwise the cache as found);
- ``compile_channels_last``: the same in NHWC memory order;
- ``bf16_weights``: the weights stored in bf16 for sampling, so autocast has no fp32 weight to cast at each
  call (sampling only: training keeps fp32 weights for the optimiser);
- ``no_norm`` and ``channels_last_no_norm``: bounds, not ways to run the network. Every GroupNorm becomes a
  multiplication by one, one pass over its input and one over its gradient, the least a normalisation can
  cost; in NHWC order this is what channels-last would give with a GroupNorm as fast as the NCHW one. Not
  the same network, so their largest difference is no tolerance.

Every variant runs PyTorch's own operators, with the channels-last GroupNorm kernel of ``core/fused_norm.py``
switched off (so ``eager`` is the NCHW network); ``benchmarks/fused_norm.py`` measures the kernel.

The network's weights are its initial ones plus small noise, so that every layer, including the output
convolution that starts at zero, moves the output the differences are measured on.

One record per variant goes to ``docs/records/speed/variants.jsonl``.
"""

from __future__ import annotations

import functools
import os
import tempfile
import time
from pathlib import Path

import harness  # benchmarks/ is on the path when a script in it runs
import torch
import torch.nn.functional as F

import core
from core import fused_norm

VARIANTS = (
    "eager",
    "channels_last",
    "channels_last_fp32_norm",
    "compile",
    "compile_channels_last",
    "bf16_weights",
    "no_norm",
    "channels_last_no_norm",
)


def fp32_norm(norm: torch.nn.GroupNorm, x: torch.Tensor) -> torch.Tensor:
    return F.group_norm(x.float(), norm.num_groups, norm.weight, norm.bias, norm.eps)


def times_one(norm: torch.nn.GroupNorm, x: torch.Tensor) -> torch.Tensor:
    return x * 1.0


def replace_norms(model: torch.nn.Module, forward) -> torch.nn.Module:
    """``model`` with every GroupNorm computing ``forward(norm, x)`` instead."""
    for module in model.modules():
        if isinstance(module, torch.nn.GroupNorm):
            module.forward = functools.partial(forward, module)
    return model


def prepare(variant: str, model: torch.nn.Module, x: torch.Tensor) -> tuple[torch.nn.Module, torch.Tensor]:
    """The network and input as ``variant`` runs them (a compiled network compiles at its first call)."""
    if variant.endswith("norm"):
        model = replace_norms(model, fp32_norm if variant.endswith("fp32_norm") else times_one)
    if variant.startswith("channels_last"):
        return model.to(memory_format=torch.channels_last), x.contiguous(memory_format=torch.channels_last)
    if variant == "compile":
        return torch.compile(model, dynamic=False), x
    if variant == "compile_channels_last":
        model, x = prepare("channels_last", model, x)
        return torch.compile(model, dynamic=False), x
    if variant == "bf16_weights":
        return model.to(torch.bfloat16), x
    return model, x


def perturbed_network(device: torch.device, overrides: dict) -> torch.nn.Module:
    """The network of ``overrides`` (a preset's, or none: the default) with seeded noise (std 0.02) added to
    every weight, in eval mode."""
    torch.manual_seed(0)
    model = core.build_model(core.TrainConfig(**overrides), (1, 28, 28)).to(device).eval()
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(0.02 * torch.randn_like(parameter))
    return model


def caller(model: torch.nn.Module, x: torch.Tensor, device: torch.device):
    """One no-grad call of ``model`` on ``x`` at t = 500, under bf16 autocast where the device has it."""
    t = torch.full((len(x),), 500, device=device)

    @torch.no_grad()
    def call() -> torch.Tensor:
        with core.autocast(device, core.use_bf16(device)):
            return model(x, t)

    return call


def trainer_step(variant: str, device: torch.device, folder: str, overrides: dict):
    """One training step at batch 32 of the network of ``overrides``, run as ``variant`` runs it (None:
    sampling only)."""
    if variant == "bf16_weights":
        return None
    trainer = core.Trainer(core.TrainConfig(device=str(device), output_dir=folder, guide_at=0.0, **overrides))
    x0 = trainer.images_at(torch.arange(32, device=device))
    trainer.network, x0 = prepare(variant, trainer.model, x0)  # the module train_step calls; its weights stay shared
    return lambda: trainer.train_step(x0)


def measure(
    variants: list[str], x: torch.Tensor, device: torch.device, repeats: int, overrides: dict
) -> dict[str, dict]:
    """Each variant's figures: its first call's seconds (compiling), then the median call and training step
    of ``repeats`` rounds that time every variant in turn, and its output's largest difference from eager's."""
    with torch.no_grad(), core.autocast(device, core.use_bf16(device)):
        reference = perturbed_network(device, overrides)(x, torch.full((len(x),), 500, device=device)).float()
    calls, figures = {}, {}
    for variant in variants:
        model, xx = prepare(variant, perturbed_network(device, overrides), x)
        calls[variant] = caller(model, xx, device)
        start = time.perf_counter()
        out = calls[variant]().float()
        figures[variant] = {"first_call_s": round(time.perf_counter() - start, 1)}
        figures[variant]["max_diff"] = float((out - reference).abs().max())
    call_s = harness.alternating_medians(calls, repeats, warmup=2)
    with tempfile.TemporaryDirectory() as folder:
        steps = {variant: trainer_step(variant, device, folder, overrides) for variant in variants}
        step_s = harness.alternating_medians({v: step for v, step in steps.items() if step}, repeats, warmup=3)
    for variant in variants:
        figures[variant]["call_ms"] = round(call_s[variant] * 1000, 1)
        figures[variant]["train_img_s"] = round(32 / step_s[variant], 1) if variant in step_s else None
    return figures


def main() -> None:
    parser = harness.parser(__doc__)
    parser.set_defaults(num_images=64)
    parser.add_argument("--variants", nargs="+", choices=VARIANTS, default=list(VARIANTS))
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--cold", action="store_true", help="compile with an empty inductor cache, as a first run")
    parser.add_argument("--out", type=Path, default=harness.RECORDS / "speed")
    parser.add_argument("--model", choices=core.MODEL_PRESETS, help="a preset network (default: the default one)")
    args = parser.parse_args()
    if args.cold:
        os.environ["TORCHINDUCTOR_CACHE_DIR"] = tempfile.mkdtemp(prefix="inductor-")
    device = harness.setup(args)
    env = harness.environment(device)
    fused_norm.set_enabled(False)
    x = torch.randn(args.num_images, 1, 28, 28, device=device)
    overrides = core.resolve_overrides({}, args.model)
    for variant, figures in measure(args.variants, x, device, args.repeats, overrides).items():
        config = {"variant": variant, "num_images": args.num_images, "model": args.model or "small", "batch_size": 32}
        if variant.startswith("compile"):
            config["inductor_cache"] = "cold" if args.cold else "as found"
        harness.record(args.out / "variants.jsonl", {"part": "variants", "config": config, "figures": figures}, env)


if __name__ == "__main__":
    main()
