"""Training images/s on 1 process and on N processes under torchrun (DDP), measured in the same run.

Each configuration trains the same model on the same global batch for one epoch of ``--images`` images;
the rate is taken from the run's own ``metrics.jsonl`` (images between the 10th and the last step over
the time between them, so start-up and the epoch-end preview are left out):

    .venv/bin/python benchmarks/distributed_throughput.py [--processes 1 2] [--model small] [--batch_size 32]
    .venv/bin/python benchmarks/distributed_throughput.py --dataset cifar10 --data_dir DIR --model base \\
        --batch_size 128 --processes 1 2 4 8 --device cuda
"""

from __future__ import annotations

import argparse
import json
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

SKIP_STEPS = 10


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def images_per_second(run: Path, batch: int) -> float:
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    steps = [r for r in records if r["kind"] == "step"][SKIP_STEPS:]
    return batch * (len(steps) - 1) / (steps[-1]["elapsed"] - steps[0]["elapsed"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--processes", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--model", default="small")
    parser.add_argument("--batch_size", type=int, default=32)
    parser.add_argument("--images", type=int, default=2560, help="images in the one epoch (steps = images/batch)")
    parser.add_argument("--dataset", default="mnist")
    parser.add_argument("--data_dir", default=None)
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()
    flags = ["--model", args.model, "--batch_size", str(args.batch_size), "--max_images", str(args.images)]
    flags += ["--epochs", "1", "--dataset", args.dataset, "--device", args.device]
    flags += ["--data_dir", args.data_dir] if args.data_dir else []
    rates = {}
    with tempfile.TemporaryDirectory() as folder:
        for n in args.processes:
            run = Path(folder) / f"p{n}"
            launch = [sys.executable, "-m", "ddpm_tui", "train"]
            if n > 1:
                launch = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(n)]
                launch += ["--master_port", str(free_port()), "-m", "ddpm_tui", "train"]
            subprocess.run([*launch, *flags, "--output_dir", str(run)], check=True, capture_output=True)
            rates[n] = images_per_second(run, args.batch_size)
    print(f"{args.model} on {args.dataset}, global batch {args.batch_size}, device {args.device}:")
    print("| processes | images/s | vs 1 process |")
    print("|---|---|---|")
    for n, rate in rates.items():
        print(f"| {n} | {rate:.1f} | {rate / rates[args.processes[0]]:.2f}x |")


if __name__ == "__main__":
    main()
