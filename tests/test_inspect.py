"""core.inspect on a tiny U-Net trained until it fits eight images: what the Model screen and
``ddpm-tui inspect`` claim about noise prediction, time embeddings and skip connections."""

from __future__ import annotations

import json

import pytest
import torch

import core
from core.inspect import skips_cut
from ddpm_tui.cli import main

T = 100
STEPS = 300


@pytest.fixture(scope="module")
def fitted() -> tuple[core.UNet, core.NoiseSchedule, torch.Tensor]:
    """A width-8 U-Net trained on eight MNIST digits (halved to 14x14 for speed) with L_simple until it has
    learned them."""
    torch.manual_seed(0)
    schedule = core.NoiseSchedule.create("linear", T)
    x0 = torch.nn.functional.avg_pool2d(core.load_dataset("mnist", "train").images[:8], 2)
    model = core.UNet(1, base_channels=8)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(STEPS):
        loss = core.l_simple(model, schedule, x0)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return model.eval(), schedule, x0


def test_x0_hat_from_the_true_noise_is_x0():
    """With eps_hat = eps exactly, inverting the forward process gives back x_0 at every t."""
    schedule = core.NoiseSchedule.create("cosine", T)
    x0, eps = torch.rand(3, 1, 8, 8) * 2 - 1, torch.randn(3, 1, 8, 8)

    class Oracle(torch.nn.Module):
        def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
            return eps

    for t in (0, 50, 90):
        look = core.predict(Oracle(), schedule, x0, t, eps)
        assert torch.allclose(look.x0_hat, x0, atol=1e-4)
        assert look.mse_eps == 0 and look.mse_x0 < 1e-8


def test_the_noise_error_stays_bounded_while_the_image_error_grows(fitted):
    model, schedule, x0 = fitted
    profile = core.error_profile(model, schedule, x0, [5, 50, 95], torch.Generator().manual_seed(0))
    assert max(profile.mse_eps) < 0.5
    assert profile.mse_x0[0] < profile.mse_x0[1] < profile.mse_x0[2]


def test_a_wrong_t_or_cut_skips_raise_the_noise_error(fitted):
    model, schedule, x0 = fitted
    eps = torch.randn(x0.shape, generator=torch.Generator().manual_seed(1))
    for t in (50, 80):
        right = core.predict(model, schedule, x0, t, eps)
        assert core.predict(model, schedule, x0, t, eps, t_model=core.wrong_time(t, T)).mse_eps > 1.5 * right.mse_eps
        assert core.predict(model, schedule, x0, t, eps, skips=False).mse_eps > 5 * right.mse_eps
    sweep = core.time_sweep(model, schedule, right.x_t[:1], eps[:1], range(0, T, 10))
    assert abs(10 * min(range(len(sweep)), key=sweep.__getitem__) - 80) <= 10  # lowest at the true t


def test_cutting_skips_is_undone_after_the_block_even_when_it_raises(fitted):
    model, schedule, x0 = fitted
    x, t = x0[:2], torch.tensor([10, 60])
    before = model(x, t)
    with skips_cut(model):
        cut = model(x, t)
    assert not torch.allclose(cut, before)
    with pytest.raises(RuntimeError), skips_cut(model):
        raise RuntimeError("inside")
    assert model.skips_on and torch.equal(model(x, t), before)


def test_skips_of_a_v_model_are_cut_inside_its_wrapper():
    network = core.UNet(1, base_channels=8)
    wrapped = core.noise_predictor(network, core.NoiseSchedule.create("cosine", T), "v")
    with skips_cut(wrapped):
        assert not network.skips_on
    assert network.skips_on


def test_levels_describe_the_actual_network():
    network = core.UNet(1, base_channels=32, channel_mults=(1, 2, 2), num_res_blocks=1)
    levels, bottleneck = core.describe_levels(network, (1, 28, 28))
    assert [level.resolution for level in levels] == [(28, 28), (14, 14), (7, 7)]
    assert [level.channels for level in levels] == [32, 64, 64]
    assert [level.attention for level in levels] == [False, False, True] and bottleneck.attention
    # every down-path output crosses to one up block of its own resolution
    assert all(len(level.skip_channels) == level.up_blocks == 2 for level in levels)
    assert sum(level.parameters for level in levels) + bottleneck.parameters < core.count_parameters(network)
    lines = core.structure_lines(levels, bottleneck, core.count_parameters(network))
    assert lines[0].startswith("28x28") and "skips [32 32]" in lines[0] and "1.11M" in lines[-1]
    assert "block, attention, block" in lines[-2]


@pytest.mark.parametrize(("attention", "at_lowest", "in_bottleneck"), [("middle", False, True), ("none", False, False)])
def test_levels_show_where_attention_is(attention, at_lowest, in_bottleneck):
    network = core.UNet(1, base_channels=32, attention=attention)
    levels, bottleneck = core.describe_levels(network, (1, 28, 28))
    assert [level.attention for level in levels] == [False, False, at_lowest]
    assert bottleneck.attention == in_bottleneck
    lines = core.structure_lines(levels, bottleneck, core.count_parameters(network))
    assert ("+attn" in lines[2]) == at_lowest
    middle = "block, attention, block" if in_bottleneck else "block, block"
    assert lines[-2].endswith(f"{middle} ({bottleneck.parameters / 1e3:,.0f}k)")


def test_embedding_map_is_the_sinusoidal_embedding():
    image, steps = core.embedding_map(32, 1000, 11)
    assert image.shape == (32, 11) and steps[0] == 0 and steps[-1] == 999
    assert torch.allclose(image[:, 5], core.timestep_embedding(torch.tensor([steps[5]]), 32)[0])


def test_panels_are_six_rgb_images_in_range(fitted):
    model, schedule, x0 = fitted
    look = core.predict(model, schedule, x0, 40, torch.randn(x0.shape))
    pictures = core.panels(look, index=2)
    assert pictures.shape == (len(core.PANELS), 3, 14, 14)
    assert pictures.min() >= -1 and pictures.max() <= 1
    assert torch.equal(pictures[0, 0], x0[2, 0])


def test_bad_timesteps_are_refused(fitted):
    model, schedule, x0 = fitted
    with pytest.raises(ValueError, match="0..99"):
        core.predict(model, schedule, x0, T, torch.randn(x0.shape))
    with pytest.raises(ValueError, match="t_model"):
        core.predict(model, schedule, x0, 5, torch.randn(x0.shape), t_model=-1)


def test_inspect_prints_the_table_and_draws_the_figure(tiny_run, tmp_path, capsys):
    figure = tmp_path / "inspect.png"
    argv = ["inspect", "--checkpoint", str(tiny_run / "model_final.pt"), "--t", "2", "10", "19"]
    assert main([*argv, "--num_images", "8", "--output", str(figure)]) == 0
    out = capsys.readouterr().out
    unwrapped = out.replace("\n", "")  # Rich wraps long paths at the console's width
    assert "8 held-out mnist" in unwrapped and "skips cut" in unwrapped and figure.name in unwrapped
    rows = [line for line in out.splitlines() if line.startswith("│")]
    assert [row.split("│")[1].strip() for row in rows] == ["2", "10", "19"]
    assert figure.stat().st_size > 10_000


def test_inspect_json_has_one_value_per_t_and_matches_the_core(tiny_run, tmp_path, capsys):
    checkpoint = tiny_run / "model_final.pt"
    argv = ["inspect", "--checkpoint", str(checkpoint), "--t", "3", "15", "--num_images", "4", "--json"]
    assert main([*argv, "--output", str(tmp_path / "f.png"), "--device", "cpu"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["t"] == [3, 15]
    for key in ("mse_eps", "mse_x0", "mse_eps_wrong_t", "mse_eps_no_skips"):
        assert len(result[key]) == 2 and all(value >= 0 for value in result[key])
    loaded = core.load_model(checkpoint)
    generator = torch.Generator().manual_seed(0)
    x0 = core.pick_images(core.load_dataset("mnist", "test"), 4, generator)
    expected = core.error_profile(loaded.model, loaded.schedule, x0, [3, 15], generator)
    assert result["mse_x0"] == pytest.approx(expected.mse_x0, rel=0.05)


def test_inspect_asks_a_conditional_model_without_a_label(tiny_conditional_run, tmp_path, capsys):
    argv = ["inspect", "--checkpoint", str(tiny_conditional_run / "model_final.pt"), "--num_images", "4"]
    assert main([*argv, "--t", "5", "--output", str(tmp_path / "f.png")]) == 0
    assert "null class" in capsys.readouterr().out


def test_levels_of_the_lean_decoder_show_one_skip_per_residual_stage():
    network = core.UNet(1, base_channels=32, attention="none", upsample="conv_resize", decoder="lean")
    levels, _ = core.describe_levels(network, (1, 28, 28))
    assert [level.up_blocks for level in levels] == [1, 1, 1]
    assert [level.skip_channels for level in levels] == [[32], [64], [64]]
