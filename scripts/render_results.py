"""Rewrite the docs' results tables from the records the benchmarks wrote.

    .venv/bin/python scripts/render_results.py           # rewrite every marked block
    .venv/bin/python scripts/render_results.py --check   # exit 1, naming each block that differs

A table lives between ``<!-- results: NAME -->`` and ``<!-- /results -->`` in README.md, QUICKSTART.md or
a page under docs/; NAME picks a function of :data:`TABLES`, which reads ``docs/records/<study>/*.jsonl``
(one JSON object per run, written by ``benchmarks/harness.py``). Where several seeds measured a figure the
table shows mean ± standard deviation over the runs, and says how many. ``make test`` runs ``--check``, so
a table edited by hand, or records added without rendering, fail the suite. Only the standard library is
used: the check costs no PyTorch import.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BLOCK = re.compile(r"(<!-- results: ([\w-]+) -->\n)(.*?)(<!-- /results -->)", re.DOTALL)
Records = list[dict[str, Any]]


def newest(rows: Records, key: Callable[[dict[str, Any]], Any]) -> list[dict[str, Any]]:
    """The newest record for each ``key``, in the order the keys first appear."""
    kept: dict[Any, dict[str, Any]] = {}
    for row in rows:
        kept[key(row)] = row
    return list(kept.values())


def grouped(rows: Records, key: Callable[[dict[str, Any]], Any]) -> dict[Any, Records]:
    """``rows`` grouped by ``key``, in the order the keys first appear."""
    groups: dict[Any, Records] = {}
    for row in rows:
        groups.setdefault(key(row), []).append(row)
    return groups


def all_records(root: Path, study: str, part: str) -> Records:
    """Every record of ``docs/records/STUDY/PART.jsonl``, oldest first."""
    path = root / "docs" / "records" / study / f"{part}.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.exists() else []


def records(root: Path, study: str, part: str) -> Records:
    """The records of ``docs/records/STUDY/PART.jsonl``, the newest per seed (or per sampler) kept: a rerun
    of the same seed replaces its row, another seed adds one."""
    return newest(all_records(root, study, part), lambda row: (row.get("seed"), row.get("sampler")))


def spread(values: list[float], fmt: str, unit: str = "") -> str:
    """``mean ± std UNIT (n runs)`` of ``values`` formatted by ``fmt`` (one value: itself)."""
    if len(values) == 1:
        return format(values[0], fmt) + unit
    mean, std = statistics.fmean(values), statistics.stdev(values)
    return f"{format(mean, fmt)} ± {format(std, fmt)}{unit} ({len(values)} runs)"


def figure(rows: Records, key: str, fmt: str, scale: float = 1.0, unit: str = "") -> str:
    return spread([row["figures"][key] * scale for row in rows], fmt, unit)


def provenance(rows: Records, command: str) -> str:
    """The line under a table: the command, and where and when its records were measured (every machine and
    thread count its rows ran on)."""
    commits = sorted({row["commit"] + ("+" if row.get("dirty") else "") for row in rows})
    dates = sorted({row["date"][:10] for row in rows})
    cpus = " and ".join(dict.fromkeys(row["cpu"] for row in rows))
    threads = " or ".join(str(n) for n in sorted({row["threads"] for row in rows}))
    first = rows[0]
    return (
        f"Measured by `{command}` on {cpus} ({threads} threads, {first['device']}), "
        f"torch {first['torch']}, commit {', '.join(commits)}, {' to '.join(dict.fromkeys([dates[0], dates[-1]]))}."
    )


def table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> list[str]:
    """A Markdown table."""
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)] + ["| " + " | ".join(r) + " |" for r in rows]


def by_sampler(rows: Records) -> dict[str, dict[str, Any]]:
    return {row["sampler"]: row for row in rows}


def sampler_cell(row: dict[str, Any]) -> str:
    f = row["figures"]
    return f"FD {f['fd']:.1f}, {f['recognised']:.1%} recognised, {f['calls']} calls, {row['wall_s']:.0f} s"


def best_rates(speed: dict[str, float]) -> dict[str, float]:
    """Each network's images/s at its better precision: ours at diffusers' blocks, diffusers', and the default
    network's where it differs from ours (records from before the default had its own decoder have none)."""
    sides = [s for s in ("ours", "diffusers", "default") if f"{s}_fp32_images_per_s" in speed]
    return {s: max(speed[f"{s}_fp32_images_per_s"], speed[f"{s}_bf16_images_per_s"]) for s in sides}


def epochs(runs: Records) -> int:
    """The epochs of the default runs ``runs`` (all ran the same recipe)."""
    return runs[0]["config"]["epochs"]


NO_RECORDS = ["(no records yet: run `make results`)"]


def headline(root: Path) -> list[str]:
    """The README's table: the default run, the fast sampler against DDPM, speed against diffusers, Phase 3."""
    runs = records(root, "headline", "default_run")
    samplers = by_sampler(records(root, "headline", "samplers"))
    throughput = at_batch(all_records(root, "headline", "throughput"), 32)[-1:]
    phase3 = phase3_runs(root)
    if not (runs and samplers and throughput and {"first", "again"} <= phase3.keys()):
        return NO_RECORDS
    fast, ddpm, speed = samplers["dpm++sde"], samplers["ddpm"], throughput[-1]["figures"]
    best, real = best_rates(speed), runs[0]["figures"]
    eval_command = "`ddpm-tui eval --checkpoint outputs/model_final.pt`"
    rows = [
        (f"training, {epochs(runs)} epochs of the default recipe", figure(runs, "train_minutes", ".1f", unit=" min"),
         "`ddpm-tui train`"),
        (f"Frechet distance of 1,000 samples (real images: {real['floor_fd']:.2f})",
         figure(runs, "frechet_distance", ".1f"), eval_command),
        (f"recognised by the classifier (real: {real['floor_recognised']:.1%})",
         figure(runs, "recognised", ".1f", 100, "%"), "(the same)"),
        ("class entropy (1: every class equally often)", figure(runs, "class_entropy", ".3f"), "(the same)"),
        (f"fast sampler, {fast['config']['num_images']} images (real: FD {fast['figures']['floor_fd']:.1f})",
         sampler_cell(fast), "`benchmarks/headline.py --parts samplers`"),
        ("DDPM's 1,000 steps from the same noise", sampler_cell(ddpm), "(the same)"),
        ("training images/s against diffusers, equal blocks (Ho et al.'s decoder, no attention), batch 32",
         f"{best['ours']:.0f} against {best['diffusers']:.0f} ({speed['ratio']:.2f}x)"
         + (f"; the default lean decoder {best['default']:.0f} ({speed['default_ratio']:.2f}x)" if "default" in best
            else ""),
         "`benchmarks/headline.py --parts throughput`"),
        ("Phase 3: DDPM-1000, 64 images with frames, wall",
         f"{figure(phase3['again'], 'seconds', '.0f', unit=' s')}; "
         f"{figure(phase3['first'], 'seconds', '.0f', unit=' s')} the first time (the GroupNorm kernel is built)",
         "`ddpm-tui sample --checkpoint outputs/model_final.pt --num_images 64 --show_intermediate`"),
    ]  # fmt: skip
    everything = runs + list(samplers.values()) + throughput + [row for rows in phase3.values() for row in rows]
    return [*table(("what", "result", "command"), rows), "", provenance(everything, "make results")]


def default_run(root: Path) -> list[str]:
    """QUICKSTART's Phase 2 and 4 figures: each with its spread over the seeds of the default run."""
    runs = records(root, "headline", "default_run")
    if not runs:
        return NO_RECORDS
    real = runs[0]["figures"]
    rows = [
        (f"training time, {epochs(runs)} epochs (minutes)", figure(runs, "train_minutes", ".1f"), ""),
        ("loss, the last epoch's mean", figure(runs, "final_loss", ".4f"), ""),
        ("Frechet distance, 1,000 images", figure(runs, "frechet_distance", ".1f"), f"{real['floor_fd']:.2f}"),
        ("recognised (confidence >= 0.9)", figure(runs, "recognised", ".1f", 100, "%"),
         f"{real['floor_recognised']:.1%}"),
        ("class entropy", figure(runs, "class_entropy", ".3f"), ""),
        ("`eval` wall time (minutes)", figure(runs, "eval_minutes", ".1f"), ""),
    ]  # fmt: skip
    header = ("figure", "the default run", "real held-out images")
    return [*table(header, rows), "", provenance(runs, "benchmarks/headline.py --parts default_run")]


def fast_vs_ddpm(root: Path) -> list[str]:
    """QUICKSTART's Phase 3: the fast sampler against DDPM's 1,000 steps, from the same noise."""
    rows = records(root, "headline", "samplers")
    if not rows:
        return NO_RECORDS
    cells = []
    for row in rows:
        f, w = row["figures"], row["config"]["autoguidance"]
        name = row["sampler"] + (f", autoguided w = {w:g}" if w else "")
        cells.append((name, str(f["calls"]), f"{f['fd']:.1f}", f"{f['recognised']:.1%}", f"{row['wall_s']:.0f}"))
    real, count = rows[0]["figures"], rows[0]["config"]["num_images"]
    cells.append(
        (f"real held-out images ({count})", "", f"{real['floor_fd']:.1f}", f"{real['floor_recognised']:.1%}", "")
    )
    header = ("sampler", "network calls", "FD", "recognised", "seconds")
    return [*table(header, cells), "", provenance(rows, "benchmarks/headline.py --parts samplers")]


PHASE3_RUNS = {
    "first": "the first run on the machine (`--compile auto`; it builds the GroupNorm kernel)",
    "again": "every run after it (`auto`: eager, in channels-last order)",
    "package_build": "`--compile on`, the first time (it builds the network's package)",
    "package": "`--compile on` every time after it (from the package)",
}


def phase3_runs(root: Path) -> dict[str, Records]:
    """The Phase 3 records of each run in :data:`PHASE3_RUNS` measured at the newest commit that measured them
    (older records, without runs, are left out)."""
    rows = [row for row in all_records(root, "headline", "phase3") if row.get("run") in PHASE3_RUNS]
    newest_commit = rows[-1]["commit"] if rows else None
    return grouped([row for row in rows if row["commit"] == newest_commit], lambda row: row["run"])


def phase3(root: Path) -> list[str]:
    """QUICKSTART's Phase 3 wall time, from an empty compile cache on, with its spread over the runs."""
    runs = phase3_runs(root)
    if not runs:
        return NO_RECORDS
    cells = [(PHASE3_RUNS[run], figure(rows, "seconds", ".0f", unit=" s")) for run, rows in runs.items()]
    header = ("Phase 3: DDPM, 1,000 steps, 64 images, frames and GIF, start-up included", "wall time")
    everything = [row for rows in runs.values() for row in rows]
    return [*table(header, cells), "", provenance(everything, "benchmarks/headline.py --parts phase3")]


def at_batch(rows: Records, batch: int) -> Records:
    """The throughput records measured at ``batch`` images a step."""
    return [row for row in rows if row["config"].get("batch_size", 32) == batch]


def peers_throughput(root: Path) -> list[str]:
    """The diffusers comparison at equal blocks, both precisions, at batch 32; the ratios at the other batch
    sizes measured, from their newest records."""
    every = all_records(root, "headline", "throughput")
    rows = at_batch(every, 32)
    if not rows:
        return NO_RECORDS
    f = rows[-1]["figures"]
    cells = [
        ("ours, `--attention none --decoder full`", f"{f['ours_parameters']:,}", f"{f['ours_fp32_images_per_s']:.0f}",
         f"{f['ours_bf16_images_per_s']:.0f}"),
        ("diffusers `UNet2DModel`, no attention", f"{f['diffusers_parameters']:,}",
         f"{f['diffusers_fp32_images_per_s']:.0f}", f"{f['diffusers_bf16_images_per_s']:.0f}"),
        ("ours / diffusers, the better precision of each", "", "", f"{f['ratio']:.2f}x"),
    ]  # fmt: skip
    if "default_ratio" in f:
        cells += [
            ("ours, the default: the lean decoder, fewer blocks", f"{f['default_parameters']:,}",
             f"{f['default_fp32_images_per_s']:.0f}", f"{f['default_bf16_images_per_s']:.0f}"),
            ("the default / diffusers", "", "", f"{f['default_ratio']:.2f}x"),
        ]  # fmt: skip
    others = {row["config"]["batch_size"]: row for row in every if row not in rows}  # newest per batch size
    for batch, row in sorted(others.items()):
        g = row["figures"]
        cells.append((f"at batch {batch}: ours / diffusers; the default / diffusers", "", "",
                      f"{g['ratio']:.2f}x; {g['default_ratio']:.2f}x"))  # fmt: skip
    header = ("training images/s, batch 32", "parameters", "fp32", "bf16")
    shown = rows[-1:] + list(others.values())
    return [*table(header, cells), "", provenance(shown, "benchmarks/headline.py --parts throughput")]


def study_table(
    root: Path, where: tuple[str, str], key: Callable, header: tuple[str, ...], cells: Callable, command: str
) -> list[str]:
    """The table of ``docs/records/STUDY/PART.jsonl`` (``where``): the newest record per ``key``, a row of
    ``cells(record)`` each, and the provenance line naming ``command``."""
    rows = newest(all_records(root, *where), key)
    if not rows:
        return NO_RECORDS
    return [*table(header, [cells(row) for row in rows]), "", provenance(rows, command)]


def invert_cells(row: dict[str, Any]) -> tuple[str, ...]:
    f = row["figures"]
    moments = f"{f['x_T_mean']:.3f}, {f['x_T_std']:.3f}"
    return str(row["config"]["steps"]), f"{f['mse']:.5f}", f"{f['random_mse']:.4f}", f"{f['ratio']:.0f}x", moments


def inpaint_cells(row: dict[str, Any]) -> tuple[str, ...]:
    config, f = row["config"], row["figures"]
    per_64 = f"{row['wall_s'] / config['num_images'] * 64:.0f}"
    steps, passes, w = str(config["steps"]), str(config["resample"]), f"{config.get('autoguidance') or 1:g}"
    jump, pull = str(config.get("jump", 1)), f"{config.get('guidance', 0):g}"
    return config["mask"], steps, passes, jump, pull, w, str(config["num_images"]), f"{f['kept_class']:.1%}", per_64


def sharing_cells(row: dict[str, Any]) -> tuple[str, ...]:
    f = row["figures"]
    beside = ", ".join(f"{s:.1f} s" for s in f.get("together_s") or [f["beside_training_s"]])
    return row["part"], f"{f['alone_s']:.1f} s", beside, f"{f['slowdown']:.2f}x"


def editing_invert(root: Path) -> list[str]:
    """Reconstruction error of inversion against a random sample's, per step count."""
    header = ("DDIM steps each way", "reconstruction MSE", "random sample's MSE", "ratio", "x_T mean, std")
    key = lambda r: r["config"]["steps"]
    return study_table(root, ("editing", "invert"), key, header, invert_cells, "benchmarks/editing.py --parts invert")


def editing_interpolate(root: Path) -> list[str]:
    """Slerp and lerp mid-points against ordinary samples: recognised, distance, ink, noise norm."""
    header = ("decoded from", "recognised", "FD (500 images)", "ink (mean brightness)", "noise norm / sqrt(d)")

    def cells(r: dict[str, Any]) -> tuple[str, ...]:
        f = r["figures"]
        norm = f"{f.get('norm_over_sqrt_d', 1.0):.3f}"
        return r["method"], f"{f['recognised']:.1%}", f"{f.get('fd', float('nan')):.1f}", f"{f.get('ink', 0):.3f}", norm

    command = "benchmarks/editing.py --parts interpolate"
    return study_table(root, ("editing", "interpolate"), lambda r: r["method"], header, cells, command)


def editing_inpaint(root: Path) -> list[str]:
    """The share of inpainted digits that keep their class, per mask and resampling."""
    header = ("mask", "steps", "passes", "jump", "reconstruction w", "autoguidance w", "digits", "keep their class")
    header += ("seconds per 64",)
    key = lambda r: tuple(
        r["config"].get(k) for k in ("mask", "steps", "resample", "jump", "guidance", "autoguidance", "num_images")
    )
    return study_table(
        root, ("editing", "inpaint"), key, header, inpaint_cells, "benchmarks/editing.py --parts inpaint"
    )


def editing_speed(root: Path) -> list[str]:
    """Wall time of each editing command with its defaults, 64 images."""
    header = ("command, defaults, 64 images", "wall time")

    def cells(r: dict[str, Any]) -> tuple[str, ...]:
        return f"`ddpm-tui {r['command']}`", f"{r['figures']['seconds']:.0f} s"

    return study_table(
        root, ("editing", "speed"), lambda r: r["command"], header, cells, "benchmarks/editing.py --parts speed"
    )


def sharing(root: Path) -> list[str]:
    """Each job's slowdown beside another, against its time alone."""
    header = ("jobs", "alone", "beside the other job", "slowdown")
    return study_table(
        root, ("sharing", "sharing"), lambda r: r["part"], header, sharing_cells, "benchmarks/sharing.py"
    )


def own_images_speed(root: Path) -> list[str]:
    """Decoding a folder the first time and from the cache, and training on it against CIFAR-10's loader."""
    decode = newest(all_records(root, "own-images", "decode"), lambda r: r["config"]["files"])
    speed = newest(all_records(root, "own-images", "throughput"), lambda r: r["config"]["image_size"])
    if not decode or not speed:
        return NO_RECORDS
    d, t = decode[-1], speed[-1]
    cells = [
        (f"decode {d['config']['files']:,} JPEG and PNG files, sides 28-160", f"{d['figures']['first_s']:.1f} s"),
        ("start again on the unchanged folder (cache)", f"{d['figures']['cached_s']:.2f} s"),
        (
            "train on an RGB folder at 32x32, images/s against CIFAR-10's loader",
            f"{t['figures']['folder_img_s']:.0f} / {t['figures']['cifar_img_s']:.0f} = {t['figures']['ratio']:.2f}x",
        ),
    ]
    command = "benchmarks/own_images.py --parts decode throughput"
    return [*table(("what", "measured"), cells), "", provenance([d, t], command)]


def own_images_conditional(root: Path) -> list[str]:
    """The same digits as a class folder and as the bundled dataset, conditional: per-class accuracy."""
    rows = newest(all_records(root, "own-images", "conditional"), lambda r: (r["config"]["data"], r["config"]["seed"]))
    if not rows:
        return NO_RECORDS
    cells = []
    for data in ("folder", "bundled"):
        mine = [r for r in rows if r["config"]["data"] == data]
        if mine:
            mean_accuracy = [sum(r["figures"]["class_accuracy"]) / 10 for r in mine]
            cells.append((
                "10 class sub-folders of PNGs" if data == "folder" else "the bundled dataset",
                spread(mean_accuracy, ".1%"),
                figure(mine, "min_class_accuracy", ".1%"),
                figure(mine, "recognised", ".1%"),
                figure(mine, "fd", ".1f"),
            ))  # fmt: skip
    header = ("5,000 MNIST digits as", "drawn as the class asked for", "worst class", "recognised", "FD")
    return [*table(header, cells), "", provenance(rows, "benchmarks/own_images.py --parts conditional")]


def own_images_memorisation(root: Path) -> list[str]:
    """The memorised share of the default MNIST run and of a small folder trained short and long."""
    rows = newest(
        all_records(root, "own-images", "memorisation"),
        lambda r: r["config"].get("checkpoint") or (r["config"]["data"], r["config"]["epochs"]),
    )
    if not rows:
        return NO_RECORDS
    default = [r for r in rows if "checkpoint" in r["config"]]
    small = [r for r in rows if "checkpoint" not in r["config"]]
    cells = []
    if default:
        cells.append((
            "the default run: 5,000 bundled digits, 20 epochs",
            figure(default, "memorised", ".1%"),
            figure(default, "median_distance", ".3f"),
            figure(default, "held_out_median", ".3f"),
        ))  # fmt: skip
    for r in small:
        f = r["figures"]
        cells.append((
            f"a folder of 64 digits, {r['config']['epochs']} epochs",
            f"{f['memorised']:.1%}",
            f"{f['median_distance']:.3f}",
            f"{f['held_out_median']:.3f}",
        ))  # fmt: skip
    header = ("model", "memorised", "samples' median distance", "held-out images' median distance")
    return [*table(header, cells), "", provenance(rows, "benchmarks/own_images.py --parts memorisation")]


def speed_profile(root: Path) -> list[str]:
    """The largest operators of a training step and a sampling step of the default network, by their share of
    the step's time (profiles of a ``--model`` preset stay in their own files)."""
    default = [r for r in all_records(root, "speed", "profile") if "preset" not in r["config"]]
    rows = newest(default, lambda r: r["config"]["kind"])
    if not rows:
        return NO_RECORDS
    by_kind = {row["config"]["kind"]: row for row in rows}
    cells = []
    for rank in range(8):
        cell = []
        for kind in ("train", "sample"):
            op = by_kind[kind]["top"][rank] if kind in by_kind else None
            cell += [f"`{op['op']}`", f"{op['share']:.0%}", f"{op['ms_per_step']:.1f}"] if op else ["", "", ""]
        cells.append(tuple(cell))
    header = ("training step: operator", "share", "ms", "sampling step (64 images): operator", "share", "ms")
    return [*table(header, cells), "", provenance(rows, "benchmarks/profile_step.py")]


def flags_without_out(flags: str) -> str:
    """A benchmark's flags without ``--out FOLDER``, which says where its records went, not what it measured."""
    return re.sub(r"\s*--out \S+", "", flags).strip()


def speed_variants(root: Path) -> list[str]:
    """Each way of running a network against eager: call time, compile time, training speed; for each network
    (the default, or a ``--model`` preset), the runs of its newest commit only, since a change to the network
    changes every variant's figures."""
    every = all_records(root, "speed", "variants")
    newest_commit = {r["config"].get("model"): r["commit"] for r in every}
    every = [r for r in every if r["commit"] == newest_commit[r["config"].get("model")]]
    rows = newest(every, lambda r: (r["command"], r["config"]["variant"], r["config"].get("inductor_cache")))
    if not rows:
        return NO_RECORDS

    def cells(r: dict[str, Any]) -> tuple[str, ...]:
        """The row's figures, as ratios to the eager row its own run wrote before it (timings under the same
        load)."""
        before = every[: every.index(r) + 1]
        eager = next(e for e in reversed(before) if e["config"]["variant"] == "eager" and e["command"] == r["command"])
        eager = eager["figures"]
        f = r["figures"]
        cache = r["config"].get("inductor_cache")
        return (
            f"`{flags_without_out(r['command'].removeprefix('benchmarks/step_variants.py')) or '(defaults)'}`",
            r["config"]["variant"] + (f", {cache} cache" if cache else ""),
            f"{f['call_ms']:.1f} ms ({eager['call_ms'] / f['call_ms']:.2f}x)",
            f"{f['first_call_s']:.1f} s",
            "sampling only"
            if f["train_img_s"] is None
            else f"{f['train_img_s']:.0f} ({f['train_img_s'] / eager['train_img_s']:.2f}x)",
            f"{f['max_diff']:.2g}",
        )

    header = (
        "run",
        "variant",
        "one call, 64 images",
        "first call",
        "training images/s, batch 32",
        "largest difference",
    )
    return [*table(header, [cells(r) for r in rows]), "", provenance(rows, "benchmarks/step_variants.py")]


def compiled_sampling(root: Path) -> list[str]:
    """Each fast sampler's seconds for 64 images, eager and compiled, in one process that compiled the network."""
    rows = newest(all_records(root, "speed", "compiled_sampling"), lambda r: r["sampler"])
    if not rows:
        return NO_RECORDS
    cells = [
        (
            f"`{r['sampler'].replace(':default', '')}`",
            f"{r['figures']['eager_s']:.2f} s",
            f"{r['figures']['compiled_s']:.2f} s",
            f"{r['figures']['speedup']:.2f}x",
        )
        for r in rows
    ]
    header = (f"sampler, {rows[0]['config']['num_images']} images", "eager", "compiled", "speed-up")
    return [*table(header, cells), "", provenance(rows, "benchmarks/compiled_sampling.py")]


def fused_norm(root: Path) -> list[str]:
    """The GroupNorm-SiLU kernel against PyTorch's operators: one layer's milliseconds three ways, then each
    network's training step without and with it (channels-last), from the newest run of the benchmark."""
    every = all_records(root, "speed", "fused_norm")
    layer = newest([r for r in every if r["part"] == "layer"], lambda r: "layer")
    steps = newest([r for r in every if r["part"] == "step"], lambda r: r["config"]["model"])
    call = newest([r for r in every if r["part"] == "call"], lambda r: "call")
    if not layer or not steps:
        return NO_RECORDS
    f = layer[0]["figures"]
    cells = [
        (
            "one GroupNorm and SiLU, forward and backward (32 x 64 x 28 x 28)",
            f"{f['pytorch_nchw']:.2f} ms (NCHW); {f['pytorch_nhwc']:.2f} ms (NHWC)",
            f"{f['kernel_nhwc']:.2f} ms",
            f"{f['pytorch_nchw'] / f['kernel_nhwc']:.2f}x",
            "",
        )
    ]
    for r in call:  # from runs that timed it
        c = r["figures"]
        cells.append(
            (
                f"one eager call of the default network, {r['config']['images']} images (sampling without a package)",
                f"{c['without_ms']:.1f} ms",
                f"{c['with_ms']:.1f} ms",
                f"{c['without_ms'] / c['with_ms']:.2f}x",
                "",
            )
        )
    for r in steps:
        g, name = r["figures"], r["config"]["model"]
        cells.append(
            (
                f"training step, {'the default network' if name == 'small' else f'`--model {name}`'}, "
                f"batch {r['config']['batch_size']}, images/s",
                f"{g['without_img_s']:.0f}",
                f"{g['with_img_s']:.0f}",
                f"{g['with_img_s'] / g['without_img_s']:.2f}x",
                f"{g['largest_loss_difference']:.1e}",
            )
        )
    header = ("", "PyTorch's operators", "the kernel, channels-last", "speed-up", "losses: largest relative difference")
    return [*table(header, cells), "", provenance(layer + call + steps, "benchmarks/fused_norm.py")]


def fashion_screen(root: Path) -> list[str]:
    """Fashion-MNIST recipes screened at a fixed step count: FD / recognised per sampler, EMA weights."""
    rows = newest(
        all_records(root, "fashion-recipe", "screen"),
        lambda r: (json.dumps(r["overrides"], sort_keys=True), r["seed"], r["epochs"]),
    )
    if not rows:
        return NO_RECORDS
    samplers = [key for key in rows[0]["scores"] if not key.startswith("raw")]

    def changed(r: dict[str, Any]) -> str:
        shown = {k: v for k, v in r["overrides"].items() if k in ("log_sigma_mean", "log_sigma_std", "base_channels")}
        return ", ".join(f"{k} {v}" for k, v in shown.items()) or "the default recipe"

    cells = [
        (changed(r), str(r["seed"]), str(r["steps"]))
        + tuple(f"{r['scores'][s]['fd']:.1f} / {r['scores'][s]['recognised']:.1%}" for s in samplers)
        for r in rows
    ]
    header = ("recipe", "seed", "steps", *(f"{s}: FD / recognised" for s in samplers))
    command = 'benchmarks/recipe_search.py --extra \'{"dataset": "fashion_mnist", ...}\''
    return [*table(header, cells), "", provenance(rows, command)]


def fashion_full(root: Path, part: str = "full", real: str = "clothes") -> list[str]:
    """Full-budget runs (``docs/records/fashion-recipe/PART.jsonl``) as ``ddpm-tui eval`` scores them, one row
    per recipe and guidance: mean ± std over the seeds of FD as a multiple of the training images', recognised
    as a share of the real share, and the rarest and commonest class among the samples (its range over the
    seeds); then the two references, real held-out ``real`` and training images."""

    def sampling(r: dict[str, Any]) -> tuple[bool, float | None, float, int | None]:
        """Conditional or not, its classifier-free w (None without classes), its autoguidance w and the
        sampler's steps (None: its default)."""
        cfg = r["settings"]["guidance_scale"] if r["conditional"] else None
        return r["conditional"], cfg, r["settings"]["autoguidance"] or 1, r.get("steps")

    rows = newest(all_records(root, "fashion-recipe", part), lambda r: (r["run"], sampling(r)))
    if not rows:
        return NO_RECORDS
    cells = []
    for (conditional, cfg, auto, steps), group in grouped(rows, sampling).items():
        model = f"conditional, guidance w {cfg:g}" if conditional else "unconditional"
        model += f", {steps} steps" if steps else ""
        cells.append((
            model + ("" if auto == 1 else f", autoguided w {auto:g}"),
            spread([r["fd"] for r in group], ".1f"),
            spread([r["fd_over_training"] for r in group], ".2f", "x"),
            spread([r["recognised"] for r in group], ".1%"),
            spread([r["recognised_over_real"] for r in group], ".2f", "x"),
            class_range([r["class_range"] for r in group]),
        ))  # fmt: skip
    for name, key in ((f"1,000 real held-out {real}", "floor"), ("the first 1,000 training images", "training")):
        row = rows[-1][key]
        ranges = [row["class_range"]] if "class_range" in row else []
        cells.append((name, f"{row['fd']:.1f}", "", f"{row['recognised']:.1%}", "", class_range(ranges)))
    header = ("images", "FD", "FD / training images'", "recognised", "/ real", "rarest / commonest class")
    return [*table(header, cells), "", provenance(rows, "benchmarks/fashion_recipe.py --runs RUN ...")]


def fashion_time(root: Path) -> list[str]:
    """Fashion-MNIST trained as a learner would (every default, all cores): minutes to train, then to score."""
    rows = [r for r in all_records(root, "fashion-recipe", "full") if "train_seconds" in r]
    if not rows:
        return NO_RECORDS
    cells = [
        (
            str(r["seed"]),
            f"{r['train_seconds'] / 60:.1f} min",
            f"{r['sampling_seconds']:.0f} s",
            f"{r['fd']:.1f} ({r['fd_over_training']:.2f}x)",
            f"{r['recognised']:.1%} ({r['recognised_over_real']:.2f}x)",
        )
        for r in newest(rows, lambda r: r["seed"])
    ]
    header = ("seed", "train 20 epochs", "sample 1,000 for eval", "FD (/ training images')", "recognised (/ real)")
    return [*table(header, cells), "", provenance(rows, "benchmarks/fashion_recipe.py --train_seeds S")]


def class_range(ranges: list[list[float]]) -> str:
    """The rarest and the commonest class's share ("6.0% / 13.5%"), each as its range over several runs."""
    if not ranges:
        return ""
    ends = []
    for values in zip(*ranges, strict=True):
        low, high = min(values), max(values)
        ends.append(f"{low:.1%}" if low == high else f"{low:.1%}-{high:.1%}")
    return " / ".join(ends)


# eval's default sampling for each dataset when the decoder runs were scored: a run counts in the decoder
# table only under these (and with no other setting changed but the decoder).
DEFAULT_SAMPLING = {
    "mnist": {"guidance_scale": 3.0, "autoguidance": 2.0},
    "fashion_mnist": {"guidance_scale": 1.25, "autoguidance": None},
}


def default_recipe_runs(root: Path) -> Records:
    """The scored runs that changed nothing but the decoder, the epochs and (clothes) conditioning, each scored
    as ``ddpm-tui eval`` scores it (newest score per run)."""
    scored = [*all_records(root, "decoder", "mnist"), *all_records(root, "decoder", "fashion")]
    scored += all_records(root, "fashion-recipe", "full")  # the full decoder's clothes runs
    defaults = [
        r
        for r in scored
        if set(r["recipe"]) <= {"decoder", "conditional", "epochs"}
        and r["conditional"] == (r["dataset"] == "fashion_mnist")
        and r.get("steps") is None
        and r["settings"] == DEFAULT_SAMPLING[r["dataset"]]
    ]
    return newest(defaults, lambda r: r["run"])


def decoder_quality(root: Path) -> list[str]:
    """Runs with each decoder and number of epochs, every other setting the dataset's default, scored as ``ddpm-tui
    eval`` scores them: mean ± std over the runs of FD (and as a multiple of the training images') and the
    recognised share (and as a share of real images')."""
    rows = default_recipe_runs(root)
    if not rows:
        return NO_RECORDS
    groups = grouped(rows, lambda r: (r["dataset"], r["config"].get("decoder", "full"), r["config"]["epochs"]))
    cells = [
        (
            dataset,
            f"`{decoder}`",
            str(epochs),
            spread([r["fd"] for r in group], ".1f"),
            spread([r["fd_over_training"] for r in group], ".2f", "x"),
            spread([r["recognised"] for r in group], ".1%"),
            spread([r["recognised_over_real"] for r in group], ".2f", "x"),
        )
        for (dataset, decoder, epochs), group in sorted(groups.items())
    ]
    header = ("dataset", "decoder", "epochs", "FD", "/ training images'", "recognised", "/ real images'")
    return [*table(header, cells), "", provenance(rows, "benchmarks/fashion_recipe.py --runs RUN ...")]


def gap_cells(label: str, lean: list[float], full: list[float], unit: str) -> tuple[str, ...]:
    """One row of the decoder-gap table: mean(lean) - mean(full), its standard error
    sqrt(s_lean²/n_lean + s_full²/n_full), the difference in standard errors, its 95% interval (± 1.96
    standard errors) and one run's spread, the pooled standard deviation
    sqrt(((n_lean - 1) s_lean² + (n_full - 1) s_full²) / (n_lean + n_full - 2))."""
    difference = statistics.fmean(lean) - statistics.fmean(full)
    error = (statistics.variance(lean) / len(lean) + statistics.variance(full) / len(full)) ** 0.5
    pooled = (len(lean) - 1) * statistics.variance(lean) + (len(full) - 1) * statistics.variance(full)
    spread = (pooled / (len(lean) + len(full) - 2)) ** 0.5
    low, high = difference - 1.96 * error, difference + 1.96 * error
    return (
        label,
        f"{difference:+.2f}{unit}",
        f"{error:.2f}{unit}",
        f"{difference / error:+.1f}",
        f"{low:+.2f} to {high:+.2f}{unit}",
        f"± {spread:.2f}{unit}",
        f"{len(lean)} / {len(full)}",
    )


def decoder_gap(root: Path) -> list[str]:
    """How far the lean decoder's 20-epoch MNIST runs score from the full decoder's (:func:`gap_cells`; pairing
    runs by seed would not help: the two networks' initial weights share nothing). The two score alike when
    the 95% interval of the difference lies within one run's spread."""
    runs = [r for r in default_recipe_runs(root) if r["dataset"] == "mnist" and r["config"]["epochs"] == 20]
    sides = grouped(runs, lambda r: r["config"].get("decoder", "full"))
    if not {"lean", "full"} <= sides.keys() or min(len(sides["lean"]), len(sides["full"])) < 2:
        return NO_RECORDS
    cells = [
        gap_cells(label, *([scale * r[key] for r in sides[name]] for name in ("lean", "full")), unit)
        for label, key, scale, unit in (("FD", "fd", 1.0, ""), ("recognised", "recognised", 100.0, " points"))
    ]
    header = ("lean minus full, 20 epochs", "difference of means", "its standard error", "in standard errors")
    header += ("95% interval", "one run's spread", "runs, lean / full")
    return [*table(header, cells), "", provenance(runs, "benchmarks/fashion_recipe.py --runs RUN ...")]


def decoder_speed(root: Path) -> list[str]:
    """The two decoders timed in alternation in one run: arithmetic, training rate, one call, samplers."""
    rows = newest(all_records(root, "speed", "decoder"), lambda r: r["config"]["decoder"])
    if not rows:
        return NO_RECORDS
    full = next((r["figures"] for r in rows if r["config"]["decoder"] == "full"), rows[0]["figures"])
    samplers = [key.removesuffix("_s") for key in full if ":" in key and key.endswith("_s")]

    def ratio(f: dict[str, Any], key: str, faster_is_larger: bool = False) -> str:
        value = f[key] / full[key] if faster_is_larger else full[key] / f[key]
        return f" ({value:.2f}x)"

    cells = [
        (
            f"`{r['config']['decoder']}`",
            f"{r['figures']['multiply_adds'] / 1e6:.0f}M",
            f"{r['figures']['parameters']:,}",
            f"{r['figures']['train_img_s']:.0f}" + ratio(r["figures"], "train_img_s", faster_is_larger=True),
            f"{r['figures']['call_ms']:.1f} ms" + ratio(r["figures"], "call_ms"),
            f"{r['figures']['floor_call_ms']:.0f} ms at {r['figures']['conv_gflops']} GFLOP/s",
            *(f"{r['figures'][key + '_s']:.2f} s" + ratio(r["figures"], key + "_s") for key in samplers),
        )
        for r in rows
    ]
    n = rows[0]["config"]["num_images"]
    names = [f"{key.split(':')[0]}, {full[key + '_calls']} calls" for key in samplers]
    header = ("decoder", "multiply-adds per image", "parameters", "training images/s, batch 32",
              f"one call, {n} images", "its arithmetic at convolution speed",
              *(f"{name}, {n} images" for name in names))  # fmt: skip
    return [*table(header, cells), "", provenance(rows, "benchmarks/decoder_speed.py")]


def decoder_run_time(root: Path) -> list[str]:
    """Whole training runs timed in turn: each run's flags, decoder and epochs, its wall minutes and minutes per
    epoch (mean ± std over the repeats), and its minutes per epoch as a multiple of the first run's."""
    rows = newest(all_records(root, "decoder", "run_time"), lambda r: (r["flags"], r.get("repeat", 0)))
    if not rows:
        return NO_RECORDS
    groups = grouped(rows, lambda r: r["flags"])
    first = statistics.fmean(r["figures"]["minutes_per_epoch"] for r in next(iter(groups.values())))
    cells = [
        (
            f"`{('ddpm-tui train ' + flags).strip()}`",
            f"`{group[0]['config']['decoder']}`",
            str(group[0]["config"]["epochs"]),
            figure(group, "train_minutes", ".2f", unit=" min"),
            figure(group, "minutes_per_epoch", ".3f"),
            f"{statistics.fmean(r['figures']['minutes_per_epoch'] for r in group) / first:.2f}x",
        )
        for flags, group in groups.items()
    ]
    header = ("run", "decoder", "epochs", "wall time", "minutes per epoch", "/ the first run's")
    return [*table(header, cells), "", provenance(rows, "benchmarks/run_time.py")]


def baseline_of(record: dict[str, Any]) -> str | None:
    """The commit a run_time record's run was compared with (its ``--baseline``), None where it does not say."""
    found = re.search(r"--baseline (\S+)", record.get("command", ""))
    return found.group(1) if found else None


def run_time_baseline(root: Path) -> list[str]:
    """Whole training runs with an earlier commit's code and this one's, timed in turn: each code's wall
    minutes (mean ± std over the repeats and seeds) and how many times faster this commit's runs are, per thread
    count and earlier commit. Runs that differ only in ``--seed`` are one row."""
    rows = newest(
        all_records(root, "speed", "run_time_baseline"),
        lambda r: (r["flags"], r["threads"], r["code"], r["repeat"], baseline_of(r)),
    )
    if not rows:
        return NO_RECORDS
    cells = []
    unseeded = grouped(rows, lambda r: (re.sub(r"\s*--seed \d+", "", r["flags"]), r["threads"], baseline_of(r)))
    for (flags, threads, _), group in unseeded.items():
        codes = grouped(group, lambda r: r["code"])
        baseline = next(code for code in codes if code != "work tree")
        minutes = {code: statistics.fmean(r["figures"]["train_minutes"] for r in runs) for code, runs in codes.items()}
        run = f"`{('ddpm-tui train ' + flags).strip()}`, {threads} thread{'s' if threads > 1 else ''}"
        by_run = {(r["flags"], r["repeat"]): r["figures"]["train_minutes"] for r in codes[baseline]}
        for code, runs in codes.items():
            label = f"commit `{code}`" if code != "work tree" else f"commit `{runs[-1]['commit'][:7]}`"
            speedup = f"{minutes[baseline] / minutes[code]:.2f}x"
            paired = [(by_run.get((r["flags"], r["repeat"])), r["figures"]["train_minutes"]) for r in runs]
            pairs = [first / this for first, this in paired if first is not None]
            if code != baseline and len(pairs) > 1:
                speedup += f" (pairs {min(pairs):.2f}-{max(pairs):.2f}x)"
            cells.append((run, label, figure(runs, "train_minutes", ".2f", unit=" min"), speedup))
    header = ("run", "code", "wall time", "speed against the first")
    return [*table(header, cells), "", provenance(rows, "benchmarks/run_time.py --baseline")]


def floor_labels(config: dict[str, Any]) -> dict[str, str]:
    """How a training_floor record's two sides are named, from its config (records from before the model and
    attention were recorded are the default network's blocks without attention)."""
    batch, model = config["batch_size"], config.get("model", "small")
    if config.get("attention", "none") == "none":
        return {"ours": f"ours, `--decoder full --attention none`, batch {batch}",
                "diffusers": f"diffusers `UNet2DModel`, no attention, batch {batch}"}  # fmt: skip
    return {"ours": f"ours, `--model {model}` (attention), batch {batch}",
            "diffusers": f"diffusers `UNet2DModel`, attention, batch {batch}"}  # fmt: skip


def training_floor(root: Path) -> list[str]:
    """Our training step and diffusers' at equal blocks (newest run of each setup): each step, its convolutions'
    share and time, and the most our step could gain on diffusers' with everything but the convolutions free."""
    rows = newest(all_records(root, "speed", "training_floor"), lambda r: (r.get("setup", "small-32"), r["side"]))
    if not rows:
        return NO_RECORDS
    cells = []
    for group in grouped(rows, lambda r: r.get("setup", "small-32")).values():
        sides = {row["side"]: row["figures"] for row in group}
        labels = floor_labels(group[0]["config"])
        for name, f in sides.items():
            share = f"{f['convolution_share']:.0%}"
            cells.append((labels[name], f"{f['step_ms']:.0f} ms", f"{f['images_per_s']:.0f}", share,
                          f"{f['convolution_ms']:.0f} ms"))  # fmt: skip
        ours = sides["ours"]
        cells.append(("ours / diffusers, now", "", f"{ours['now_over_diffusers']:.2f}x", "", ""))
        cells.append(("ours / diffusers, if all but the convolutions took no time", "", "", "",
                      f"{ours['ceiling_over_diffusers']:.2f}x"))  # fmt: skip
    header = ("training step, bf16", "step", "images/s", "convolutions' share", "convolutions")
    return [*table(header, cells), "", provenance(rows, "benchmarks/training_floor.py")]


def weight_gradient(root: Path) -> list[str]:
    """A 3x3 convolution's bf16 weight gradient three ways at each shape of a training step, as milliseconds and
    as multiples of the forward pass, from the newest record of each shape."""
    rows = newest(all_records(root, "speed", "weight_gradient"), lambda r: tuple(r["config"].values()))
    if not rows:
        return NO_RECORDS
    cells = []
    for r in rows:
        c, f = r["config"], r["figures"]
        shape = f"{c['images']} x {c['in_channels']} x {c['size']} x {c['size']} to {c['out_channels']}"
        ways = [f"{f[f'{way}_ms']:.2f} ms ({f[f'{way}_ms'] / f['forward_ms']:.1f}x)"
                for way in ("onednn", "matrix_product", "convolution")]  # fmt: skip
        cells.append(
            (shape, str(c["per_step"]), f"{f['forward_ms']:.2f} ms", f"{f['input_gradient_ms']:.2f} ms", *ways)
        )
    header = ("3x3 convolution, bf16 channels-last", "per step", "forward", "input gradient",
              "weight gradient: oneDNN", "one matrix product", "a convolution of transposes")  # fmt: skip
    return [*table(header, cells), "", provenance(rows, "benchmarks/weight_gradient.py")]


# the steps kept_memory.py, time_projections.py and kernel_builds.py time, by kind
STEP_LABELS = {"train": "training step, batch {size}", "sample": "a sampling call on {size} images"}


def model_step(config: dict[str, Any]) -> str:
    """A record's model and step, as "`small`, training step, batch 32"."""
    return f"`{config['model']}`, " + STEP_LABELS[config["kind"]].format(size=config["size"])


def kept_memory(root: Path) -> list[str]:
    """Each workload's step under the C library's own memory policy and with freed memory kept (newest run of
    each): median ms and page faults per step, and the speed-up."""
    rows = newest(all_records(root, "speed", "kept_memory"), lambda r: r["workload"])
    if not rows:
        return NO_RECORDS
    cells = []
    for r in rows:
        c, f = r["config"], r["figures"]
        label = STEP_LABELS[c["kind"]].format(size=c["size"])
        system, kept = f["system"], f["kept"]
        cells.append((label, f"{system['ms']:.1f} ms, {system['faults']:,.0f} faults",
                      f"{kept['ms']:.1f} ms, {kept['faults']:,.0f} faults", f"{f['speedup']:.2f}x"))  # fmt: skip
    header = ("the default network, bf16", "glibc's own policy", "freed memory kept", "speed-up")
    return [*table(header, cells), "", provenance(rows, "benchmarks/kept_memory.py")]


def time_projections(root: Path) -> list[str]:
    """Each model's and workload's step with one time-projection product per residual block and with one for all
    of them (newest run of each): median ms, the speed-up and the outputs' largest difference."""
    rows = newest(all_records(root, "speed", "time_projections"), lambda r: (r["config"]["model"], r["workload"]))
    if not rows:
        return NO_RECORDS
    cells = []
    for r in rows:
        f = r["figures"]
        label = model_step(r["config"])
        difference = "" if f["max_difference"] is None else f"{f['max_difference']:g}"
        cells.append((label, f"{f['per_block']:.1f} ms", f"{f['stacked']:.1f} ms", f"{f['speedup']:.2f}x", difference))
    header = ("network, bf16", "a product per block", "one product", "speed-up", "largest difference")
    return [*table(header, cells), "", provenance(rows, "benchmarks/time_projections.py")]


def kernel_builds(root: Path) -> list[str]:
    """Each model's and workload's step with the GroupNorm kernel of an older commit and with the measured commit's,
    built and timed in turn (newest run of each): median ms and the speed-up."""
    key = lambda r: (r["against"], r["config"]["model"], r["workload"])
    rows = newest(all_records(root, "speed", "kernel_builds"), key)
    if not rows:
        return NO_RECORDS
    cells = []
    for r in rows:
        f = r["figures"]
        older = f"`{r['against']}`: {f['against_ms']:.1f} ms"
        cells.append((model_step(r["config"]), older, f"{f['work_tree_ms']:.1f} ms", f"{f['speedup']:.2f}x"))
    header = ("network, bf16", "the older kernel", "the measured commit's kernel", "speed-up")
    return [*table(header, cells), "", provenance(rows, "benchmarks/kernel_builds.py")]


def peers_sampling(root: Path) -> list[str]:
    """Each sampler's seconds for 64 images (newest run of each), the better precision of each side: ours at
    diffusers' blocks, diffusers', and the default network's, with the two speed-ups."""
    rows = newest(all_records(root, "speed", "sampling_speed"), lambda r: r["sampler"])
    if not rows:
        return NO_RECORDS
    cells = []
    for r in rows:
        f = r["figures"]
        best = {side: min(f[f"{side}_fp32"], f[f"{side}_bf16"]) for side in ("ours", "diffusers", "default")}
        cells.append((r["sampler"], f"{best['ours']:.2f} s", f"{best['diffusers']:.2f} s", f"{f['speed_up']:.2f}x",
                      f"{best['default']:.2f} s", f"{f['default_speed_up']:.2f}x"))  # fmt: skip
    header = (f"{rows[0]['config']['num_images']} images, the better precision of each",
              "ours, `--decoder full --attention none`", "diffusers `UNet2DModel`, no attention", "ours / diffusers",
              "the default: the lean decoder", "the default / diffusers")  # fmt: skip
    return [*table(header, cells), "", provenance(rows, "benchmarks/sampling_speed.py --skip_ddpm")]


TABLES: dict[str, Callable[[Path], list[str]]] = {
    "decoder-quality": decoder_quality,
    "decoder-gap": decoder_gap,
    "decoder-speed": decoder_speed,
    "decoder-run-time": decoder_run_time,
    "run-time-baseline": run_time_baseline,
    "training-floor": training_floor,
    "headline": headline,
    "default-run": default_run,
    "fast-vs-ddpm": fast_vs_ddpm,
    "phase3": phase3,
    "peers-throughput": peers_throughput,
    "editing-invert": editing_invert,
    "editing-interpolate": editing_interpolate,
    "editing-inpaint": editing_inpaint,
    "editing-speed": editing_speed,
    "sharing": sharing,
    "own-images-speed": own_images_speed,
    "own-images-conditional": own_images_conditional,
    "own-images-memorisation": own_images_memorisation,
    "speed-profile": speed_profile,
    "speed-variants": speed_variants,
    "compiled-sampling": compiled_sampling,
    "fused-norm": fused_norm,
    "weight-gradient": weight_gradient,
    "kept-memory": kept_memory,
    "time-projections": time_projections,
    "kernel-builds": kernel_builds,
    "peers-sampling": peers_sampling,
    "fashion-screen": fashion_screen,
    "fashion-full": fashion_full,
    "fashion-mnist-conditional": lambda root: fashion_full(root, "mnist-conditional", "digits"),
    "fashion-time": fashion_time,
}


def documents(root: Path) -> list[Path]:
    return [root / "README.md", root / "QUICKSTART.md", *sorted((root / "docs").rglob("*.md"))]


def render(text: str, root: Path) -> tuple[str, list[str]]:
    """``text`` with every marked block rewritten, and the names of the blocks that changed."""
    changed: list[str] = []

    def rewrite(match: re.Match[str]) -> str:
        name = match.group(2)
        if name not in TABLES:
            raise SystemExit(f"render_results: no table is named {name!r}; known: {', '.join(TABLES)}")
        body = "\n".join(TABLES[name](root)) + "\n"
        if body != match.group(3):
            changed.append(name)
        return match.group(1) + body + match.group(4)

    return BLOCK.sub(rewrite, text), changed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 if any block is stale")
    parser.add_argument("--root", type=Path, default=ROOT, help="the project folder")
    args = parser.parse_args(argv)
    stale = []
    for path in documents(args.root):
        if not path.exists():
            continue
        text = path.read_text()
        new, changed = render(text, args.root)
        stale += [f"{path.relative_to(args.root)}: {name}" for name in changed]
        if changed and not args.check:
            path.write_text(new)
    if args.check and stale:
        for block in stale:
            print(f"stale results table (run scripts/render_results.py): {block}", file=sys.stderr)
        return 1
    for block in stale:
        print(f"rewrote {block}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
