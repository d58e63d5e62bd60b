"""The app driven like a user: Pilot key presses, real training processes, files on disk."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest
import torch

import core
from ddpm_tui.app import DdpmApp, TooSmallScreen
from ddpm_tui.screens.help import HelpScreen
from ddpm_tui.screens.model import ModelScreen
from ddpm_tui.screens.noise import NoiseScreen
from ddpm_tui.screens.sample import SampleScreen
from ddpm_tui.screens.train import TrainScreen

TINY = {"epochs": "1", "batch_size": "16", "max_images": "32", "timesteps": "20", "base_channels": "8"}


async def wait_until(pilot, predicate, timeout: float = 120.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        await pilot.pause(0.1)
    raise AssertionError(f"timed out waiting for {what}")


async def test_noise_screen_keys_move_t_and_show_the_cores_alpha_bar():
    app = DdpmApp()
    async with app.run_test(size=(100, 32)) as pilot:
        screen = app.screen
        assert isinstance(screen, NoiseScreen) and screen.t == 0
        await pilot.press("right", "right", "shift+right")
        assert screen.t == 52
        expected = core.NoiseSchedule.create(core.TrainConfig().schedule, 1000).alpha_bars[52].item()
        assert screen.alpha_bar == pytest.approx(expected)
        assert f"ᾱ_t = {expected:.4f}" in str(screen.query_one("#equation").render())
        await pilot.press("end")
        assert screen.t == 999
        await pilot.press("left", "home")
        assert screen.t == 0
        await pilot.press("s", "shift+right")  # the other schedule
        linear = core.NoiseSchedule.create("linear", 1000).alpha_bars[50].item()
        assert screen.schedule.name == "linear" and screen.alpha_bar == pytest.approx(linear)
        await pilot.press("d")
        assert screen.dataset == "fashion_mnist"
        await pilot.press("p")
        await pilot.pause(0.3)
        assert screen.t > 50
        await pilot.press("p")


async def test_modes_help_and_too_small(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    app = DdpmApp()
    async with app.run_test(size=(100, 32)) as pilot:
        await pilot.press("2")
        assert isinstance(app.screen, TrainScreen)
        await pilot.press("3")
        assert isinstance(app.screen, SampleScreen)
        assert "No checkpoint yet" in app.screen.query_one("#sample-explanation").source
        await pilot.press("1", "question_mark")
        assert isinstance(app.screen, HelpScreen) and "shift+right" in app.screen.text
        await pilot.press("escape")
        assert isinstance(app.screen, NoiseScreen)
        await pilot.resize_terminal(60, 20)
        await pilot.pause()
        assert isinstance(app.screen, TooSmallScreen)
        await pilot.resize_terminal(80, 24)
        await pilot.pause()
        assert isinstance(app.screen, NoiseScreen)


async def test_invalid_form_values_disable_start(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    app = DdpmApp(mode="train")
    async with app.run_test(size=(100, 32)) as pilot:
        screen = app.screen
        screen.query_one("#epochs").value = "0"
        await pilot.pause()
        assert screen.query_one("#start").disabled
        assert "epochs must be a positive integer" in str(screen.query_one("#form-message").render())
        screen.query_one("#epochs").value = "3"
        screen.query_one("#base_channels").value = "12"
        await pilot.pause()
        assert "multiple of 8" in str(screen.query_one("#form-message").render())
        screen.query_one("#base_channels").value = "16"
        await pilot.pause()
        assert not screen.query_one("#start").disabled


async def test_training_started_from_the_app_runs_as_its_own_process(tmp_path):
    run = tmp_path / "run"
    app = DdpmApp(mode="train", output_dir=str(run), train_defaults=TINY)
    async with app.run_test(size=(100, 32)) as pilot:
        screen = app.screen
        screen.query_one("#epochs").focus()  # typing in the form, then starting
        await pilot.press("ctrl+s")
        await pilot.pause(0.3)
        assert screen.query_one("TabbedContent").active == "dashboard" and screen.query_one("#dashboard").display
        await wait_until(
            pilot, lambda: screen.status is not None and screen.status.state == "finished", what="the run to finish"
        )
        assert screen.loss_chart.steps == [1, 2] and len(screen.loss_chart.losses) == 2
        assert screen.config["parameters"] > 0
        await wait_until(pilot, lambda: (run / "samples" / "epoch_001.png").exists(), what="samples")
    for name in ("model_final.pt", "checkpoint.pt", "metrics.jsonl", "status.json", "train.log"):
        assert (run / name).exists(), name


def start_training(command: list[str]) -> subprocess.Popen:
    """A training process detached as the app starts them (``command`` from the ``train_command`` fixture)."""
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)


async def test_pause_resume_stop_and_quitting_leaves_the_run_going(tmp_path):
    run = tmp_path / "run"
    app = DdpmApp(mode="train", output_dir=str(run), train_defaults={**TINY, "epochs": "400", "batch_size": "8"})
    async with app.run_test(size=(100, 32)) as pilot:
        screen = app.screen
        await pilot.press("ctrl+s")
        await wait_until(
            pilot,
            lambda: screen.status is not None and screen.status.state == "running" and len(screen.loss_chart.steps) > 2,
            what="running",
        )
        pid, process = screen.status.pid, screen.process
        assert os.getsid(pid) == pid  # its own session: closing the terminal does not reach it
        await pilot.press("f6")
        await wait_until(pilot, lambda: screen.status.state == "paused", what="paused")
        await pilot.press("f6")
        await wait_until(pilot, lambda: screen.status.state == "running", what="resumed")
        await pilot.press("q")
        await pilot.pause()
        await pilot.click("#leave")
    await asyncio.sleep(1.0)
    status = core.read_status(run)
    assert status.active and status.pid == pid  # the app is gone, the run goes on
    core.send_request(run, "stop")
    assert process.popen.wait(timeout=60) == 130  # reaped here only because the test process is its parent
    assert core.read_status(run).state == "stopped"


async def test_reopening_attaches_to_a_running_run_with_its_history(train_command, tmp_path):
    run = tmp_path / "run"
    proc = start_training(train_command(run, "--epochs", "400", "--batch_size", "8"))
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and not ((s := core.read_status(run)) and s.step >= 5):
            await asyncio.sleep(0.2)
        app = DdpmApp(watch=str(run))
        async with app.run_test(size=(100, 32)) as pilot:
            screen = app.screen
            assert isinstance(screen, TrainScreen)
            await wait_until(pilot, lambda: len(screen.loss_chart.steps) >= 5, what="history")
            assert screen.loss_chart.steps[:5] == [1, 2, 3, 4, 5]
            seen = len(screen.loss_chart.steps)
            await wait_until(pilot, lambda: len(screen.loss_chart.steps) > seen + 3, what="live steps")
            await pilot.press("f7")
            await wait_until(pilot, lambda: screen.status.state == "stopped", what="stopped")
            assert screen.loss_chart.steps == sorted(set(screen.loss_chart.steps))
    finally:
        proc.wait(timeout=60)


def sample_app(run: Path, output_dir: Path, num_images: int, steps: int) -> DdpmApp:
    """The app on its Sample screen, its form filled in for ``run``'s checkpoint."""
    defaults = {"checkpoint": str(run / "model_final.pt"), "num_images": str(num_images), "steps": str(steps)}
    return DdpmApp(mode="sample", output_dir=str(output_dir), sample_defaults=defaults)


async def generate(pilot) -> SampleScreen:
    """Press f5 on the Sample screen and wait for the images; the screen."""
    screen = pilot.app.screen
    await pilot.press("f5")
    await wait_until(pilot, lambda: screen.images is not None, what="sampling")
    return screen


async def test_sampling_scrubbing_and_exporting(tiny_run, tmp_path, monkeypatch):
    built = []

    class CountedEvaluator(core.Evaluator):
        def __init__(self, classifier) -> None:
            built.append(classifier.dataset)
            super().__init__(classifier)

    monkeypatch.setattr(core, "Evaluator", CountedEvaluator)
    app = sample_app(tiny_run, tmp_path, 4, 10)
    async with app.run_test(size=(100, 32)) as pilot:
        screen = await generate(pilot)
        assert screen.frames[-1].t == 0 and len(screen.frames) == 10
        await pilot.press("escape", "left", "left")
        assert screen.position == len(screen.frames) - 3
        assert f"t = {screen.frames[screen.position].t}" in str(screen.query_one("#sample-status").render())
        await pilot.press("e")
        folder = screen.exported
        await pilot.press("v")
        await wait_until(pilot, lambda: screen.scores is not None, what="scores")
        assert screen.scores.count == 4 and 0.0 <= screen.scores.recognised <= 1.0
        screen.scores = None
        await pilot.press("v")  # scoring again reuses the reference features of the first time
        await wait_until(pilot, lambda: screen.scores is not None, what="scores again")
        assert built == ["mnist"]
        assert (folder / "samples.png").exists() and (folder / "denoising.gif").exists()
        assert sorted(p.name for p in (folder / "images").iterdir()) == [f"{i:04d}.png" for i in range(4)]


async def test_quitting_while_sampling_asks_first(tiny_run, tmp_path):
    app = sample_app(tiny_run, tmp_path, 64, 20)
    async with app.run_test(size=(100, 32)) as pilot:
        app.screen.sampling = True  # as while a long sampling run is going
        await pilot.press("q")
        await pilot.pause()
        assert "Sampling is still running" in str(app.screen.query_one("#quit-question").render())
        await pilot.click("#cancel")
        await pilot.pause()
        assert isinstance(app.screen, SampleScreen) and app.is_running


async def test_a_corrupt_checkpoint_is_a_notification_not_a_crash(tmp_path):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"garbage")
    app = DdpmApp(mode="sample", output_dir=str(tmp_path), sample_defaults={"checkpoint": str(bad)})
    async with app.run_test(size=(100, 32)) as pilot:
        await pilot.press("f5")
        await wait_until(pilot, lambda: not app.screen.sampling, what="failure")
        assert any("corrupt or truncated" in n.message for n in app._notifications)


async def test_a_failed_run_shows_its_error_and_the_app_stays_up(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "status.json").write_text(
        '{"pid": 999999, "state": "failed", "step": 3, "epoch": 0, '
        '"heartbeat": 0.0, "error": "the loss became nan at step 4"}'
    )
    app = DdpmApp(watch=str(run))
    async with app.run_test(size=(100, 32)) as pilot:
        screen = app.screen
        await wait_until(pilot, lambda: screen.status is not None, what="status")
        panel = screen.query_one("#run-error")
        assert panel.display and "the loss became nan at step 4" in str(panel.render())
        await pilot.press("1")
        assert isinstance(app.screen, NoiseScreen)


async def test_sampler_choice_sets_its_own_step_count_and_fresh_noise(tiny_run, tmp_path, monkeypatch):
    from textual.widgets import Input, Select

    app = DdpmApp(
        mode="sample", output_dir=str(tmp_path), sample_defaults={"checkpoint": str(tiny_run / "model_final.pt")}
    )
    async with app.run_test(size=(100, 32)) as pilot:
        steps, sampler = app.screen.query_one("#steps", Input), app.screen.query_one("#sampler", Select)
        eta = app.screen.query_one("#eta", Input)
        default = core.DEFAULT_STEPS[core.FAST_SAMPLER]
        assert sampler.value == core.FAST_SAMPLER and steps.value == ""
        assert steps.placeholder == f"{default} (fewer autoguided, same calls)"
        assert eta.placeholder == f"{core.DEFAULT_ETA[core.FAST_SAMPLER]:g}" and not eta.disabled
        steps.value, eta.value = "7", "0.9"
        sampler.value = "ddim"
        await pilot.pause()
        assert steps.value == "" and steps.placeholder.startswith("50 ") and not steps.disabled
        assert eta.value == "" and eta.placeholder == "0" and not eta.disabled
        sampler.value = "ddpm"
        await pilot.pause()
        assert steps.disabled and eta.disabled
        sampler.value = "dpm++sde"
        await pilot.pause()
        planned = []
        real_plan = core.plan_sampling
        monkeypatch.setattr(core, "plan_sampling", lambda *a, **k: planned.append(a[-1]) or real_plan(*a, **k))
        steps.value, eta.value = "3", "0.25"
        await pilot.press("f5")
        await wait_until(pilot, lambda: app.screen.images is not None, what="sampling")
        assert planned == [0.25]  # the box's eta reaches the core's plan


async def test_conditional_sampling_uses_the_class_and_guidance(tiny_conditional_run, tmp_path, monkeypatch):
    calls = []
    real_guided = core.sampling.guided

    def spy(model, labels, scale, null_class):
        calls.append((labels.tolist(), scale))
        return real_guided(model, labels, scale, null_class)

    monkeypatch.setattr(core.sampling, "guided", spy)
    app = DdpmApp(
        mode="sample",
        output_dir=str(tmp_path),
        sample_defaults={
            "checkpoint": str(tiny_conditional_run / "model_final.pt"),
            "num_images": "4",
            "steps": "5",
            "class_label": "7",
            "guidance_scale": "2.5",
        },
    )
    async with app.run_test(size=(100, 32)) as pilot:
        screen = app.screen
        await pilot.press("f5")
        await wait_until(pilot, lambda: screen.images is not None, what="sampling")
        assert calls == [([7, 7, 7, 7], 2.5)]
        assert f"{core.FAST_SAMPLER} step 5/5" in str(screen.query_one("#sample-status").render())
        assert "s" in str(screen.query_one("#sample-status").render()).split()[-1]  # seconds taken


async def test_train_form_conditional_switch_follows_the_dataset_and_adds_the_flag(tmp_path):
    from textual.widgets import Select, Switch

    app = DdpmApp(mode="train", output_dir=str(tmp_path))
    async with app.run_test(size=(100, 32)) as pilot:
        screen = app.screen
        switch = screen.query_one("#conditional", Switch)
        assert "--no-conditional" in screen.form_args() and not switch.value
        switch.value = True
        await pilot.pause()
        assert "--conditional" in screen.form_args()
        screen.query_one("#dataset", Select).value = "fashion_mnist"
        await pilot.pause()
        assert switch.value and "--conditional" in screen.form_args()  # clothes train conditionally by default
        screen.query_one("#dataset", Select).value = "mnist"
        await pilot.pause()
        assert not switch.value


async def test_train_form_passes_the_chosen_optimiser(tmp_path):
    from textual.widgets import Select

    app = DdpmApp(mode="train", output_dir=str(tmp_path))
    async with app.run_test(size=(100, 32)) as pilot:
        screen = app.screen
        args = screen.form_args()
        assert args[args.index("--optimiser") + 1] == core.TrainConfig().optimiser
        screen.query_one("#optimiser", Select).value = "adamw"
        await pilot.pause()
        args = screen.form_args()
        assert args[args.index("--optimiser") + 1] == "adamw"


async def test_noise_screen_skips_a_dataset_it_cannot_load():
    app = DdpmApp()
    async with app.run_test(size=(100, 32)) as pilot:
        screen = app.screen
        await pilot.press("d")
        assert screen.dataset == "fashion_mnist"
        await pilot.press("d")  # cifar10: not bundled, and this machine has no copy
        await pilot.pause()
        if "cifar10" in screen.unavailable:
            assert screen.dataset == "mnist"
            assert any("cifar-10-python.tar.gz" in n.message for n in app._notifications)
        else:
            assert screen.dataset == "cifar10" and screen.x0.shape[1] == 3


async def test_the_dashboard_charts_each_epochs_preview_quality(tiny_run, tmp_path):
    from ddpm_tui.widgets import QualityChart

    app = DdpmApp(watch=str(tiny_run))
    async with app.run_test(size=(100, 32)) as pilot:
        chart = app.screen.query_one(QualityChart)
        await wait_until(pilot, lambda: chart.epochs == [1], what="the epoch's rating")
        rated = [json.loads(line) for line in (tiny_run / "metrics.jsonl").read_text().splitlines()][-1]
        assert chart.recognised == [100 * rated["recognised"]] and chart.available

    unrated = QualityChart()  # a dataset without a classifier writes previews without ratings
    unrated.add_epoch({"kind": "epoch", "epoch": 1, "samples": "samples/epoch_001.png", "recognised": None})
    assert not unrated.available and unrated.epochs == []

    one_digit = QualityChart()  # an untrained network's blobs, all confidently one digit
    one_digit.add_epoch({"kind": "epoch", "epoch": 1, "recognised": 0.83, "class_entropy": 0.0})
    assert "one class" in one_digit.title()
    one_digit.add_epoch({"kind": "epoch", "epoch": 2, "recognised": 0.6, "class_entropy": 0.95})
    assert one_digit.title() == "preview quality"


async def test_model_screen_keys_tell_a_wrong_t_and_cut_the_skips(tiny_run):
    app = DdpmApp(mode="model", output_dir=str(tiny_run))
    async with app.run_test(size=(100, 32)) as pilot:
        screen = app.screen
        assert isinstance(screen, ModelScreen)
        await wait_until(pilot, lambda: screen.look is not None and screen.profiles, what="the first look")
        T = screen.timesteps
        assert T == 20 and screen.t == T - 1  # clamped into the model's 0..T-1
        await pilot.press("left", "left")
        await wait_until(pilot, lambda: screen.look.right.t == T - 3, what="t moved")
        look = screen.look
        expected = core.predict(screen.loaded.model, screen.loaded.schedule, screen.x0, T - 3, screen.eps)
        assert look.right.mse_eps == pytest.approx(expected.mse_eps, rel=0.05)
        assert f"MSE(ε_hat, ε) = {look.told.mse_eps:.4f}" in str(screen.query_one("#model-numbers").render())
        assert len(look.sweep) == T  # every t the model could be told
        await pilot.press("left_square_bracket")
        await wait_until(pilot, lambda: screen.look.told.t_model == 0, what="a wrong t")
        assert screen.look.right.t == T - 3
        await pilot.press("equals_sign", "k")
        await wait_until(pilot, lambda: screen.look.cut is not None, what="skips cut")
        assert screen.look.told.t_model == T - 3 and screen.loaded.model.network.skips_on
        assert "skips cut" in str(screen.query_one("#model-numbers").render())
        before = screen.x0.clone()
        await pilot.press("r", "v", "v")
        assert not torch.equal(screen.x0, before)
        assert screen.query_one("#model-views").active == "view-skips"
        structure = str(screen.query_one("#structure").render())
        assert structure.startswith("28x28") and "parameters in all" in structure


async def test_model_screen_without_checkpoints_shows_how_to_get_one(tmp_path):
    app = DdpmApp(output_dir=str(tmp_path))
    async with app.run_test(size=(100, 32)) as pilot:
        await pilot.press("4")
        await pilot.pause(0.5)
        screen = app.screen
        assert isinstance(screen, ModelScreen) and screen.loaded is None
        assert "No checkpoint yet" in screen.query_one("#noise-text").source


def test_no_label_holds_a_combining_character():
    """A combining accent (x̂ written as x + U+0302) is a cell of its own in some terminals, which shifts the
    rest of the line; every label is written in characters whose width Rich measures as one cell each."""
    import unicodedata

    from rich.cells import cell_len

    import ddpm_tui

    sources = [*Path(ddpm_tui.__file__).parent.rglob("*.py"), Path(core.__file__).parent / "inspect.py"]
    for path in sources:
        combining = sorted({c for c in path.read_text() if unicodedata.combining(c)})
        assert not combining, f"{path} holds combining characters {combining}"
    for label in core.PANELS:
        assert cell_len(label) == len(label), label


async def test_the_sample_form_disables_what_the_checkpoint_cannot_use(tiny_run, tiny_conditional_run, tmp_path):
    from textual.widgets import Input, Select

    from ddpm_tui.screens.sample import AUTOGUIDANCE_PLACEHOLDER

    app = sample_app(tiny_run, tmp_path, 4, 5)
    async with app.run_test(size=(100, 32)) as pilot:
        screen = app.screen
        guidance, autoguidance = screen.query_one("#guidance_scale", Input), screen.query_one("#autoguidance", Input)
        classes = screen.query_one("#class_label", Select)
        await wait_until(pilot, lambda: guidance.disabled, what="the unconditional checkpoint's traits")
        assert guidance.value == "" and guidance.placeholder == "this model has no classes" and classes.disabled
        guided = core.checkpoint_traits(tiny_run / "model_final.pt").guided
        assert autoguidance.disabled == (not guided)
        assert autoguidance.placeholder == (AUTOGUIDANCE_PLACEHOLDER if guided else "this model kept no guide")
        screen.query_one("#checkpoint", Input).value = str(tiny_conditional_run / "model_final.pt")
        await wait_until(pilot, lambda: not guidance.disabled, what="the conditional checkpoint's traits")
        assert guidance.value == f"{core.default_guidance('mnist'):g}" and not classes.disabled


def drawn_lines(chart) -> list[str]:
    """The chart as plotext lays it out, one string per row, without colour codes."""
    import re

    return [re.sub(r"\x1b\[[0-9;]*m", "", line) for line in chart.plt.build().splitlines()]


async def test_no_chart_draws_a_legend_over_its_curves():
    """Curve names stand in each chart's title row or the row under its axis, never inside the plot where
    plotext's legend box would cover the data (on the Noise screen, alpha_bar_t between t = 0 and 200)."""
    from textual_plotext import PlotextPlot

    from ddpm_tui.widgets import LossChart, QualityChart

    app = DdpmApp()
    async with app.run_test(size=(80, 24)) as pilot:
        charts = {"schedule": (app.screen.query_one(PlotextPlot), ["ᾱ_t", "β_t"])}
        await pilot.press("2")
        await pilot.pause()
        loss, quality = app.screen.query_one(LossChart), app.screen.query_one(QualityChart)
        loss.add_steps([{"step": s, "loss": 1 / s} for s in range(1, 50)])
        for epoch in (1, 2, 3):
            quality.add_epoch({"epoch": epoch, "recognised": 0.2 * epoch, "class_entropy": 0.9, "samples": "x"})
        charts.update(loss=(loss, ["loss", "smoothed"]), quality=(quality, ["recognised", "entropy"]))
        for what, (chart, names) in charts.items():
            chart.draw() if what != "schedule" else app.opened["noise"].draw_chart()
            lines = drawn_lines(chart)
            for name in names:
                assert name in lines[0] or name in lines[-1], f"the {what} chart does not name {name!r}"
                assert not any(name in line for line in lines[1:-1]), f"{name!r} is drawn inside the {what} chart"


async def test_at_80x24_the_sample_screen_folds_its_form_and_fits_the_images(tiny_run, tmp_path):
    from textual.widgets import Label

    from ddpm_tui.widgets import HalfBlockImage

    app = sample_app(tiny_run, tmp_path, 16, 5)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await generate(pilot)
        await pilot.pause()
        assert not screen.query_one("#sample-form").display and screen.query_one("#sample-summary").display
        image = screen.query_one("#x-t", HalfBlockImage)
        side = 28 // image.shrink
        rows = (image.pixels.shape[0] + 1) // (side + 1)
        assert image.columns * rows >= 8
        assert image.region.bottom <= app.size.height - 1  # above the footer: every row of images is on screen
        title = str(screen.query_one("#x-t-title", Label).render())
        assert title == "x_t" if image.columns * rows >= 16 else "showing" in title
        await pilot.press("f2")
        await pilot.pause()
        assert screen.query_one("#sample-form").display


async def test_the_edit_screen_inverts_interpolates_and_inpaints(tiny_run):
    from ddpm_tui.screens.edit import EditScreen

    app = DdpmApp(output_dir=str(tiny_run))
    async with app.run_test(size=(100, 40)) as pilot:
        await pilot.press("5")
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, EditScreen)
        text = screen.query_one("#edit-text")
        for key, says in (("i", "closer"), ("l", "mid-point"), ("p", "come back exactly")):
            await pilot.press(key, "f5")
            await wait_until(pilot, lambda: not screen.running, what=f"the {screen.mode} edit")
            assert says in text.source, screen.mode
        known = screen.rows[0] != -1  # the hole is drawn black: every other pixel was given
        assert torch.equal(screen.rows[2][known], screen.rows[0][known])
    async with DdpmApp(mode="edit", output_dir=str(tiny_run)).run_test(size=(80, 24)) as pilot:
        screen = pilot.app.screen
        await pilot.press("f5")
        await wait_until(pilot, lambda: not screen.running, what="the inversion at 80x24")
        bottom = max(screen.query_one(f"#edit-row-{row}").region.bottom for row in range(3))
        assert bottom <= pilot.app.size.height - 1  # all three rows above the footer


async def test_the_train_form_checks_the_image_folder_before_start(tmp_path, digits_folder):
    from textual.widgets import Select

    (tmp_path / "empty").mkdir()
    folder = digits_folder(tmp_path / "digits", 40)
    app = DdpmApp(mode="train", output_dir=str(tmp_path / "out"))
    async with app.run_test(size=(100, 32)) as pilot:
        screen = app.screen
        message = screen.query_one("#form-message")
        screen.query_one("#dataset", Select).value = core.FOLDER
        await pilot.pause()
        assert screen.query_one("#start").disabled and "Image folder" in str(message.render())
        for typed, problem in ((tmp_path / "missing", "does not exist"), (tmp_path / "empty", "holds no images")):
            screen.query_one("#data_dir").value = str(typed)
            await pilot.pause()
            assert screen.query_one("#start").disabled and problem in str(message.render())
        screen.query_one("#data_dir").value = str(folder)
        await pilot.pause()
        assert not screen.query_one("#start").disabled
        args = screen.form_args()
        assert args[args.index("--dataset") + 1] == "folder" and args[args.index("--data_dir") + 1] == str(folder)


async def test_the_noise_screen_shows_a_folder_of_the_learners_images(tmp_path, digits_folder):
    folder = digits_folder(tmp_path / "digits", 40)
    app = DdpmApp()
    async with app.run_test(size=(100, 32)) as pilot:
        screen = app.screen
        await pilot.press("o")
        await pilot.press(*"/nowhere", "enter")
        assert "does not exist" in str(app.screen.query_one("#folder-problem").render())
        app.screen.query_one("#folder-path").value = str(folder)
        await pilot.press("enter")
        await wait_until(pilot, lambda: screen.dataset == core.FOLDER, what="the folder's images")
        assert screen.x0.shape[1:] == (1, 28, 28) and str(folder) in screen.dataset_images().source
        await pilot.press("d", "d", "d")  # mnist, fashion_mnist, (cifar10 when here), then the folder again
        await pilot.pause()
        assert screen.dataset in (core.FOLDER, "cifar10")


async def test_the_sample_screen_names_a_folders_classes_and_shows_nearest_training_images(folder_run, tmp_path):
    from textual.widgets import Select

    app = sample_app(folder_run, tmp_path, 4, 3)
    async with app.run_test(size=(100, 32)) as pilot:
        screen = app.screen
        classes = screen.query_one("#class_label", Select)
        await wait_until(pilot, lambda: ("7 digit_7", "7") in classes._options, what="the folder's class names")
        classes.value = "7"
        await generate(pilot)
        await pilot.press("escape", "v")
        await wait_until(pilot, lambda: screen.nearest is not None, what="the nearest training images")
        assert screen.scores is None and screen.nearest.shape == screen.images.shape
        assert "nearest training image" in str(screen.query_one("#x-0-title").render())


async def test_the_model_screen_looks_inside_a_folder_trained_model_at_its_held_out_images(folder_run):
    app = DdpmApp(mode="model", output_dir=str(folder_run))
    async with app.run_test(size=(100, 32)) as pilot:
        screen = app.screen
        await wait_until(pilot, lambda: screen.look is not None and screen.profiles, what="the first look")
        assert screen.held_out.name == core.FOLDER and len(screen.held_out) == 12  # one in ten of 120 held out
        assert screen.x0.shape[1:] == (1, 28, 28)


def test_the_sample_screen_keeps_a_loaded_checkpoint_until_its_file_changes(tiny_run, tmp_path):
    """So a network compiled for one run stays compiled for the next (core.compiling)."""
    path, cpu = str(tmp_path / "model_final.pt"), torch.device("cpu")
    shutil.copy(tiny_run / "model_final.pt", path)
    screen = SampleScreen()
    first = screen.load(path, cpu)
    assert screen.load(path, cpu) is first
    stamp = os.stat(path).st_mtime
    os.utime(path, (stamp + 5, stamp + 5))
    assert screen.load(path, cpu) is not first
    with pytest.raises(core.CheckpointError):
        screen.load(str(tmp_path / "missing.pt"), cpu)
