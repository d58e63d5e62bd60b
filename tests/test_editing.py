"""core/editing.py: inversion, interpolation and inpainting, checked against the exact denoiser for Gaussian
data and against their closed forms."""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from test_samplers import gaussian_denoiser

import core
from core import NoiseSchedule, inpaint, invert, last_step, lerp, region_mask, renoise, sample, slerp
from ddpm_tui.cli import main

MEAN, STD = 0.2, 0.3


def encode_decode(schedule: NoiseSchedule, images: torch.Tensor, solver: str, steps: int):
    """x_T found by inverting ``images`` along ``steps`` of ``solver``, and the images it decodes back to."""
    model = gaussian_denoiser(schedule, MEAN, STD)
    times = core.sampler_timesteps(schedule, solver, steps)
    x_T = last_step(invert(model, schedule, images, times, solver)).x
    back = last_step(sample(model, schedule, x_T, solver, times=times, clip=False)).x
    return x_T, back


@pytest.mark.parametrize("solver,steps", [("ddim", (10, 50, 1000)), ("dpm++", (5, 20, 200))])
def test_inversion_then_sampling_gives_the_image_back_up_to_a_discretisation_error_that_shrinks(solver, steps):
    s = NoiseSchedule.create("linear", 1000)
    images = MEAN + STD * torch.randn(256, 1, 2, 2, generator=torch.Generator().manual_seed(0))
    errors = [(encode_decode(s, images, solver, n)[1] - images).abs().max().item() for n in steps]
    assert errors[0] > errors[1] > errors[2]  # first order (ddim) or second (dpm++): finer steps, smaller error
    assert errors[2] < 0.02
    x_T, _ = encode_decode(s, images, solver, steps[2])
    # The ODE keeps z = (x_t - a_t mean) / v_t, v_t^2 = a_t^2 std^2 + s_t^2, so x_T is N(0, 1) noise.
    a, sd = s.sqrt_alpha_bars, s.sqrt_one_minus_alpha_bars
    v0, vT = (a[0] ** 2 * STD**2 + sd[0] ** 2).sqrt(), (a[-1] ** 2 * STD**2 + sd[-1] ** 2).sqrt()
    exact = a[-1] * MEAN + vT * (images - a[0] * MEAN) / v0
    torch.testing.assert_close(x_T, exact, atol=0.02, rtol=0)


def test_inversion_refuses_a_stochastic_sampler():
    s = NoiseSchedule.create("linear", 100)
    with pytest.raises(ValueError, match="ddim or dpm"):
        next(invert(gaussian_denoiser(s, MEAN, STD), s, torch.zeros(1, 1, 2, 2), [99, 0], "dpm++sde"))


def test_slerp_keeps_the_norm_of_gaussian_noise_and_lerp_shrinks_its_mid_point():
    generator = torch.Generator().manual_seed(0)
    a, b = torch.randn(8, 1, 28, 28, generator=generator), torch.randn(8, 1, 28, 28, generator=generator)
    norm = a.flatten(1).norm(dim=1)
    torch.testing.assert_close(slerp(a, b, 0.0), a)
    torch.testing.assert_close(slerp(a, b, 1.0), b)
    middle = slerp(a, b, 0.5).flatten(1).norm(dim=1) / norm
    straight = lerp(a, b, 0.5).flatten(1).norm(dim=1) / norm
    assert middle.sub(1).abs().max() < 0.06  # on the sphere of radius sqrt(784)
    assert straight.sub(1 / math.sqrt(2)).abs().max() < 0.06  # inside it: noise the network never saw at T
    torch.testing.assert_close(slerp(a, a, 0.3), a)  # parallel vectors: the arc is the line


def test_renoise_follows_the_forward_process_between_any_two_steps():
    s = NoiseSchedule.create("cosine", 1000)
    x0 = MEAN + STD * torch.randn(200_000, generator=torch.Generator().manual_seed(1))
    x_300 = renoise(s, x0, -1, 300, torch.randn(x0.shape, generator=torch.Generator().manual_seed(2)))
    x_700 = renoise(s, x_300, 300, 700, torch.randn(x0.shape, generator=torch.Generator().manual_seed(3)))
    a = s.sqrt_alpha_bars[700]
    assert x_700.mean().item() == pytest.approx(a.item() * MEAN, abs=0.005)
    assert x_700.var().item() == pytest.approx((a**2 * STD**2 + 1 - a**2).item(), abs=0.01)


def test_the_repaint_walk_goes_back_up_every_jump_levels_and_ends_done():
    assert core.repaint_levels(5, 1) == [5, 4, 3, 2, 1, 0]  # plain replacement: straight down
    assert core.repaint_levels(5, 2) == [5, 4, 5, 4, 3, 4, 3, 2, 3, 2, 1, 2, 1, 0]
    assert core.repaint_levels(6, 2, jump=2) == [6, 5, 4, 5, 6, 5, 4, 3, 2, 3, 4, 3, 2, 1, 0]
    assert max(core.repaint_levels(25, 6, jump=10)) == 25  # a jump never goes above pure noise


@pytest.mark.parametrize("resample,jump,guidance", [(1, 1, 0.0), (3, 1, 0.0), (3, 10, 0.0), (1, 1, 16.0)])
def test_inpainting_keeps_every_known_pixel_and_fills_the_rest_from_the_data(resample, jump, guidance):
    s = NoiseSchedule.create("linear", 1000)
    generator = torch.Generator().manual_seed(0)
    known = MEAN + STD * torch.randn(2000, 1, 2, 2, generator=generator)
    mask = region_mask("bottom", (1, 2, 2))
    times = core.ddim_timesteps(1000, 1000)  # every step: the reverse process is then exact for this denoiser
    run = inpaint(gaussian_denoiser(s, MEAN, STD), s, known, mask, times, resample, generator, jump, guidance)
    result = last_step(run).x
    assert torch.equal(result[:, :, 0], known[:, :, 0])  # the top row, given, is untouched
    filled = result[:, :, 1]  # independent pixels: the known ones say nothing, so the fill is the data
    assert filled.mean().item() == pytest.approx(MEAN, abs=0.02)
    assert filled.std().item() == pytest.approx(STD, abs=0.02)


def test_reconstruction_guidance_pulls_only_what_the_known_pixels_inform():
    """Ho et al.'s gradient: with independent pixels (the Gaussian denoiser) the known ones say nothing about
    the hole, so its prediction is unchanged, while the known pixels' estimate moves towards their values."""
    s = NoiseSchedule.create("linear", 1000)
    model = gaussian_denoiser(s, MEAN, STD)
    generator = torch.Generator().manual_seed(1)
    known = MEAN + STD * torch.randn(64, 1, 2, 2, generator=generator)
    x_t = torch.randn(64, 1, 2, 2, generator=generator)
    mask, t = region_mask("bottom", (1, 2, 2)), 400
    plain = model(x_t, torch.full((64,), t))
    pulled = core.reconstruction_guided(model, s, x_t, t, known, mask, 4.0)
    assert torch.allclose(pulled[:, :, 1], plain[:, :, 1], atol=1e-6)
    root = s.alpha_bars[t].sqrt()
    x0_plain, x0_pulled = (x_t - (1 - root**2).sqrt() * plain) / root, (x_t - (1 - root**2).sqrt() * pulled) / root
    assert ((x0_pulled - known)[:, :, 0].abs() < (x0_plain - known)[:, :, 0].abs()).all()


def test_masks_cover_the_named_region():
    shape = (1, 28, 28)
    assert region_mask("top", shape)[0, :14].all() and not region_mask("top", shape)[0, 14:].any()
    assert region_mask("left", shape)[0, :, :14].all() and not region_mask("left", shape)[0, :, 14:].any()
    center = region_mask("center", shape)
    assert center.sum() == 14 * 14 and center[0, 14, 14] == 1 and center[0, 0, 0] == 0
    with pytest.raises(ValueError, match="unknown mask"):
        region_mask("middle", shape)


# ----- the commands -----------------------------------------------------------------------------------


def test_invert_reports_its_error_beside_a_random_samples_and_writes_every_image(tiny_run, tmp_path, capsys):
    out = tmp_path / "inv"
    argv = ["invert", "--checkpoint", str(tiny_run / "model_final.pt"), "--num_images", "6", "--steps", "10"]
    assert main([*argv, "--export_dir", str(out), "--json"]) == 0
    figures = json.loads(capsys.readouterr().out)
    assert {"mse", "random_mse", "x_T_mean", "x_T_std"} <= set(figures) and figures["steps"] == 10
    assert 0 <= figures["mse"] < figures["random_mse"]
    for kind in ("original", "noise", "reconstruction"):
        assert sorted(p.name for p in (out / kind).iterdir()) == [f"{i:04d}.png" for i in range(6)]


def test_interpolate_names_every_frame_and_shows_why_slerp(tiny_run, tmp_path, capsys):
    out = tmp_path / "frames"
    argv = ["interpolate", "--checkpoint", str(tiny_run / "model_final.pt"), "--pairs", "2", "--frames", "3"]
    assert main([*argv, "--steps", "5", "--export_dir", str(out), "--output", str(tmp_path / "g.png"), "--json"]) == 0
    figures = json.loads(capsys.readouterr().out)
    assert sorted(p.name for p in out.iterdir()) == [f"pair{i:03d}_frame{j:02d}.png" for i in (0, 1) for j in (0, 1, 2)]
    assert figures["midpoint_norm_slerp"] == pytest.approx(figures["sqrt_d"], rel=0.15)
    assert figures["midpoint_norm_lerp"] == pytest.approx(figures["sqrt_d"] / math.sqrt(2), rel=0.15)


def test_interpolate_morphs_the_label_of_a_conditional_model(tiny_conditional_run, tmp_path):
    argv = ["interpolate", "--checkpoint", str(tiny_conditional_run / "model_final.pt"), "--pairs", "1"]
    assert (
        main([*argv, "--steps", "5", "--from_class", "1", "--to_class", "7", "--output", str(tmp_path / "g.png")]) == 0
    )
    assert (tmp_path / "g.png").exists()


def test_inpaint_keeps_the_known_pixels_and_the_input_names(tiny_run, tmp_path):
    folder = tmp_path / "mine"
    images = core.load_dataset("mnist", "test").images[:3]
    core.export_images(images, folder, ["three.png", "one.png", "two.png"])
    out = tmp_path / "filled"
    argv = ["inpaint", "--checkpoint", str(tiny_run / "model_final.pt"), "--images", str(folder), "--mask", "top"]
    assert main([*argv, "--steps", "5", "--resample", "2", "--export_dir", str(out)]) == 0
    assert sorted(p.name for p in out.glob("*.png")) == ["inpaint.png", "one.png", "three.png", "two.png"]
    for name in ("one.png", "two.png", "three.png"):
        given, filled = (np.asarray(Image.open(f / name)) for f in (folder, out))
        assert np.array_equal(given[14:], filled[14:])  # the bottom half was known


@pytest.fixture(scope="module")
def bad_edit_inputs(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("bad_edits")
    Image.new("L", (10, 10), 255).save(folder / "mask_10x10.png")
    colour = folder / "colour"
    colour.mkdir()
    Image.new("RGB", (32, 32), (200, 0, 0)).save(colour / "red.png")
    return {"mask": folder / "mask_10x10.png", "colour": colour}


def test_bad_edit_input_is_one_line_and_exit_2_through_a_real_process(tiny_run, bad_edit_inputs):
    model = str(tiny_run / "model_final.pt")
    cases = {
        "the mask .* is 10x10 pixels; the images are 28x28": ["inpaint", "--mask", str(bad_edit_inputs["mask"])],
        "--frames: must be 2 or more": ["interpolate", "--frames", "1"],
        "are 32x32 RGB; this model takes 28x28 gray": ["invert", "--images", str(bad_edit_inputs["colour"])],
        "more than the model's T = 20": ["invert", "--steps", "21"],
        "need a class-conditional model": ["interpolate", "--from_class", "3"],
    }
    pipes = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE, "text": True}
    running = {  # all at once: each process spends most of its time importing PyTorch
        message: subprocess.Popen(
            [sys.executable, "-m", "ddpm_tui", argv[0], "--checkpoint", model, *argv[1:]], **pipes
        )
        for message, argv in cases.items()
    }
    for message, process in running.items():
        _, err = process.communicate(timeout=120)
        assert process.returncode == 2, err
        assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
        assert re.search(message, err), err
