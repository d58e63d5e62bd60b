"""Training throughput: images/s of our training step in fp32 and under bf16 autocast, per model width,
against Hugging Face diffusers' UNet2DModel of the same size trained with its DDPMScheduler.

Everything is measured in the same process on the same batches, and ratios are printed, so the
figures hold for whatever machine runs it. diffusers' network has our blocks, self-attention included or
excluded as ours (``harness.diffusers_unet``); each network's figures are appended to ``--results``:

    .venv/bin/python benchmarks/train_throughput.py                    # CPU, widths 32 64 128
    .venv/bin/python benchmarks/train_throughput.py --device cuda --steps 50
    .venv/bin/python benchmarks/train_throughput.py --diffusers        # needs: pip install -e '.[bench]'
    .venv/bin/python benchmarks/train_throughput.py --models tiny small base large --batch_size 32
    .venv/bin/python benchmarks/train_throughput.py --models small --batch_size 32 --optimisers --repeats 5
    .venv/bin/python benchmarks/train_throughput.py --architectures 32:1,2,2 24:1,2,2 16:1,3,4 --batch_size 32
    .venv/bin/python benchmarks/train_throughput.py --architectures 32:1,2,2:lowest 32:1,2,2:none --batch_size 32
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from dataclasses import asdict, replace
from pathlib import Path

import harness  # benchmarks/ is on the path when a script in it runs
import torch
import torch.nn.functional as F
from rich.console import Console
from rich.table import Table

from core import MODEL_PRESETS, TrainConfig, Trainer

PRECISIONS = ("fp32", "bf16")


def images_per_second(step, batch: int, steps: int, warmup: int, device: torch.device) -> float:
    """Images/s of ``steps`` calls of ``step()`` after ``warmup`` untimed ones (CUDA work waited for)."""
    for _ in range(warmup):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return steps * batch / (time.perf_counter() - start)


def our_rate(trainer: Trainer, steps: int, warmup: int) -> float:
    x0 = trainer.images_at(torch.arange(trainer.config.batch_size))
    return images_per_second(lambda: trainer.train_step(x0), len(x0), steps, warmup, trainer.device)


def optimiser_rates(config: TrainConfig, steps: int, warmup: int, repeats: int) -> dict[str, float]:
    """Median images/s of the bf16 training step with Muon and fused AdamW (the default), fused AdamW
    alone, and AdamW in PyTorch's per-parameter loop, timed in alternation so all see the same load."""
    trainers = {
        "muon": Trainer(replace(config, optimiser="muon")),
        "fused": Trainer(replace(config, optimiser="adamw")),
        "per-parameter": Trainer(replace(config, optimiser="adamw")),
    }
    looped = trainers["per-parameter"]
    looped.optimizers = [torch.optim.AdamW(looped.model.parameters(), lr=config.lr, weight_decay=0.0, fused=False)]
    rates: dict[str, list[float]] = {name: [] for name in trainers}
    for _ in range(repeats):
        for name, trainer in trainers.items():
            rates[name].append(our_rate(trainer, steps, warmup))
    return {name: statistics.median(values) for name, values in rates.items()}


def diffusers_step(config: TrainConfig, precision: str, x0: torch.Tensor):
    """diffusers' training step on ``x0``: a ``UNet2DModel`` of our blocks (``harness.diffusers_unet``),
    ``DDPMScheduler.add_noise`` and the noise's MSE, trained by AdamW; returns (step, parameters)."""
    from diffusers import DDPMScheduler

    device = x0.device
    model = harness.diffusers_unet(
        tuple(x0.shape[1:]), config.base_channels, config.channel_mults, config.num_res_blocks, config.attention
    ).to(device)
    scheduler = DDPMScheduler(num_train_timesteps=config.timesteps)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)

    def step() -> None:
        noise = torch.randn_like(x0)
        t = torch.randint(0, config.timesteps, (len(x0),), device=device)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16"):
            loss = F.mse_loss(model(scheduler.add_noise(x0, noise, t), t).sample.float(), noise)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    return step, sum(p.numel() for p in model.parameters())


def diffusers_rate(config: TrainConfig, precision: str, x0: torch.Tensor, steps: int, warmup: int) -> tuple[float, int]:
    """The images/s and parameters of :func:`diffusers_step`."""
    step, parameters = diffusers_step(config, precision, x0)
    return images_per_second(step, len(x0), steps, warmup, x0.device), parameters


def architecture(text: str) -> dict[str, object]:
    """``WIDTH:MULTS[:ATTENTION]``, e.g. ``16:1,3,4``: base_channels 16 and channel_mults (1, 3, 4), or
    ``32:1,2,2:none``: the default network without self-attention."""
    width, mults, *attention = text.split(":")
    size: dict[str, object] = {"base_channels": int(width), "channel_mults": tuple(int(m) for m in mults.split(","))}
    return {**size, "attention": attention[0]} if attention else size


def sizes(args: argparse.Namespace) -> list[tuple[str, dict]]:
    """The networks to time, each with its row label: presets, architectures or widths."""
    if args.models:
        return [(name, MODEL_PRESETS[name]) for name in args.models]
    if args.architectures:
        labels = [f"{s['base_channels']}, {'x'.join(map(str, s['channel_mults']))}" for s in args.architectures]
        return [
            (f"{label}, attention {s.get('attention', 'default')}", s)
            for label, s in zip(labels, args.architectures, strict=True)
        ]
    return [(str(width), {"base_channels": width}) for width in args.widths]


def measure(size: dict, args: argparse.Namespace, output_dir: str) -> dict:
    """One network's figures: ours in both precisions, and diffusers' and the optimisers' when asked."""
    base = TrainConfig(**size, batch_size=args.batch_size, device=args.device, output_dir=output_dir)
    configs = {p: replace(base, precision=p, max_images=args.batch_size) for p in PRECISIONS}
    trainers = {p: Trainer(c) for p, c in configs.items()}
    figures: dict = {p: round(our_rate(t, args.steps, args.warmup), 1) for p, t in trainers.items()}
    figures["parameters"] = trainers["fp32"].param_count
    if args.diffusers:
        x0 = trainers["fp32"].images_at(torch.arange(args.batch_size))
        theirs = {p: diffusers_rate(configs["fp32"], p, x0, args.steps, args.warmup) for p in PRECISIONS}
        figures.update({f"diffusers_{p}": round(rate, 1) for p, (rate, _) in theirs.items()})
        figures["diffusers_parameters"] = theirs["fp32"][1]
        figures["ours_over_diffusers"] = round(
            max(figures[p] for p in PRECISIONS) / max(r for r, _ in theirs.values()), 2
        )
    if args.optimisers:
        rates = optimiser_rates(configs["bf16"], args.steps, args.warmup, args.repeats)
        figures.update({f"bf16_{name}": round(rate, 1) for name, rate in rates.items()})
    return {"config": asdict(configs["fp32"]), "figures": figures, "device": str(trainers["fp32"].device)}


def cells(f: dict, args: argparse.Namespace) -> list[str]:
    row = [f"{f['parameters']:,}", f"{f['fp32']:.0f}", f"{f['bf16']:.0f}", f"{f['bf16'] / f['fp32']:.2f}x"]
    if args.diffusers:
        row += [f"{f['diffusers_parameters']:,}", f"{f['diffusers_fp32']:.0f}", f"{f['diffusers_bf16']:.0f}"]
        row.append(f"{f['ours_over_diffusers']:.2f}x")
    if args.optimisers:
        muon, fused, looped = f["bf16_muon"], f["bf16_fused"], f["bf16_per-parameter"]
        row += [f"{muon:.0f}", f"{fused:.0f}", f"{muon / fused:.2f}x", f"{looped:.0f}", f"{fused / looped:.2f}x"]
    return row


def parse() -> argparse.Namespace:
    parser = harness.parser(__doc__, Path("outputs/records/train_throughput.jsonl"))
    parser.add_argument("--widths", type=int, nargs="+", default=[32, 64, 128])
    parser.add_argument("--models", nargs="+", choices=tuple(MODEL_PRESETS), help="time these presets instead")
    parser.add_argument(
        "--architectures", nargs="+", type=architecture, help="time these WIDTH:MULTS[:ATTENTION], e.g. 16:1,3,4"
    )
    parser.add_argument("--batch_size", type=int, default=128)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--diffusers", action="store_true", help="also time diffusers' UNet2DModel at equal blocks")
    parser.add_argument(
        "--optimisers",
        action="store_true",
        help="also time bf16 with Muon and AdamW (the default), fused AdamW alone, and per-parameter AdamW",
    )
    parser.add_argument("--repeats", type=int, default=3, help="alternating repeats of the --optimisers comparison")
    return parser.parse_args()


def main() -> None:
    args = parse()
    harness.setup(args)
    table = Table(title=f"training images/s, batch {args.batch_size}")
    first = "model" if args.models else "width, levels" if args.architectures else "base_channels"
    columns = [first, "parameters", "fp32", "bf16", "bf16 / fp32"]
    if args.diffusers:
        columns += ["diffusers params", "diffusers fp32", "diffusers bf16", "ours / diffusers (best of each)"]
    if args.optimisers:
        columns += ["bf16, Muon", "AdamW", "Muon / AdamW", "per-parameter AdamW", "fused / per-parameter"]
    for column in columns:
        table.add_column(column, justify="right")
    with tempfile.TemporaryDirectory() as tmp:
        for label, size in sizes(args):
            row = measure(size, args, tmp)
            device = row.pop("device")
            harness.record(args.results, {"network": label, **row}, harness.environment(device))
            table.add_row(label, *cells(row["figures"], args))
    Console(width=160).print(table)
    Console(width=160).print(f"{torch.get_num_threads()} CPU threads")


if __name__ == "__main__":
    main()
