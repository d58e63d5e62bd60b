"""Ways to run the default network faster, against the way it runs now, timed in one process.

    .venv/bin/python benchmarks/step_variants.py
    .venv/bin/python benchmarks/step_variants.py --variants eager channels_last --device cuda

For each variant: the median milliseconds of one network call on ``--num_images`` images (a sampling step,
bf16 autocast where the device has it) and the images/s of the training step at batch 32, and the largest
difference of its output from eager's. Ratios compare a variant with the eager row of the same run. Variants:

- ``eager``: the network as ``core`` runs it;
- ``channels_last``: weights and inputs in NHWC memory order, which some convolution kernels prefer;
- ``channels_last_fp32_norm``: the same with every GroupNorm computing in fp32, as it does when compiled
  (CPU autocast leaves it in bf16, whose channels-last kernel is slow);
- ``compile``: ``torch.compile`` (inductor) of the network, with its one-time compile seconds (``--cold``:
  with an empty compile cache, as a learner's first run has; otherwise the cache as found);
- ``bf16_weights``: the weights stored in bf16 for sampling, so autocast has no fp32 weight to cast at each
  call (sampling only: training keeps fp32 weights for the optimiser).

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

VARIANTS = ("eager", "channels_last", "channels_last_fp32_norm", "compile", "bf16_weights")


def fp32_norm(norm: torch.nn.GroupNorm, x: torch.Tensor) -> torch.Tensor:
    return F.group_norm(x.float(), norm.num_groups, norm.weight, norm.bias, norm.eps)


def fp32_norms(model: torch.nn.Module) -> torch.nn.Module:
    """``model`` with every GroupNorm computing in fp32 eagerly too, as it does when compiled."""
    for module in model.modules():
        if isinstance(module, torch.nn.GroupNorm):
            module.forward = functools.partial(fp32_norm, module)
    return model


def prepare(variant: str, model: torch.nn.Module, x: torch.Tensor) -> tuple[torch.nn.Module, torch.Tensor, float]:
    """The network and input as ``variant`` runs them, and the seconds that took (compiling)."""
    start = time.perf_counter()
    if variant.startswith("channels_last"):
        model = fp32_norms(model) if variant.endswith("fp32_norm") else model
        return model.to(memory_format=torch.channels_last), x.contiguous(memory_format=torch.channels_last), 0.0
    if variant == "compile":
        compiled = torch.compile(model, dynamic=False)
        return compiled, x, time.perf_counter() - start
    if variant == "bf16_weights":
        return model.to(torch.bfloat16), x, 0.0
    return model, x, 0.0


def perturbed_network(device: torch.device) -> torch.nn.Module:
    """The default network with seeded noise (std 0.02) added to every weight, in eval mode."""
    torch.manual_seed(0)
    model = core.build_model(core.TrainConfig(), (1, 28, 28)).to(device).eval()
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(0.02 * torch.randn_like(parameter))
    return model


def call_ms(model: torch.nn.Module, x: torch.Tensor, device: torch.device, repeats: int) -> tuple[float, float]:
    """Median milliseconds of one no-grad bf16 call, and the seconds of the first call (compiling)."""
    t = torch.full((len(x),), 500, device=device)

    @torch.no_grad()
    def call() -> torch.Tensor:
        with core.autocast(device, core.use_bf16(device)):
            return model(x, t)

    start = time.perf_counter()
    call()
    first = time.perf_counter() - start
    median, _ = harness.median_seconds(call, repeats, warmup=2)
    return median * 1000, first


def train_rate(variant: str, device: torch.device, repeats: int) -> float | None:
    """Images/s of the default training step with the network as ``variant`` runs it (None: sampling only)."""
    if variant == "bf16_weights":
        return None
    with tempfile.TemporaryDirectory() as folder:
        trainer = core.Trainer(core.TrainConfig(device=str(device), output_dir=folder, guide_at=0.0))
        x0 = trainer.images_at(torch.arange(32, device=device))
        trainer.model, x0, _ = prepare(variant, trainer.model, x0)
        median, _ = harness.median_seconds(lambda: trainer.train_step(x0), repeats, warmup=3)
    return len(x0) / median


def main() -> None:
    parser = harness.parser(__doc__)
    parser.set_defaults(num_images=64)
    parser.add_argument("--variants", nargs="+", choices=VARIANTS, default=list(VARIANTS))
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--cold", action="store_true", help="compile with an empty inductor cache, as a first run")
    parser.add_argument("--out", type=Path, default=harness.RECORDS / "speed")
    args = parser.parse_args()
    if args.cold:
        os.environ["TORCHINDUCTOR_CACHE_DIR"] = tempfile.mkdtemp(prefix="inductor-")
    device = harness.setup(args)
    env = harness.environment(device)
    x = torch.randn(args.num_images, 1, 28, 28, device=device)
    with torch.no_grad(), core.autocast(device, core.use_bf16(device)):
        reference = perturbed_network(device)(x, torch.full((len(x),), 500, device=device)).float()
    for variant in args.variants:
        model, xx, _ = prepare(variant, perturbed_network(device), x)
        ms, first_s = call_ms(model, xx, device, args.repeats)
        with torch.no_grad(), core.autocast(device, core.use_bf16(device)):
            out = model(xx, torch.full((len(x),), 500, device=device)).float()
        figures = {"call_ms": round(ms, 1), "first_call_s": round(first_s, 1)}
        rate = train_rate(variant, device, args.repeats)
        figures.update(train_img_s=None if rate is None else round(rate, 1))
        figures["max_diff"] = float((out - reference).abs().max())
        config = {"variant": variant, "num_images": args.num_images, "model": "small", "batch_size": 32}
        if variant == "compile":
            config["inductor_cache"] = "cold" if args.cold else "as found"
        harness.record(args.out / "variants.jsonl", {"part": "variants", "config": config, "figures": figures}, env)


if __name__ == "__main__":
    main()
