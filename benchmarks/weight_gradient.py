"""A 3x3 convolution's weight gradient in bf16 on the CPU, three ways, at the shapes a training step has.

    .venv/bin/python benchmarks/weight_gradient.py
    .venv/bin/python benchmarks/weight_gradient.py --batch_sizes 32 128 --repeats 20

In channels-last bf16 a training step's backward convolutions take about 40% of it at batch 128, and most of that
is the weight gradient :math:`\\partial L/\\partial W_{o,c,i,j} = \\sum_{n,p} \\delta_{n,o,p}\\,x_{n,c,p+(i,j)}`:
the same multiply-adds as the forward pass, but oneDNN computes it several times slower at 14 x 14 and 7 x 7.
This times, for each distinct 3x3 stride-1 convolution in a step of the equal-blocks network (``--decoder full``,
no attention; the convolutions are found by hooks on a real trainer's network), in turn in one process:

- the forward pass and the input gradient (oneDNN), for scale;
- the weight gradient by oneDNN (``aten::convolution_backward``), what autograd runs;
- the weight gradient as one matrix product: the nine shifted copies of the padded input side by side
  (an im2col in NHWC order), times the output gradient;
- the weight gradient as a forward convolution: images become channels and channels a batch, so the output
  gradient is the kernel and the output is 3 x 3.

Each alternative's relative error against an fp32 weight gradient shows it computes the same thing. One record
per shape goes to ``docs/records/speed/weight_gradient.jsonl``.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import harness  # benchmarks/ is on the path when a script in it runs
import torch
import torch.nn.functional as F

import core

RESULTS = harness.RECORDS / "speed" / "weight_gradient.jsonl"
CHANNELS_LAST = torch.channels_last


def step_convolutions(batch_size: int) -> dict[tuple[int, int, int, int], int]:
    """(images, in channels, size, out channels) of each 3x3 stride-1 convolution in one training step of the
    equal-blocks network at ``batch_size``, with how many times each occurs."""
    shapes: dict[tuple[int, int, int, int], int] = {}

    def hook(module: torch.nn.Conv2d, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> None:
        if module.kernel_size == (3, 3) and module.stride == (1, 1) and module.in_channels > 1 < module.out_channels:
            n, c, h, _ = inputs[0].shape
            key = (n, c, h, module.out_channels)
            shapes[key] = shapes.get(key, 0) + 1

    with tempfile.TemporaryDirectory() as folder:
        overrides = core.resolve_overrides({"decoder": "full", "batch_size": batch_size}, "small")
        trainer = core.Trainer(core.TrainConfig(output_dir=folder, guide_at=0.0, **overrides))
        for module in trainer.model.modules():
            if isinstance(module, torch.nn.Conv2d):
                module.register_forward_hook(hook)
        trainer.train_step(trainer.images_at(torch.arange(batch_size)))
    return shapes


def by_onednn(x: torch.Tensor, w: torch.Tensor, dy: torch.Tensor, mask: list[bool]) -> tuple[torch.Tensor, ...]:
    """oneDNN's backward pass of ``conv2d(x, w, padding=1)``: the gradients ``mask`` asks for (input, weight,
    bias)."""
    return torch.ops.aten.convolution_backward(dy, x, w, [w.shape[0]], [1, 1], [1, 1], [1, 1], False, [0, 0], 1, mask)


def by_matrix_product(x: torch.Tensor, dy: torch.Tensor) -> torch.Tensor:
    """:math:`\\partial L/\\partial W` as :math:`\\delta^\\top X_{cols}`: ``X_cols`` (N H W, 9 C) holds, for every
    output pixel, the 3 x 3 neighbourhood of the padded input, offsets outer and channels inner."""
    n, c, h, w = x.shape
    padded = F.pad(x, (1, 1, 1, 1)).permute(0, 2, 3, 1)  # (N, H + 2, W + 2, C), a view of channels-last memory
    columns = torch.cat([padded[:, i : i + h, j : j + w, :] for i in range(3) for j in range(3)], dim=3)
    gradient = dy.permute(0, 2, 3, 1).reshape(n * h * w, -1)
    return (gradient.t() @ columns.reshape(n * h * w, 9 * c)).view(-1, 3, 3, c).permute(0, 3, 1, 2)


def by_convolution(x: torch.Tensor, dy: torch.Tensor) -> torch.Tensor:
    """:math:`\\partial L/\\partial W_{o,c}` = the cross-correlation of :math:`x_{\\cdot,c}` with
    :math:`\\delta_{\\cdot,o}` over images and pixels: a forward convolution of ``x`` with channels as its batch and
    images as its channels, by the output gradient as an H x W kernel, padded by 1 to a 3 x 3 output."""
    images_as_channels = x.transpose(0, 1).contiguous(memory_format=CHANNELS_LAST)
    kernel = dy.transpose(0, 1).contiguous(memory_format=CHANNELS_LAST)
    return F.conv2d(images_as_channels, kernel, padding=1).transpose(0, 1)


def measure(shape: tuple[int, int, int, int], repeats: int) -> dict[str, float]:
    """Each way's median milliseconds at ``shape`` and each alternative's relative error against fp32."""
    n, c, size, out = shape
    torch.manual_seed(0)
    x = torch.randn(n, c, size, size).to(torch.bfloat16).contiguous(memory_format=CHANNELS_LAST)
    w = torch.randn(out, c, 3, 3).to(torch.bfloat16).contiguous(memory_format=CHANNELS_LAST)
    dy = torch.randn(n, out, size, size).to(torch.bfloat16).contiguous(memory_format=CHANNELS_LAST)
    runs = {
        "forward": lambda: F.conv2d(x, w, padding=1),
        "input_gradient": lambda: by_onednn(x, w, dy, [True, False, False]),
        "onednn": lambda: by_onednn(x, w, dy, [False, True, False]),
        "matrix_product": lambda: by_matrix_product(x, dy),
        "convolution": lambda: by_convolution(x, dy),
    }
    seconds = harness.alternating_medians(runs, repeats, warmup=3)
    figures = {f"{name}_ms": round(s * 1000, 3) for name, s in seconds.items()}
    exact = by_onednn(x.float(), w.float(), dy.float(), [False, True, False])[1]
    ways = {"onednn": by_onednn(x, w, dy, [False, True, False])[1], "matrix_product": by_matrix_product(x, dy)}
    ways["convolution"] = by_convolution(x, dy)
    for name, gradient in ways.items():
        figures[f"{name}_error"] = float(f"{((gradient.float() - exact).norm() / exact.norm()).item():.2g}")
    return figures


def main() -> None:
    parser = harness.parser(__doc__)
    parser.add_argument("--batch_sizes", type=int, nargs="+", default=[128, 32])
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    env = harness.environment(harness.setup(args))
    for batch_size in args.batch_sizes:
        for shape, count in step_convolutions(batch_size).items():
            config = dict(zip(("images", "in_channels", "size", "out_channels"), shape, strict=True))
            row = {"part": "weight_gradient", "config": {**config, "per_step": count}}
            harness.record(args.out, {**row, "figures": measure(shape, args.repeats)}, env)


if __name__ == "__main__":
    main()
