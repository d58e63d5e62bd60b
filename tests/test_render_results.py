"""scripts/render_results.py: the docs' tables are rendered from records, and --check catches a hand edit."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "render_results.py"
# what a record says of the code and machine it ran on
MACHINE = {"commit": "abc", "dirty": False, "torch": "2", "device": "cpu", "cpu": "CPU", "threads": 2}


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=60)


def record(seed: int, fd: float, minutes: float) -> dict:
    figures = {
        "train_minutes": minutes,
        "final_loss": 0.1,
        "frechet_distance": fd,
        "recognised": 0.86,
        "class_entropy": 0.997,
        "floor_fd": 4.1,
        "floor_recognised": 0.937,
        "eval_minutes": 1.5,
    }
    return {"seed": seed, "config": {"epochs": 30}, "figures": figures, **MACHINE, "date": "2026-12-05T00:00:00+00:00"}


def project(tmp_path: Path, rows: list[dict]) -> Path:
    """A project folder with one QUICKSTART block and the default run's records ``rows``."""
    (tmp_path / "QUICKSTART.md").write_text("Phase 2\n\n<!-- results: default-run -->\n<!-- /results -->\n")
    records = tmp_path / "docs" / "records" / "headline"
    records.mkdir(parents=True)
    (records / "default_run.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return tmp_path


def test_the_committed_tables_match_their_records():
    result = run("--check")
    assert result.returncode == 0, result.stderr


def test_a_table_shows_the_mean_and_spread_over_seeds_and_the_newest_run_of_each(tmp_path):
    rows = [record(0, 99.0, 9.0), record(0, 10.0, 9.0), record(1, 12.0, 10.0), record(2, 14.0, 11.0)]
    root = project(tmp_path, rows)
    assert run("--root", str(root)).returncode == 0
    text = (root / "QUICKSTART.md").read_text()
    assert "| Frechet distance, 1,000 images | 12.0 ± 2.0 (3 runs) | 4.10 |" in text  # seed 0's rerun replaced 99
    assert "| training time, 30 epochs (minutes) | 10.0 ± 1.0 (3 runs) |  |" in text
    assert "commit abc" in text and "2026-12-05" in text
    assert run("--root", str(root), "--check").returncode == 0


def test_check_fails_and_names_the_block_when_a_table_was_edited_by_hand(tmp_path):
    root = project(tmp_path, [record(0, 10.0, 9.0), record(1, 12.0, 10.0)])
    run("--root", str(root))
    path = root / "QUICKSTART.md"
    path.write_text(path.read_text().replace("11.0 ± 1.4", "9.0 ± 0.1"))
    result = run("--root", str(root), "--check")
    assert result.returncode == 1
    assert "QUICKSTART.md: default-run" in result.stderr
    assert "9.0 ± 0.1" in path.read_text()  # --check changes nothing


def test_the_real_readme_fails_the_check_once_its_headline_is_edited(tmp_path):
    for name in ("README.md", "QUICKSTART.md"):
        shutil.copy(ROOT / name, tmp_path / name)
    shutil.copytree(ROOT / "docs", tmp_path / "docs")
    readme = tmp_path / "README.md"
    text = readme.read_text()
    start = text.index("<!-- results: headline -->")
    readme.write_text(text[: start + 27] + "| a number typed by hand | 1.0 |\n" + text[start + 27 :])
    result = run("--root", str(tmp_path), "--check")
    assert result.returncode == 1 and "README.md: headline" in result.stderr


def test_an_unknown_table_name_is_an_error(tmp_path):
    (tmp_path / "README.md").write_text("<!-- results: nonsense -->\n<!-- /results -->\n")
    result = run("--root", str(tmp_path), "--check")
    assert result.returncode == 1 and "nonsense" in result.stderr


def scored_run(run: str, fd: float, decoder: str | None = None, epochs: int = 20, **changed) -> dict:
    """A record as ``benchmarks/fashion_recipe.py`` writes it for an MNIST run, scored under eval's default
    sampling unless ``changed`` says otherwise; ``decoder`` None is a run from before the setting existed."""
    recipe = {**({"decoder": decoder} if decoder else {}), **({"epochs": epochs} if epochs != 20 else {})}
    return {
        "run": run,
        "dataset": "mnist",
        "conditional": False,
        "recipe": recipe,
        "config": {"epochs": epochs, **({"decoder": decoder} if decoder else {})},
        "settings": {"guidance_scale": 3.0, "autoguidance": 2.0},
        "fd": fd,
        "fd_over_training": fd / 8,
        "recognised": 0.86,
        "recognised_over_real": 0.92,
        **{"commit": "abc", "dirty": False, "torch": "2", "device": "cpu", "cpu": "CPU", "threads": 1},
        "date": "2026-12-06T00:00:00+00:00",
        **changed,
    }


def rendered(tmp_path: Path, part: str, name: str, rows: list[dict], study: str = "decoder") -> str:
    """A page holding the one table ``name``, rendered from ``rows`` written as docs/records/STUDY/PART.jsonl."""
    records = tmp_path / "docs" / "records" / study
    records.mkdir(parents=True)
    (records / f"{part}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (tmp_path / "docs" / "page.md").write_text(f"<!-- results: {name} -->\n<!-- /results -->\n")
    assert run("--root", str(tmp_path)).returncode == 0
    return (tmp_path / "docs" / "page.md").read_text()


def test_the_decoder_table_groups_default_runs_by_decoder_and_epochs(tmp_path):
    rows = [
        scored_run("a", 10.0),  # a run from before the decoder setting: the full decoder
        scored_run("b", 12.0, "full"),
        scored_run("c", 99.0, "lean"),
        scored_run("c", 13.0, "lean"),  # its rescore replaces it
        scored_run("c", 50.0, "lean", settings={"guidance_scale": 3.0, "autoguidance": 3.0}),  # not eval's default
        scored_run("d", 60.0, "lean", recipe={"decoder": "lean", "lr": 0.002}),  # another setting changed
        scored_run("e", 9.0, "lean", epochs=30),
    ]
    text = rendered(tmp_path, "mnist", "decoder-quality", rows)
    assert "| mnist | `full` | 20 | 11.0 ± 1.4 (2 runs) |" in text
    assert "| mnist | `lean` | 20 | 13.0 |" in text
    assert "| mnist | `lean` | 30 | 9.0 |" in text
    assert "99.0" not in text and "50.0" not in text and "60.0" not in text


def test_the_decoder_gap_is_the_difference_of_the_means_with_its_error_interval_and_a_runs_spread(tmp_path):
    rows = [scored_run("a", 10.0), scored_run("b", 12.0, "full"), scored_run("c", 14.0, "full")]  # 12 ± 2
    rows += [scored_run("d", 13.0, "lean"), scored_run("e", 15.0, "lean", recognised=0.80)]  # 14 ± 1.41
    rows += [scored_run("f", 5.0, "lean", epochs=30)]  # another number of epochs
    text = rendered(tmp_path, "mnist", "decoder-gap", rows)
    # sqrt(4 / 3 + 2 / 2) = 1.528, so 2 ± 2.99; recognised: 83 ± 4.24 against 86 ± 0 points, sqrt(18 / 2) = 3
    # the 95% interval is the difference ± 1.96 standard errors; one run's spread the pooled standard deviation,
    # sqrt((2 * 4 + 1 * 2) / 3) = 1.83 and sqrt((1 * 18 + 2 * 0) / 3) = 2.45
    assert "| FD | +2.00 | 1.53 | +1.3 | -0.99 to +4.99 | ± 1.83 | 2 / 3 |" in text
    assert "| recognised | -3.00 points | 3.00 points | -1.0 | -8.88 to +2.88 points | ± 2.45 points | 2 / 3 |" in text


def test_the_run_time_table_gives_each_run_as_a_multiple_of_the_first(tmp_path):
    def timed(flags: str, decoder: str, epochs: int, minutes: float, repeat: int) -> dict:
        config = {"decoder": decoder, "epochs": epochs}
        figures = {"train_minutes": minutes, "minutes_per_epoch": minutes / epochs, "final_loss": 0.1}
        return {"flags": flags, "config": config, "figures": figures, "repeat": repeat, **MACHINE, "date": "2026-12-06"}

    rows = [timed("--decoder full --epochs 4", "full", 4, 2.0, 0), timed("--epochs 4", "lean", 4, 9.9, 0)]
    rows += [timed("--decoder full --epochs 4", "full", 4, 2.4, 1), timed("--epochs 4", "lean", 4, 1.4, 1)]
    rows.append(timed("--epochs 4", "lean", 4, 1.6, 0))  # a rerun of the same repeat replaces it
    text = rendered(tmp_path, "run_time", "decoder-run-time", rows)
    full = "| `ddpm-tui train --decoder full --epochs 4` | `full` | 4 | 2.20 ± 0.28 min (2 runs) |"
    assert full + " 0.550 ± 0.071 (2 runs) | 1.00x |" in text
    assert "| `ddpm-tui train --epochs 4` | `lean` | 4 | 1.50 ± 0.14 min (2 runs) |" in text and "0.68x |" in text


def test_the_baseline_run_time_table_says_how_many_times_faster_this_commits_runs_are(tmp_path):
    def timed(code: str, minutes: float, repeat: int, flags: str = "--epochs 20") -> dict:
        machine = {"commit": "new1234abcd", "dirty": False, "torch": "2", "device": "cpu", "cpu": "CPU", "threads": 1}
        figures = {"train_minutes": minutes, "minutes_per_epoch": minutes / 20, "final_loss": 0.1}
        row = {"flags": flags, "config": {"epochs": 20}, "figures": figures, "repeat": repeat, "code": code}
        return {**row, **machine, "date": "2026-12-06"}

    rows = [timed("1be599a", 12.0, 0), timed("work tree", 77.0, 0), timed("work tree", 8.0, 0)]  # a rerun replaces
    rows += [timed("1be599a", 14.0, 1, "--epochs 20 --seed 7"), timed("work tree", 9.0, 1, "--epochs 20 --seed 7")]
    later = {"command": "benchmarks/run_time.py --runs '--epochs 20' --baseline abc9999", "commit": "later12"}
    rows += [timed("abc9999", 6.0, 0) | later, timed("work tree", 4.0, 0) | later]  # against a later commit
    text = rendered(tmp_path, "run_time_baseline", "run-time-baseline", rows, study="speed")
    assert "| `ddpm-tui train --epochs 20`, 1 thread | commit `later12` | 4.00 min | 1.50x |" in text
    assert "1.53x (pairs 1.50-1.56x) |" in text  # 12 / 8 and 14 / 9: the seeded pair is the same row
    assert "| `ddpm-tui train --epochs 20`, 1 thread | commit `1be599a` | 13.00 ± 1.41 min (2 runs) | 1.00x |" in text
    assert "| `ddpm-tui train --epochs 20`, 1 thread | commit `new1234` | 8.50 ± 0.71 min (2 runs) | 1.53x" in text
    assert "77" not in text


def test_the_training_floor_table_gives_the_ceiling_the_convolutions_leave(tmp_path):
    def side(name: str, step_ms: float, share: float, **ratios: float) -> dict:
        machine = {"commit": "abc", "dirty": False, "torch": "2", "device": "cpu", "cpu": "CPU", "threads": 1}
        figures = {"step_ms": step_ms, "convolution_share": share, "convolution_ms": step_ms * share}
        figures.update(images_per_s=32_000 / step_ms, **ratios)
        config = {"batch_size": 32, "decoder": "full"}  # as records from before setups were named have it
        return {"side": name, "config": config, "figures": figures, **machine, "date": "2026-12-06"}

    rows = [side("ours", 999.0, 0.1, ceiling_over_diffusers=9.0, now_over_diffusers=0.4)]  # replaced below
    rows += [
        side("ours", 400.0, 0.5, ceiling_over_diffusers=2.2, now_over_diffusers=1.1),
        side("diffusers", 440.0, 0.5),
    ]
    base = {"config": {"batch_size": 32, "decoder": "full", "model": "base", "attention": "lowest"}, "setup": "base-32"}
    rows += [
        {**side("ours", 1500.0, 0.6, ceiling_over_diffusers=1.8, now_over_diffusers=1.2), **base},
        {**side("diffusers", 1800.0, 0.6), **base},
    ]
    text = rendered(tmp_path, "training_floor", "training-floor", rows, study="speed")
    assert "| ours, `--decoder full --attention none`, batch 32 | 400 ms | 80 | 50% | 200 ms |" in text
    assert "| diffusers `UNet2DModel`, no attention, batch 32 | 440 ms | 73 | 50% | 220 ms |" in text
    assert "| ours / diffusers, now |  | 1.10x |  |  |" in text
    assert "| ours / diffusers, if all but the convolutions took no time |  |  |  | 2.20x |" in text
    assert "| ours, `--model base` (attention), batch 32 | 1500 ms | 21 | 60% | 900 ms |" in text
    assert "| ours / diffusers, if all but the convolutions took no time |  |  |  | 1.80x |" in text
    assert "999" not in text


def test_the_phase3_table_gives_each_run_with_its_spread_at_the_newest_commit(tmp_path):
    def timed(run: str | None, seconds: float, commit: str = "new") -> dict:
        machine = {"commit": commit, "dirty": False, "torch": "2", "device": "cpu", "cpu": "CPU", "threads": 2}
        row = {"part": "phase3", "config": {"sampler": "ddpm"}, "figures": {"seconds": seconds}, **machine}
        return {**row, "date": "2026-12-06", **({"run": run} if run else {})}

    rows = [timed(None, 87.0), timed("first", 99.0, "old"), timed("compiling", 120.0, "old")]
    runs = ("first", "again", "package_build", "package")
    rows += [timed(run, seconds) for run, seconds in zip(runs, (80.0, 50.0, 81.0, 52.0), strict=True)]
    rows += [timed(run, seconds) for run, seconds in zip(runs, (60.0, 40.0, 71.0, 48.0), strict=True)]
    rows.append(timed("cached", 33.0))  # a run this renderer no longer shows
    text = rendered(tmp_path, "phase3", "phase3", rows, study="headline")
    assert (
        "| the first run on the machine (`--compile auto`; it builds the GroupNorm kernel) | 70 ± 14 s (2 runs) |"
        in text
    )
    assert "| every run after it (`auto`: eager, in channels-last order) | 45 ± 7 s (2 runs) |" in text
    assert "| `--compile on`, the first time (it builds the network's package) | 76 ± 7 s (2 runs) |" in text
    assert "| `--compile on` every time after it (from the package) | 50 ± 3 s (2 runs) |" in text
    # a record from before the runs were told apart, an older commit's runs, and a run no longer shown
    assert "87" not in text and "99" not in text and "120" not in text and "33" not in text and "commit new," in text


def test_the_variants_table_shows_each_networks_newest_commit_as_ratios_to_its_own_eager_row(tmp_path):
    def variant(commit: str, name: str, call_ms: float, train: float | None = 100.0, model: str = "small") -> dict:
        figures = {"call_ms": call_ms, "first_call_s": 0.1, "train_img_s": train, "max_diff": 0.01}
        machine = {"commit": commit, "dirty": False, "torch": "2", "device": "cpu", "cpu": "CPU", "threads": 2}
        config = {"variant": name, "model": model}
        command = "benchmarks/step_variants.py" + (
            f" --model {model} --out /elsewhere/speed" if model != "small" else ""
        )
        return {"command": command, "config": config, "figures": figures, **machine, "date": "d"}

    rows = [variant("old", "eager", 90.0), variant("old", "compile", 75.0)]
    rows += [
        variant("new", "eager", 60.0),
        variant("new", "compile", 30.0, 110.0),
        variant("new", "bf16_weights", 80, None),
    ]
    rows += [variant("newer", "eager", 400.0, 50.0, "base"), variant("newer", "compile", 200.0, 60.0, "base")]
    rows[-1] |= {"threads": 1, "cpu": "Other CPU"}
    text = rendered(tmp_path, "variants", "speed-variants", rows, study="speed")
    assert "on CPU and Other CPU (1 or 2 threads, cpu)" in text
    assert "| `--model base` | compile | 200.0 ms (2.00x) | 0.1 s | 60 (1.20x) | 0.01 |" in text
    assert "| `(defaults)` | compile | 30.0 ms (2.00x) | 0.1 s | 110 (1.10x) | 0.01 |" in text
    assert "| `(defaults)` | bf16_weights | 80.0 ms (0.75x) | 0.1 s | sampling only | 0.01 |" in text
    assert "75.0" not in text and "90.0" not in text  # the older commit's network


def test_the_compiled_sampling_table_gives_each_sampler_eager_and_compiled(tmp_path):
    def timed(sampler: str, eager: float, compiled: float) -> dict:
        figures = {"eager_s": eager, "compiled_s": compiled, "speedup": round(eager / compiled, 2), "first_run_s": 40}
        return {"sampler": sampler, "config": {"num_images": 64}, "figures": figures, **MACHINE, "date": "d"}

    rows = [timed("dpm++:20", 9.0, 1.0), timed("dpm++:20", 1.2, 0.6), timed("dpm++sde:default", 2.8, 1.6)]
    text = rendered(tmp_path, "compiled_sampling", "compiled-sampling", rows, study="speed")
    assert "| `dpm++:20` | 1.20 s | 0.60 s | 2.00x |" in text and "9.00" not in text  # the newest run
    assert "| `dpm++sde` | 2.80 s | 1.60 s | 1.75x |" in text


def test_the_peers_table_keeps_batch_32_and_adds_the_ratios_of_other_batch_sizes(tmp_path):
    def rates(batch: int, ratio: float) -> dict:
        names = ("ours_fp32", "ours_bf16", "diffusers_fp32", "diffusers_bf16", "default_fp32", "default_bf16")
        figures = {f"{name}_images_per_s": 100.0 * batch / 32 for name in names}
        figures.update(ratio=ratio, default_ratio=ratio + 0.5, ours_parameters=1, diffusers_parameters=2)
        figures["default_parameters"] = 3
        config = {"batch_size": batch}
        return {"part": "throughput", "config": config, "figures": figures, **MACHINE, "date": "d"}

    rows = [rates(32, 0.9), rates(128, 1.1), rates(128, 1.3)]  # the rerun at 128 replaces the first
    text = rendered(tmp_path, "throughput", "peers-throughput", rows, study="headline")
    assert "| ours / diffusers, the better precision of each |  |  | 0.90x |" in text
    assert "| at batch 128: ours / diffusers; the default / diffusers |  |  | 1.30x; 1.80x |" in text
    assert "1.10x" not in text


def test_the_profile_table_keeps_the_default_network_when_another_preset_was_profiled_later(tmp_path):
    def profiled(kind: str, op: str, **preset: str) -> dict:
        machine = {"commit": "abc", "dirty": False, "torch": "2", "device": "cpu", "cpu": "CPU", "threads": 1}
        top = [{"op": f"{op}{rank}", "share": 0.5, "ms_per_step": 10.0, "calls_per_step": 1.0} for rank in range(8)]
        return {"config": {"kind": kind, **preset}, "top": top, **machine, "date": "2026-12-06"}

    rows = [profiled("train", "aten::default_op"), profiled("sample", "aten::sampling_op")]
    rows.append(profiled("train", "aten::base_op", preset="base"))
    text = rendered(tmp_path, "profile", "speed-profile", rows, study="speed")
    assert "| `aten::default_op0` | 50% | 10.0 | `aten::sampling_op0` | 50% | 10.0 |" in text
    assert "base_op" not in text


def test_the_fused_norm_table_gives_the_layer_and_each_networks_step_from_the_newest_run(tmp_path):
    def row(part: str, figures: dict, **config) -> dict:
        return {"part": part, "config": config, "figures": figures, **MACHINE, "date": "2026-12-07"}

    layer = {"pytorch_nchw": 3.0, "pytorch_nhwc": 9.0, "kernel_nhwc": 2.0}
    rows = [row("step", {"without_img_s": 1.0, "with_img_s": 999.0, "largest_loss_difference": 0.5}, model="small")]
    rows += [row("layer", layer, shape=[32, 64, 28, 28]), row("call", {"without_ms": 40.0, "with_ms": 25.0}, images=64)]
    rows += [
        row(
            "step",
            {"without_img_s": 400.0, "with_img_s": 560.0, "largest_loss_difference": 0.0012},
            **{"model": "small", "batch_size": 32},
        )
    ]
    rows += [
        row(
            "step",
            {"without_img_s": 70.0, "with_img_s": 98.0, "largest_loss_difference": 0.003},
            **{"model": "base", "batch_size": 32},
        )
    ]
    text = rendered(tmp_path, "fused_norm", "fused-norm", rows, study="speed")
    assert "| 3.00 ms (NCHW); 9.00 ms (NHWC) | 2.00 ms | 1.50x |  |" in text
    assert "| training step, the default network, batch 32, images/s | 400 | 560 | 1.40x | 1.2e-03 |" in text
    assert "| training step, `--model base`, batch 32, images/s | 70 | 98 | 1.40x | 3.0e-03 |" in text
    assert "(sampling without a package) | 40.0 ms | 25.0 ms | 1.60x |  |" in text
    assert "999" not in text  # an older run of the same network


def test_the_weight_gradient_table_gives_each_shapes_newest_timings_as_multiples_of_its_forward_pass(tmp_path):
    def row(size: int, forward: float, onednn: float) -> dict:
        config = {"images": 128, "in_channels": 64, "size": size, "out_channels": 64, "per_step": 4}
        figures = {"forward_ms": forward, "input_gradient_ms": 0.8, "onednn_ms": onednn, "matrix_product_ms": 6.0,
                   "convolution_ms": 9.0}  # fmt: skip
        return {"part": "weight_gradient", "config": config, "figures": figures, **MACHINE, "date": "2026-12-07"}

    text = rendered(tmp_path, "weight_gradient", "weight-gradient", [row(14, 1.0, 99.0), row(14, 0.75, 2.4)], "speed")
    assert (
        "| 128 x 64 x 14 x 14 to 64 | 4 | 0.75 ms | 0.80 ms | 2.40 ms (3.2x) | 6.00 ms (8.0x) | 9.00 ms (12.0x) |"
        in text
    )
    assert "99" not in text  # the older record of the same shape


def test_the_kept_memory_table_gives_each_workloads_newest_steps_and_faults_under_both_policies(tmp_path):
    def row(workload: str, kind: str, size: int, system_ms: float) -> dict:
        figures = {"system": {"ms": system_ms, "faults": 28000.4}, "kept": {"ms": 250.0, "faults": 1.0},
                   "speedup": round(system_ms / 250.0, 2)}  # fmt: skip
        config = {"kind": kind, "size": size, "steps": 10, "rounds": 6}
        return {"workload": workload, "config": config, "figures": figures, **MACHINE, "date": "2026-12-07"}

    rows = [
        row("train-128", "train", 128, 999.0),
        row("sample-64", "sample", 64, 300.0),
        row("train-128", "train", 128, 275.0),
    ]
    text = rendered(tmp_path, "kept_memory", "kept-memory", rows, "speed")
    assert "| training step, batch 128 | 275.0 ms, 28,000 faults | 250.0 ms, 1 faults | 1.10x |" in text
    assert "| a sampling call on 64 images | 300.0 ms, 28,000 faults | 250.0 ms, 1 faults | 1.20x |" in text
    assert "999" not in text  # the older run of the same workload


def test_the_time_projections_table_gives_each_models_newest_workloads_both_ways(tmp_path):
    def row(model: str, workload: str, kind: str, size: int, per_block: float, difference: float | None) -> dict:
        figures = {"per_block": per_block, "stacked": 50.0, "speedup": round(per_block / 50.0, 3),
                   "max_difference": difference}  # fmt: skip
        config = {"model": model, "kind": kind, "size": size, "steps": 3, "repeats": 15}
        return {"workload": workload, "config": config, "figures": figures, **MACHINE, "date": "2026-12-07"}

    rows = [
        row("small", "train-32", "train", 32, 999.0, None),
        row("small", "sample-64", "sample", 64, 51.5, 0.0),
        row("base", "train-32", "train", 32, 52.0, None),
        row("small", "train-32", "train", 32, 51.0, None),
    ]
    text = rendered(tmp_path, "time_projections", "time-projections", rows, "speed")
    assert "| `small`, training step, batch 32 | 51.0 ms | 50.0 ms | 1.02x |  |" in text
    assert "| `small`, a sampling call on 64 images | 51.5 ms | 50.0 ms | 1.03x | 0 |" in text
    assert "| `base`, training step, batch 32 | 52.0 ms | 50.0 ms | 1.04x |  |" in text
    assert "999" not in text  # the older run of the same model and workload


def test_the_kernel_builds_table_gives_each_models_newest_workloads_with_both_kernels(tmp_path):
    def row(against: str, workload: str, kind: str, size: int, against_ms: float) -> dict:
        figures = {"against_ms": against_ms, "work_tree_ms": 50.0, "speedup": round(against_ms / 50.0, 3)}
        config = {"model": "small", "kind": kind, "size": size, "steps": 3, "repeats": 15}
        return {"against": against, "workload": workload, "config": config, "figures": figures, **MACHINE,
                "date": "2026-12-07"}  # fmt: skip

    rows = [
        row("old1", "train-32", "train", 32, 999.0),
        row("old1", "sample-64", "sample", 64, 54.0),
        row("old2", "train-32", "train", 32, 52.0),
        row("old1", "train-32", "train", 32, 51.0),
    ]
    text = rendered(tmp_path, "kernel_builds", "kernel-builds", rows, "speed")
    assert "| `small`, training step, batch 32 | `old1`: 51.0 ms | 50.0 ms | 1.02x |" in text
    assert "| `small`, a sampling call on 64 images | `old1`: 54.0 ms | 50.0 ms | 1.08x |" in text
    assert "| `small`, training step, batch 32 | `old2`: 52.0 ms | 50.0 ms | 1.04x |" in text
    assert "999" not in text  # the older run against the same commit


def test_the_sampling_table_gives_each_samplers_newest_run_the_better_precision_of_each_side(tmp_path):
    def row(sampler: str, ours_bf16: float) -> dict:
        figures = {"ours_fp32": 2.0, "ours_bf16": ours_bf16, "default_fp32": 1.5, "default_bf16": 0.4,
                   "diffusers_fp32": 2.4, "diffusers_bf16": 1.2, "speed_up": round(1.2 / ours_bf16, 3),
                   "default_speed_up": 3.0}  # fmt: skip
        config = {"num_images": 64, "attention": "none", "decoders": {"ours": "full", "default": "lean"}}
        return {"sampler": sampler, "config": config, "figures": figures, **MACHINE, "date": "2026-12-07"}

    rows = [row("DDIM-50", 9.0), row("DPM-Solver++-20", 0.6), row("DDIM-50", 0.5)]
    text = rendered(tmp_path, "sampling_speed", "peers-sampling", rows, "speed")
    assert "| DPM-Solver++-20 | 0.60 s | 1.20 s | 2.00x | 0.40 s | 3.00x |" in text
    assert "| DDIM-50 | 0.50 s | 1.20 s | 2.40x | 0.40 s | 3.00x |" in text
    assert "9.00" not in text  # the older run of the same sampler
