"""Where the samples' pixel values differ from real digits', and what that costs in the scores.

    .venv/bin/python benchmarks/sample_pixels.py --checkpoint RUN/model_final.pt --threads 1

A first look at the samples saw "speckled backgrounds". Real MNIST backgrounds are exactly
black (-1 in the model's range), while every stochastic sampler ends at the smallest noise level with a
faint residue. This counts, for real held-out digits and for ``--num_images`` images drawn as ``ddpm-tui
eval`` draws them (the same sampler, guide and noise), the share of pixels that are exactly background,
near it (the grain: above -1 but under -0.9), mid-grey, and bright (0.9 and above). Then it scores the
samples again after changes to their pixel values alone: rounded to 8 bits (what a PNG keeps), the
grain set to black, and two contrast changes, so a table says whether the grain, or the strokes' grey
levels, are what the Frechet distance measures.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import harness  # benchmarks/ is on the path when a script in it runs
import torch
from rich.console import Console
from rich.table import Table

import core

BACKGROUND, NEAR, BRIGHT = -1.0, -0.9, 0.9
CLEAN_UPS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "as sampled": lambda x: x,
    "rounded to 8 bits": lambda x: ((x + 1) * 127.5).round() / 127.5 - 1,
    "grain (< -0.9) set to black": lambda x: torch.where(x < NEAR, torch.full_like(x, BACKGROUND), x),
    "contrast x 1.2": lambda x: (1.2 * x).clamp(-1, 1),
    "gamma 0.8 (greys lighter)": lambda x: ((x + 1) / 2).pow(0.8) * 2 - 1,
}


def pixel_shares(images: torch.Tensor) -> list[float]:
    """Shares of pixels at the background, near it, mid-grey, and bright."""
    x = images.float()
    exact = x <= BACKGROUND + 1e-3
    near = ~exact & (x < NEAR)
    bright = x >= BRIGHT
    return [m.float().mean().item() for m in (exact, near, ~exact & ~near & ~bright, bright)]


def main() -> None:
    parser = harness.parser(__doc__, Path("outputs/records/sample_pixels.jsonl"))
    parser.add_argument("--checkpoint", required=True, help="a run's model_final.pt")
    parser.add_argument("--seed", type=int, default=0, help="the noise, as ddpm-tui eval --seed")
    args = parser.parse_args()
    device = harness.setup(args)
    loaded = core.load_model(args.checkpoint, device)
    dataset = loaded.config.dataset
    with core.autocast(device, core.use_bf16(device)):
        samples, _ = core.generate(
            loaded.model,
            loaded.schedule,
            args.num_images,
            loaded.image_shape,
            core.FAST_SAMPLER,
            None,
            args.seed,
            device=device,
            guide=loaded.guide,
            dataset=dataset,
        )
    evaluator = core.Evaluator(core.load_classifier(dataset))
    real = evaluator.floor_pool[: args.num_images]

    shares = Table(title=f"pixel values, {args.num_images} images each")
    for column in ("images", "background (-1)", "grain (< -0.9)", "grey", "bright (>= 0.9)"):
        shares.add_column(column, justify="left" if column == "images" else "right")
    for name, images in (("real held-out digits", real), (f"samples of {args.checkpoint}", samples)):
        shares.add_row(name, *[f"{s:.1%}" for s in pixel_shares(images)])

    scores = Table(title="the samples scored after changing only their pixel values")
    for column in ("samples", "FD", "recognised", "grain (< -0.9)", "bright (>= 0.9)"):
        scores.add_column(column, justify="left" if column == "samples" else "right")
    for name, images in (("real held-out digits", real), *((n, f(samples.float())) for n, f in CLEAN_UPS.items())):
        result = evaluator.score(images)
        _, grain, _, bright = pixel_shares(images)
        cells = (f"{result.frechet_distance:.2f}", f"{result.recognised:.1%}", f"{grain:.1%}", f"{bright:.1%}")
        scores.add_row(name, *cells)
        figures = {**harness.figures(result), "grain": round(grain, 4), "bright": round(bright, 4)}
        harness.record(args.results, {"images": name, "config": vars(args), "figures": figures})
    console = Console(width=140)
    console.print(shares)
    console.print(scores)


if __name__ == "__main__":
    main()
