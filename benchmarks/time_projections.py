"""What one matrix product for every residual block's time projection saves (``UNet.time_projections``), against
one small product per block, timed in turn in one process.

    .venv/bin/python benchmarks/time_projections.py                  # needs: pip install -e '.[bench]'
    .venv/bin/python benchmarks/time_projections.py --models small base --repeats 20

Each residual block adds :math:`W_i e_t + b_i` to its features. ``stacked`` is how the network computes them:
the blocks' weights stacked into one matrix, one product, split by columns. ``per_block`` replaces
``time_projections`` on the network by each block's own ``nn.Linear`` call, the products concatenated, as
networks usually do it. The same weights either way, so the outputs agree to the bit (``max_difference``, on
the EMA network with small noise added to its weights, so that its output is not zero). For each model: a
training step at batches of 32 and 128 and a sampling call of the EMA network on 64 images under the autocast
a run uses, each way timed ``--repeats`` times in turn (``--steps`` steps or calls per timing). One record per
model and workload goes to ``docs/records/speed/time_projections.jsonl``.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import harness  # benchmarks/ is on the path when a script in it runs
import torch
from kept_memory import WORKLOADS, in_turn_arguments, trainer_step  # training at 32 and 128, a call on 64
from torch import nn

import core
from core.unet import ResidualBlock

RESULTS = harness.RECORDS / "speed" / "time_projections.jsonl"
WAYS = ("per_block", "stacked")


def use(way: str, network: nn.Module) -> None:
    """Make ``network`` compute its time projections ``way``: per block, or as it does (stacked)."""
    if way == "stacked":
        network.__dict__.pop("time_projections", None)
        return
    layers = [m.time_proj for m in network.modules() if isinstance(m, ResidualBlock)]
    network.time_projections = lambda t_emb: torch.cat([layer(t_emb) for layer in layers], dim=1)


def largest_difference(network: nn.Module, call) -> float:
    """The largest difference between the two ways' outputs of a sampling call (0 where they agree exactly)."""
    outputs = []
    for way in WAYS:
        use(way, network)
        outputs.append(call().float())
    return (outputs[0] - outputs[1]).abs().max().item()


def measure(model: str, name: str, args, env: dict) -> None:
    """Time both ways of ``name`` of :data:`WORKLOADS` for the preset ``model``, in turn; record them."""
    kind, size = WORKLOADS[name]
    with tempfile.TemporaryDirectory() as folder:
        overrides = core.resolve_overrides({"batch_size": size if kind == "train" else 32}, model)
        trainer = core.Trainer(core.TrainConfig(output_dir=folder, guide_at=0.0, **overrides))
        network, step = trainer_step(kind, size, trainer)
        if kind == "sample":  # small noise on every weight, so that the output compared is not zero
            with torch.no_grad():
                for p in network.parameters():
                    p.add_(torch.randn_like(p), alpha=0.01)

        def timed(way: str):
            def run() -> None:
                use(way, network)
                for _ in range(args.steps):
                    step()

            return run

        seconds = harness.alternating_medians({way: timed(way) for way in WAYS}, args.repeats, warmup=2)
        difference = largest_difference(network, step) if kind == "sample" else None
    ms = {way: round(1000 * seconds[way] / args.steps, 2) for way in WAYS}
    figures = {**ms, "speedup": round(ms["per_block"] / ms["stacked"], 3), "max_difference": difference}
    config = {"model": model, "kind": kind, "size": size, "steps": args.steps, "repeats": args.repeats}
    harness.record(
        Path(RESULTS), {"part": "time_projections", "workload": name, "config": config, "figures": figures}, env
    )


def main() -> None:
    parser = harness.parser(__doc__)
    in_turn_arguments(parser, "way")
    args = parser.parse_args()
    env = harness.environment(harness.setup(args))
    for model in args.models:
        for name in args.workloads:
            measure(model, name, args, env)


if __name__ == "__main__":
    main()
