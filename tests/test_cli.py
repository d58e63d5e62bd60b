"""The command line end to end: every output file, resuming, stopping, and every bad input."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

import core
from core import NoiseSchedule
from ddpm_tui.cli import main


def run_cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    """The real program in a new process, as a user would run it."""
    return subprocess.run([sys.executable, "-m", "ddpm_tui", *args], capture_output=True, text=True, timeout=timeout)


def read_metrics(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def test_visualize_writes_the_grid_and_the_schedule_plot(tmp_path, capsys):
    out = tmp_path / "vis" / "forward.png"
    assert (
        main(["visualize", "--num-images", "3", "--timesteps", "100", "--schedule", "cosine", "--output", str(out)])
        == 0
    )
    assert out.stat().st_size > 0 and (out.parent / "noise_schedule.png").stat().st_size > 0
    rows = [line.split("│")[1:-1] for line in capsys.readouterr().out.splitlines() if line.startswith("│")]
    rows = [[cell.strip() for cell in row] for row in rows if row[0].strip().isdigit()]
    assert [int(row[0]) for row in rows] == [0, 5, 10, 25, 50, 75, 99]
    schedule = NoiseSchedule.create("cosine", 100)
    for row in rows:
        assert float(row[2]) == pytest.approx(schedule.alpha_bars[int(row[0])].item(), abs=1e-4)


def test_train_writes_every_file(tiny_run):
    for name in (
        "model_final.pt",
        "checkpoint.pt",
        "training_loss.png",
        "metrics.jsonl",
        "config.json",
        "samples/epoch_001.png",
    ):
        assert (tiny_run / name).stat().st_size > 0, name
    records = read_metrics(tiny_run)
    steps = [r for r in records if r["kind"] == "step"]
    assert [r["step"] for r in steps] == [1, 2]
    assert {"step", "epoch", "loss", "lr", "images_per_sec", "elapsed"} <= steps[0].keys()
    assert records[-1]["kind"] == "epoch" and records[-1]["epoch"] == 1
    assert 0 <= records[-1]["recognised"] <= 1 and 0 <= records[-1]["class_entropy"] <= 1  # the previews, rated
    config = json.loads((tiny_run / "config.json").read_text())
    assert config["timesteps"] == 20 and config["base_channels"] == 8
    final = torch.load(tiny_run / "model_final.pt", weights_only=True)
    assert "optimizer" not in final and final["config"]["timesteps"] == 20


def sample(run: Path, *flags: str) -> int:
    """``ddpm-tui sample`` on ``run``'s checkpoint, in this process; its exit status."""
    return main(["sample", "--checkpoint", str(run / "model_final.pt"), *flags])


def test_sample_with_intermediate_frames_and_export(tiny_run, tmp_path):
    out = tmp_path / "s" / "samples.png"
    flags = ["--num_images", "4", "--output", str(out), "--show_intermediate", "--export_dir", str(tmp_path / "png")]
    assert sample(tiny_run, *flags) == 0
    assert out.exists()
    frames = sorted((out.parent / "intermediate").glob("step_*.png"))
    assert len(frames) == 20 and (out.parent / "intermediate" / "step_0000.png") in frames
    assert (out.parent / "intermediate" / "denoising.gif").stat().st_size > 0
    assert sorted(p.name for p in (tmp_path / "png").iterdir()) == ["0000.png", "0001.png", "0002.png", "0003.png"]
    from PIL import Image

    assert Image.open(tmp_path / "png" / "0000.png").size == (28, 28)


def test_ddim_sampling_is_reproducible(tiny_run, tmp_path):
    paths = [tmp_path / f"{i}.png" for i in range(2)]
    for p in paths:
        assert sample(tiny_run, "--num_images", "2", "--sampler", "ddim", "--steps", "5", "--output", str(p)) == 0
    assert paths[0].read_bytes() == paths[1].read_bytes()


def test_resume_continues_the_step_count_and_the_loss_curve(tiny_train_args, tmp_path):
    run = tmp_path / "run"
    assert main(["train", *tiny_train_args, "--output_dir", str(run)]) == 0
    first = read_metrics(run)
    assert main(["train", "--resume", str(run / "checkpoint.pt"), "--epochs", "2"]) == 0
    records = read_metrics(run)
    assert records[: len(first)] == first
    assert [r["step"] for r in records if r["kind"] == "step"] == [1, 2, 3, 4]
    state = torch.load(run / "checkpoint.pt", weights_only=True)
    assert state["step"] == 4 and state["epoch"] == 2 and len(state["losses"]) == 4
    assert (run / "samples" / "epoch_002.png").exists()


@pytest.mark.parametrize("optimiser", ["muon", "adamw"])
def test_resume_is_exact(tmp_path, optimiser):
    straight, split = tmp_path / "straight", tmp_path / "split"
    args = [
        "--optimiser",
        optimiser,
        "--batch_size",
        "16",
        "--max_images",
        "32",
        "--timesteps",
        "20",
        "--base_channels",
        "8",
        "--precision",
        "fp32",
    ]
    assert main(["train", *args, "--epochs", "2", "--output_dir", str(straight)]) == 0
    assert main(["train", *args, "--epochs", "1", "--output_dir", str(split)]) == 0
    assert main(["train", "--resume", str(split / "checkpoint.pt"), "--epochs", "2"]) == 0
    a = torch.load(straight / "checkpoint.pt", weights_only=True)
    b = torch.load(split / "checkpoint.pt", weights_only=True)
    torch.testing.assert_close(a["losses"], b["losses"])
    for key in a["model"]:
        torch.testing.assert_close(a["model"][key], b["model"][key])
    assert ("muon" in a) == (optimiser == "muon")  # Muon's momentum is saved, so the resumed steps match


def test_ctrl_c_saves_a_checkpoint_and_prints_how_to_resume(start_training, tmp_path):
    run = tmp_path / "run"
    proc = start_training(run, "--epochs", "50", "--batch_size", "16", stdout=subprocess.PIPE)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline and not (run / "checkpoint.pt").exists():
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert f"ddpm-tui train --resume {run / 'checkpoint.pt'}" in out.replace("\n", "")
    assert "Traceback" not in err
    state = torch.load(run / "checkpoint.pt", weights_only=True)
    assert state["step"] == len(state["losses"]) > 0
    steps = [r["step"] for r in read_metrics(run) if r["kind"] == "step"]
    assert steps == list(range(1, state["step"] + 1))


def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(tiny_train_args, tmp_path, monkeypatch, capsys):
    run = tmp_path / "run"
    assert main(["train", *tiny_train_args, "--output_dir", str(run)]) == 0
    before = (run / "checkpoint.pt").read_bytes()
    import core.trainer

    monkeypatch.setattr(
        core.trainer, "example_losses", lambda *a, **k: torch.tensor([float("nan")], requires_grad=True)
    )
    assert main(["train", "--resume", str(run / "checkpoint.pt"), "--epochs", "2"]) == 1
    assert "loss became nan" in capsys.readouterr().err
    assert (run / "checkpoint.pt").read_bytes() == before


class RunsCode:
    """Unpickling this would run a shell command."""

    def __reduce__(self):
        return (os.system, ("touch ddpm-tui-was-pwned",))


@pytest.fixture(scope="module")
def bad_files(tmp_path_factory, tiny_run) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("bad")
    truncated = folder / "truncated.pt"
    truncated.write_bytes((tiny_run / "model_final.pt").read_bytes()[:2048])
    foreign = folder / "foreign.pt"
    torch.save({"weights": torch.zeros(3)}, foreign)
    evil = folder / "evil.pt"
    torch.save({"format": "ddpm-tui", "model": RunsCode()}, evil)
    a_file = folder / "a_file"
    a_file.write_text("x")
    return {
        "truncated": truncated,
        "foreign": foreign,
        "evil": evil,
        "a_file": a_file,
        "missing": folder / "missing.pt",
        "model": tiny_run / "model_final.pt",
        "empty_dir": folder,
    }


BAD_INPUTS = [
    (["sample", "--checkpoint", "{missing}"], "checkpoint not found"),
    (["sample", "--checkpoint", "{truncated}"], "corrupt or truncated"),
    (["sample", "--checkpoint", "{foreign}"], "not a ddpm-tui checkpoint"),
    (["sample", "--checkpoint", "{evil}"], "refused"),
    (["sample", "--checkpoint", "{model}", "--steps", "21", "--sampler", "ddim"], "more than the model's T = 20"),
    (["sample", "--checkpoint", "{model}", "--num_images", "0"], "--num_images: must be a positive integer"),
    (["sample", "--checkpoint", "{model}", "--output", "{a_file}/x.png"], "cannot write"),
    (["train", "--epochs", "0"], "--epochs: must be a positive integer"),
    (["train", "--batch_size", "-5"], "--batch_size: must be a positive integer"),
    (["train", "--lr", "0"], "--lr: must be positive"),
    (["train", "--timesteps", "1"], "--timesteps: must be at least 2"),
    (["train", "--dataset", "imagenet"], "invalid choice: 'imagenet'"),
    (["train", "--output_dir", "{a_file}/run"], "cannot write to output folder"),
    (["train", "--data_dir", "{empty_dir}"], "has no train-images-idx3-ubyte"),
    (["train", "--resume", "{model}"], "holds only final weights"),
    (["train", "--epochs", "ten"], "expected an integer"),
    (["watch", "{missing}"], "no run folder at"),
    (["watch", "{empty_dir}"], "holds no training run"),
    (["eval", "--checkpoint", "{foreign}"], "not a ddpm-tui checkpoint"),
    (["eval", "--images", "{empty_dir}"], "no .png images in"),
    (["compare", "{empty_dir}"], "has no model_final.pt"),
    (["sample", "--checkpoint", "{model}", "--class_label", "shoe"], "trained without class labels"),
    (["sample", "--checkpoint", "{model}", "--guidance_scale", "-1"], "--guidance_scale: must be 0"),
    (["sample", "--checkpoint", "{model}", "--sampler", "dpm++", "--steps", "30"], "more than the model's T = 20"),
    (["sample", "--checkpoint", "{model}", "--eta", "1"], "eta applies to ddim and dpm\\+\\+sde only, not to ddpm"),
    (["eval", "--checkpoint", "{model}", "--eta", "-1"], "--eta: must be 0 or more"),
    (["train", "--model", "huge"], "invalid choice: 'huge'"),
    (["train", "--dataset", "cifar10", "--data_dir", "{empty_dir}"], "has no data_batch_1"),
    (["eval", "--images", "{empty_dir}", "--dataset", "folder"], "--dataset folder needs --data_dir"),
    (["inspect", "--checkpoint", "{missing}"], "checkpoint not found"),
    (["inspect", "--checkpoint", "{foreign}"], "not a ddpm-tui checkpoint"),
    (["inspect", "--checkpoint", "{model}", "--t", "5", "20"], "--t 20 is outside this model's 0..19"),
    (["inspect", "--checkpoint", "{model}", "--t", "-1"], "--t: must be a timestep"),
    (["inspect", "--checkpoint", "{model}", "--num_images", "0"], "--num_images: must be a positive integer"),
    (["inspect", "--checkpoint", "{model}", "--t", "5", "--num_images", "99999"], "ask for 1 to that many"),
    (["inspect", "--checkpoint", "{model}", "--t", "5", "--output", "{a_file}/x.png"], "cannot write"),
]


@pytest.mark.parametrize("argv,message", BAD_INPUTS, ids=[" ".join(a[:3]) for a, _ in BAD_INPUTS])
def test_bad_input_is_one_line_and_exit_2(argv, message, bad_files, capsys):
    argv = [a.format(**bad_files) for a in argv]
    with pytest.raises(SystemExit) as exited:
        raise SystemExit(main(argv))
    assert exited.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert re.search(message, err), err


def test_bad_input_through_a_real_process_has_no_traceback(bad_files):
    result = run_cli("sample", "--checkpoint", str(bad_files["truncated"]))
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert "corrupt or truncated" in result.stderr


def test_dashed_and_underscored_flags_are_the_same():
    from ddpm_tui.cli import build_parser

    parser = build_parser()
    a = parser.parse_args(["train", "--batch_size", "7", "--base-channels", "16"])
    b = parser.parse_args(["train", "--batch-size", "7", "--base_channels", "16"])
    assert (a.batch_size, a.base_channels) == (b.batch_size, b.base_channels) == (7, 16)


def test_model_preset_and_an_explicit_width_combine():
    from ddpm_tui.cli import build_parser
    from ddpm_tui.flags import setting_overrides

    parser = build_parser()
    assert setting_overrides(parser.parse_args(["train", "--model", "base"])) == {
        "base_channels": 64,
        "channel_mults": (1, 2, 2),
        "num_res_blocks": 2,
        "attention": "lowest",
        "decoder": "full",
    }
    given = setting_overrides(parser.parse_args(["train", "--model", "small", "--decoder", "full"]))
    assert given["decoder"] == "full" and given["base_channels"] == 32
    given = setting_overrides(parser.parse_args(["train", "--model", "large", "--base_channels", "96"]))
    assert given["base_channels"] == 96 and given["num_res_blocks"] == 2
    given = setting_overrides(parser.parse_args(["train", "--model", "base", "--attention", "none"]))
    assert given["attention"] == "none" and given["base_channels"] == 64
    assert setting_overrides(parser.parse_args(["train"])) == {}


def test_every_training_setting_is_a_flag_with_the_configs_default_in_its_help():
    from dataclasses import fields

    from ddpm_tui.cli import build_parser

    help_text = " ".join(build_parser()._subparsers._group_actions[0].choices["train"].format_help().split())
    for spec in fields(core.TrainConfig):
        assert f"--{spec.name}" in help_text, spec.name
    assert "(default 32)" in help_text and "(default cosine)" in help_text


def test_each_sampling_command_names_its_own_default_sampler_in_its_help():
    from ddpm_tui.cli import build_parser

    commands = build_parser()._subparsers._group_actions[0].choices
    for command, default in (("sample", "ddpm"), ("eval", core.FAST_SAMPLER)):
        help_text = " ".join(commands[command].format_help().split())
        assert f"deterministic (default {default})" in help_text, command
        assert commands[command].get_default("sampler") == default


def test_starting_a_command_or_the_app_leaves_torchvision_unloaded_until_an_image_is_written():
    """Importing torchvision loads all its models and operators (seconds on a small CPU); only writing an
    image needs it, so every command and the app start without it."""
    check = "import sys, ddpm_tui.cli, ddpm_tui.app; print('torchvision' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", check], capture_output=True, text=True).stdout.strip() == "False"
