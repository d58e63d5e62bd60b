"""Training throughput: images/s of our training step in fp32 and under bf16 autocast, per model width.

Both precisions are measured in the same process on the same batches, and the ratio printed, so the
figure holds for whatever machine runs it:

    .venv/bin/python benchmarks/train_throughput.py                    # CPU, widths 32 64 128
    .venv/bin/python benchmarks/train_throughput.py --device cuda --steps 50
"""

from __future__ import annotations

import argparse
import tempfile
import time

import torch
from rich.console import Console
from rich.table import Table

from core import TrainConfig, Trainer


def images_per_second(trainer: Trainer, steps: int, warmup: int) -> float:
    batch = trainer.config.batch_size
    x0 = trainer.images[:batch]
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--widths", type=int, nargs="+", default=[32, 64, 128])
    parser.add_argument("--batch_size", type=int, default=128)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()

    table = Table(title=f"training images/s, batch {args.batch_size}")
    for column in ("base_channels", "parameters", "fp32", "bf16", "bf16 / fp32"):
        table.add_column(column, justify="right")
    with tempfile.TemporaryDirectory() as tmp:
        for width in args.widths:
            rates = {}
            for precision in ("fp32", "bf16"):
                config = TrainConfig(base_channels=width, precision=precision, batch_size=args.batch_size,
                                     device=args.device, output_dir=tmp, max_images=args.batch_size)
                trainer = Trainer(config)
                rates[precision] = images_per_second(trainer, args.steps, args.warmup)
            table.add_row(str(width), f"{trainer.param_count:,}", f"{rates['fp32']:.0f}", f"{rates['bf16']:.0f}",
                          f"{rates['bf16'] / rates['fp32']:.2f}x")
            device = f"{trainer.device} ({torch.get_num_threads()} CPU threads)" if trainer.device.type == "cpu" \
                else trainer.device_label.replace(" (bf16)", "")
    Console().print(table)
    Console().print(f"device: {device}")


if __name__ == "__main__":
    main()
