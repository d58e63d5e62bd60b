"""Training throughput: images/s of our training step in fp32 and under bf16 autocast, per model width,
against Hugging Face diffusers' UNet2DModel of the same size trained with its DDPMScheduler.

Everything is measured in the same process on the same batches, and ratios are printed, so the
figures hold for whatever machine runs it:

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
from dataclasses import replace

import torch
from rich.console import Console
from rich.table import Table

from core import MODEL_PRESETS, TrainConfig, Trainer


def images_per_second(trainer: Trainer, steps: int, warmup: int) -> float:
    batch = trainer.config.batch_size
    x0 = trainer.images_at(torch.arange(batch))
    for _ in range(warmup):
        trainer.train_step(x0)
    if trainer.device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(steps):
        trainer.train_step(x0)
    if trainer.device.type == "cuda":
        torch.cuda.synchronize()
    return steps * batch / (time.perf_counter() - start)


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
            rates[name].append(images_per_second(trainer, steps, warmup))
    return {name: statistics.median(values) for name, values in rates.items()}


def diffusers_images_per_second(
    width: int, precision: str, x0: torch.Tensor, steps: int, warmup: int
) -> tuple[float, int]:
    """The same training step with diffusers: UNet2DModel (DDPM-style blocks, attention at the lowest
    resolution, as ours) and DDPMScheduler.add_noise; returns (images/s, parameters)."""
    import torch.nn.functional as F
    from diffusers import DDPMScheduler, UNet2DModel

    device = x0.device
    model = UNet2DModel(
        sample_size=x0.shape[-1],
        in_channels=x0.shape[1],
        out_channels=x0.shape[1],
        block_out_channels=(width, 2 * width, 2 * width),
        layers_per_block=1,
        down_block_types=("DownBlock2D", "DownBlock2D", "AttnDownBlock2D"),
        up_block_types=("AttnUpBlock2D", "UpBlock2D", "UpBlock2D"),
        norm_num_groups=8,
    ).to(device)
    scheduler = DDPMScheduler(num_train_timesteps=1000)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)

    def step() -> None:
        noise = torch.randn_like(x0)
        t = torch.randint(0, 1000, (len(x0),), device=device)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16"):
            loss = F.mse_loss(model(scheduler.add_noise(x0, noise, t), t).sample.float(), noise)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    for _ in range(warmup):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return steps * len(x0) / (time.perf_counter() - start), sum(p.numel() for p in model.parameters())


def architecture(text: str) -> dict[str, object]:
    """``WIDTH:MULTS[:ATTENTION]``, e.g. ``16:1,3,4``: base_channels 16 and channel_mults (1, 3, 4), or
    ``32:1,2,2:none``: the default network without self-attention."""
    width, mults, *attention = text.split(":")
    size: dict[str, object] = {"base_channels": int(width), "channel_mults": tuple(int(m) for m in mults.split(","))}
    return {**size, "attention": attention[0]} if attention else size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--widths", type=int, nargs="+", default=[32, 64, 128])
    parser.add_argument(
        "--models", nargs="+", choices=tuple(MODEL_PRESETS), help="time these presets instead of widths"
    )
    parser.add_argument(
        "--architectures",
        nargs="+",
        type=architecture,
        help="time these WIDTH:MULTS[:ATTENTION] instead, e.g. 16:1,3,4 or 32:1,2,2:none",
    )
    parser.add_argument("--batch_size", type=int, default=128)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--diffusers", action="store_true", help="also time diffusers' UNet2DModel")
    parser.add_argument(
        "--optimisers",
        action="store_true",
        help="also time bf16 with Muon and AdamW (the default), fused AdamW alone, and per-parameter AdamW",
    )
    parser.add_argument("--repeats", type=int, default=3, help="alternating repeats of the --optimisers comparison")
    args = parser.parse_args()

    table = Table(title=f"training images/s, batch {args.batch_size}")
    first = "model" if args.models else "width, levels" if args.architectures else "base_channels"
    columns = [first, "parameters", "fp32", "bf16", "bf16 / fp32"]
    if args.diffusers and (args.models or args.architectures):
        parser.error("--diffusers compares widths; leave out --models and --architectures")
    if args.diffusers:
        columns += ["diffusers params", "diffusers fp32", "diffusers bf16", "ours / diffusers (best of each)"]
    if args.optimisers:
        columns += ["bf16, Muon", "AdamW", "Muon / AdamW", "per-parameter AdamW", "fused / per-parameter"]
    for column in columns:
        table.add_column(column, justify="right")
    with tempfile.TemporaryDirectory() as tmp:
        if args.models:
            sizes = [(name, MODEL_PRESETS[name]) for name in args.models]
        elif args.architectures:
            sizes = [
                (
                    f"{size['base_channels']}, {'x'.join(map(str, size['channel_mults']))}"
                    + (f", attention {size['attention']}" if "attention" in size else ""),
                    size,
                )
                for size in args.architectures
            ]
        else:
            sizes = [(str(width), {"base_channels": width}) for width in args.widths]
        for label, size in sizes:
            rates = {}
            for precision in ("fp32", "bf16"):
                config = TrainConfig(
                    **size,
                    precision=precision,
                    batch_size=args.batch_size,
                    device=args.device,
                    output_dir=tmp,
                    max_images=args.batch_size,
                )
                trainer = Trainer(config)
                rates[precision] = images_per_second(trainer, args.steps, args.warmup)
            width = config.base_channels
            row = [
                label,
                f"{trainer.param_count:,}",
                f"{rates['fp32']:.0f}",
                f"{rates['bf16']:.0f}",
                f"{rates['bf16'] / rates['fp32']:.2f}x",
            ]
            if args.diffusers:
                theirs = {
                    p: diffusers_images_per_second(
                        width, p, trainer.images_at(torch.arange(args.batch_size)), args.steps, args.warmup
                    )
                    for p in ("fp32", "bf16")
                }
                best_ours, best_theirs = max(rates.values()), max(r for r, _ in theirs.values())
                row += [
                    f"{theirs['fp32'][1]:,}",
                    f"{theirs['fp32'][0]:.0f}",
                    f"{theirs['bf16'][0]:.0f}",
                    f"{best_ours / best_theirs:.2f}x",
                ]
            if args.optimisers:
                optimisers = optimiser_rates(config, args.steps, args.warmup, args.repeats)
                row += [
                    f"{optimisers['muon']:.0f}",
                    f"{optimisers['fused']:.0f}",
                    f"{optimisers['muon'] / optimisers['fused']:.2f}x",
                    f"{optimisers['per-parameter']:.0f}",
                    f"{optimisers['fused'] / optimisers['per-parameter']:.2f}x",
                ]
            table.add_row(*row)
            device = (
                f"{trainer.device} ({torch.get_num_threads()} CPU threads)"
                if trainer.device.type == "cpu"
                else trainer.device_label.replace(" (bf16)", "")
            )
    Console(width=160).print(table)
    Console(width=160).print(f"device: {device}")


if __name__ == "__main__":
    main()
