"""Decoder speed: the default network with Ho et al.'s full decoder and with the lean one, timed in one process.

    .venv/bin/python benchmarks/decoder_speed.py
    .venv/bin/python benchmarks/decoder_speed.py --repeats 5 --device cuda

For each decoder (``--decoder full`` and ``lean``, every other setting the default): multiply-adds per
image, and the fastest one call could be at this machine's convolution speed (its arithmetic at the speed
of a lone 3x3 convolution); training images/s at batch 32; the milliseconds of one network call on 64
images; and the wall seconds of sampling 64 images with DPM-Solver++ (20 steps) and DDIM (50 steps),
unguided, and with eval's default ``dpm++sde`` (autoguided: 50 network calls), with each one's calls. The
two networks are timed in alternation, ``--repeats`` times, and the medians kept, so both see the same
load; ratios compare them within this run. Speed does not depend on the weights, so untrained networks are
timed (each guiding itself where a guide is needed).

One record per decoder goes to ``docs/records/speed/decoder.jsonl``. Quality is measured separately, on
full runs (docs/decoder.md).
"""

from __future__ import annotations

import copy
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, replace

import harness  # benchmarks/ is on the path when a script in it runs
import torch
from torch.utils.flop_counter import FlopCounterMode

import core

RESULTS = harness.RECORDS / "speed" / "decoder.jsonl"
# (sampler, steps, autoguided): the two ODE samplers at their default steps on their own, and eval's default.
SAMPLERS = (("dpm++", 20, False), ("ddim", 50, False), ("dpm++sde", None, True))
DECODERS = ("full", "lean")


def multiply_adds(model: torch.nn.Module, shape: tuple[int, ...]) -> int:
    """Multiply-adds of one forward pass on one image (half the counted floating-point operations)."""
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        model(torch.zeros(1, *shape), torch.zeros(1, dtype=torch.long))
    return counter.get_total_flops() // 2


def convolution_gflops(device: torch.device, bf16: bool, count: int, repeats: int = 20) -> float:
    """The speed this machine runs the network's most common convolution at, alone: a 3x3 convolution of 32
    to 32 channels at 28x28 on ``count`` images, in billions of floating-point operations a second (median
    of ``repeats`` calls). No network made of such convolutions can run faster than its arithmetic at this
    speed."""
    x = torch.randn(count, 32, 28, 28, device=device)
    conv = torch.nn.Conv2d(32, 32, 3, padding=1).to(device)
    seconds = []
    with torch.no_grad(), core.autocast(device, bf16):
        for _ in range(repeats + 3):
            start = time.perf_counter()
            conv(x)
            if device.type == "cuda":
                torch.cuda.synchronize()
            seconds.append(time.perf_counter() - start)
    return 2 * conv.weight.numel() * 28 * 28 * count / statistics.median(seconds[3:]) / 1e9


def timers(trainer: core.Trainer, count: int) -> dict[str, Callable[[], float]]:
    """Each measurement of one network, as a function returning its seconds."""
    x0 = trainer.images_at(torch.arange(trainer.config.batch_size))
    model, schedule, shape = trainer.sampling_model(), trainer.schedule, trainer.data.image_shape
    guide = copy.deepcopy(model)
    x = torch.randn(count, *shape)
    t = torch.full((count,), 500)

    def timed(work: Callable[[], object]) -> Callable[[], float]:
        def run() -> float:
            start = time.perf_counter()
            work()
            return time.perf_counter() - start

        return run

    def sample(name: str, steps: int | None, guided: bool) -> None:
        request = core.SamplingRequest(name, steps, None, guide if guided else None, None, trainer.config.dataset)
        with core.autocast(trainer.device, trainer.bf16):
            core.generate(model, schedule, count, shape, seed=0, device=trainer.device, **vars(request))

    def call() -> None:
        with torch.no_grad(), core.autocast(trainer.device, trainer.bf16):
            model(x, t)

    measured = {"train_step": timed(lambda: trainer.train_step(x0)), "call": timed(call)}
    for name, steps, guided in SAMPLERS:
        measured[f"{name}:{steps or 'default'}"] = timed(lambda n=name, s=steps, g=guided: sample(n, s, g))
    return measured


def calls(trainer: core.Trainer) -> dict[str, int]:
    """Network calls per image of each sampler: one a step, two on each step that autoguidance guides."""
    model, schedule, shape = trainer.sampling_model(), trainer.schedule, trainer.data.image_shape
    counted = {}
    for name, steps, guided in SAMPLERS:
        plan = core.plan_sampling(model, schedule, shape, 1, name, steps, guide=model if guided else None)
        counted[f"{name}:{steps or 'default'}_calls"] = harness.calls(schedule, plan)
    return counted


def main() -> None:
    parser = harness.parser(__doc__, RESULTS)
    parser.set_defaults(num_images=64)
    parser.add_argument("--repeats", type=int, default=3, help="alternating timings of each; the median is kept")
    args = parser.parse_args()
    device = harness.setup(args)
    base = core.TrainConfig(device=args.device, output_dir=tempfile.mkdtemp(prefix="decoder-"))
    trainers = {d: core.Trainer(replace(base, decoder=d, max_images=base.batch_size)) for d in DECODERS}
    measured = {d: timers(trainer, args.num_images) for d, trainer in trainers.items()}
    for clocks in measured.values():  # warm-up: first calls allocate and pick kernels
        clocks["train_step"](), clocks["call"]()
    seconds: dict[str, dict[str, list[float]]] = {d: {name: [] for name in measured[d]} for d in DECODERS}
    for _ in range(args.repeats):
        for d in DECODERS:
            for name, clock in measured[d].items():
                seconds[d][name].append(clock())
    env = harness.environment(device)
    gflops = convolution_gflops(device, trainers["full"].bf16, args.num_images)
    for d, trainer in trainers.items():
        median = {name: statistics.median(values) for name, values in seconds[d].items()}
        macs = multiply_adds(trainer.model, trainer.data.image_shape)
        figures = {
            "multiply_adds": macs,
            "conv_gflops": round(gflops),
            "floor_call_ms": round(2 * macs * args.num_images / gflops / 1e6, 1),
            "parameters": trainer.param_count,
            "train_img_s": round(base.batch_size / median.pop("train_step"), 1),
            "call_ms": round(1000 * median.pop("call"), 1),
            **{f"{name}_s": round(value, 2) for name, value in median.items()},
            **calls(trainer),
        }
        config = {"decoder": d, "num_images": args.num_images, "repeats": args.repeats, "train": asdict(trainer.config)}
        harness.record(args.results, {"part": "decoder", "config": config, "figures": figures}, env)
        print(d, figures)


if __name__ == "__main__":
    main()
