"""Sampling 64 images with the network eager and compiled (from its AOTInductor package), timed in turn.

    .venv/bin/python benchmarks/compiled_sampling.py
    .venv/bin/python benchmarks/compiled_sampling.py --samplers dpm++:20 ddim:50 --repeats 5

The default network (untrained: speed does not depend on the weights) samples ``--num_images`` images with
each sampler twice per round, eager (``compile_mode="off"``) and compiled (``"on"``), for ``--repeats``
rounds; the medians are kept. Before the rounds, one compiled run builds the network's package if this
machine has none (or loads it), and its seconds are recorded. Loading a package and its weights takes
milliseconds, so the compiled figures are those of a one-off ``ddpm-tui sample`` once the package exists.
``dpm++sde`` is eval's default, autoguided by a copy of the network (50 network calls). One record per
sampler goes to ``docs/records/speed/compiled_sampling.jsonl``."""

from __future__ import annotations

import copy
import tempfile
import time

import harness  # benchmarks/ is on the path when a script in it runs
import torch

import core

RESULTS = harness.RECORDS / "speed" / "compiled_sampling.jsonl"
SAMPLERS = ("dpm++:20", "ddim:50", "dpm++sde:default")


def sampler_run(trainer: core.Trainer, guide: torch.nn.Module, spec: str, count: int, mode: str):
    """A function that samples ``count`` images with the sampler ``spec`` (``NAME:STEPS``) and ``mode``."""
    name, steps = spec.split(":")
    model, schedule, shape = trainer.sampling_model(), trainer.schedule, trainer.data.image_shape
    request = core.SamplingRequest(
        name,
        None if steps == "default" else int(steps),
        guide=guide if name == "dpm++sde" else None,
        dataset=trainer.config.dataset,
        compile_mode=mode,
    )

    def run() -> None:
        with core.autocast(trainer.device, trainer.bf16):
            core.generate(model, schedule, count, shape, seed=0, device=trainer.device, **vars(request))

    return run


def main() -> None:
    parser = harness.parser(__doc__, RESULTS)
    parser.set_defaults(num_images=64)
    parser.add_argument("--samplers", nargs="+", default=list(SAMPLERS), help="NAME:STEPS (STEPS: a number or default)")
    parser.add_argument("--repeats", type=int, default=5, help="rounds timing every sampler both ways")
    args = parser.parse_args()
    device = harness.setup(args)
    config = core.TrainConfig(device=args.device, output_dir=tempfile.mkdtemp(prefix="compiled-"), max_images=32)
    trainer = core.Trainer(config)
    guide = copy.deepcopy(trainer.sampling_model())
    runs = {
        (spec, mode): sampler_run(trainer, guide, spec, args.num_images, mode)
        for spec in args.samplers
        for mode in ("off", "on")
    }
    start = time.perf_counter()
    runs[(args.samplers[0], "on")]()  # builds or loads the package (the guide's too: in the warm-up round)
    compile_seconds = time.perf_counter() - start
    medians = harness.alternating_medians(runs, args.repeats)
    env = harness.environment(device)
    for spec in args.samplers:
        eager, compiled = medians[(spec, "off")], medians[(spec, "on")]
        figures = {
            "eager_s": round(eager, 2),
            "compiled_s": round(compiled, 2),
            "speedup": round(eager / compiled, 2),
            "first_run_s": round(compile_seconds, 1),
        }
        row = {"part": "compiled_sampling", "sampler": spec, "config": {"num_images": args.num_images}}
        harness.record(args.results, {**row, "figures": figures}, env)


if __name__ == "__main__":
    main()
