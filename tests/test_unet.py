"""The U-Net's shapes, its time embedding, and that it can learn."""

import copy

import pytest
import torch

from core import MODEL_PRESETS, TrainConfig, UNet, count_parameters, timestep_embedding
from core.optimiser import make_optimisers
from core.unet import ResidualBlock, SelfAttention, Upsample


@pytest.mark.parametrize("shape", [(1, 28, 28), (3, 32, 32), (1, 30, 30)])
def test_output_matches_input_shape(shape):
    model = UNet(in_channels=shape[0], base_channels=16)
    x = torch.randn(2, *shape)
    assert model(x, torch.tensor([0, 999])).shape == x.shape


def test_parameter_count_grows_with_width():
    counts = [count_parameters(UNet(1, c)) for c in (16, 32, 64)]
    assert counts[0] < counts[1] < counts[2]
    # convolutions dominate, so doubling the width roughly quadruples the parameters
    assert 3.5 < counts[2] / counts[1] < 4.5


def test_timestep_embedding():
    emb = timestep_embedding(torch.tensor([0, 1, 500]), 32)
    assert emb.shape == (3, 32)
    torch.testing.assert_close(emb[0], torch.cat([torch.zeros(16), torch.ones(16)]))
    assert emb[1, 0].item() == pytest.approx(torch.sin(torch.tensor(1.0)).item())
    assert not torch.allclose(emb[1], emb[2])


def test_time_changes_the_prediction():
    model = UNet(1, 16)
    for p in model.parameters():
        torch.nn.init.normal_(p, std=0.05)
    x = torch.randn(1, 1, 28, 28)
    assert not torch.allclose(model(x, torch.tensor([10])), model(x, torch.tensor([900])))


@pytest.mark.parametrize(("name", "decoder"), [("muon", "lean"), ("adamw", "full")])  # the default, Ho et al.'s
def test_tiny_model_overfits_one_batch(name, decoder):
    torch.manual_seed(0)
    model = UNet(1, base_channels=16, decoder=decoder)
    x, t, target = torch.randn(4, 1, 28, 28), torch.tensor([5, 50, 200, 700]), torch.randn(4, 1, 28, 28)
    optimisers = make_optimisers(model, name, 2e-3, fused=None)
    first = None
    for _ in range(150):
        loss = torch.nn.functional.mse_loss(model(x, t), target)
        first = first if first is not None else loss.item()
        model.zero_grad()
        loss.backward()
        for optimiser in optimisers:
            optimiser.step()
    assert loss.item() < first / 10


@pytest.mark.parametrize("shape", [(1, 28, 28), (3, 32, 32)])
def test_every_model_preset_runs_and_they_grow_in_order(shape):
    counts = []
    for name, preset in MODEL_PRESETS.items():
        config = TrainConfig(**preset)
        assert config.model_name == name
        model = UNet(shape[0], **config.model_kwargs())
        x = torch.randn(1, *shape)
        assert model(x, torch.tensor([10])).shape == x.shape
        counts.append(count_parameters(model))
    assert counts == sorted(counts) and counts[0] < 200_000 < counts[1] < 1_000_000 < counts[2] < counts[3]
    assert TrainConfig().model_name == "small"
    assert TrainConfig(base_channels=48).model_name == TrainConfig(decoder="full").model_name == "custom"


@pytest.mark.parametrize("time_conditioning", ["add", "scale_shift"])
@pytest.mark.parametrize("upsample", ["resize_conv", "conv_resize"])
def test_every_variant_keeps_shapes_and_starts_as_the_zero_function(time_conditioning, upsample):
    """The last conv of every residual block, of attention and of the output is zero-initialised, so an
    untrained network predicts exactly 0 for any input and t: the loss starts at the target's variance."""
    for shape in ((1, 28, 28), (3, 32, 32), (1, 30, 30)):
        model = UNet(shape[0], 16, time_conditioning=time_conditioning, upsample=upsample)
        x = torch.randn(2, *shape)
        out = model(x, torch.tensor([3, 700]))
        assert out.shape == x.shape and out.abs().max().item() == 0.0
        zeroed = [m.conv2 for m in model.modules() if hasattr(m, "conv2")]
        assert zeroed and all(conv.weight.abs().max() == 0 for conv in zeroed)


@pytest.mark.parametrize(("attention", "layers"), [("lowest", 4), ("middle", 1), ("none", 0)])
def test_attention_runs_where_asked_and_starts_as_the_zero_function(attention, layers):
    """``lowest``: after the down block, in the bottleneck and after both up blocks at 7x7; ``middle``: the
    bottleneck only; ``none``: nowhere. Whichever, the untrained network still predicts exactly 0."""
    model = UNet(1, 32, attention=attention)
    attending = [m for m in model.modules() if isinstance(m, SelfAttention)]
    assert len(attending) == layers
    x = torch.randn(2, 1, 28, 28)
    assert model(x, torch.tensor([3, 700])).abs().max().item() == 0.0
    # the same network less those layers: every other weight keeps its name and shape
    full = UNet(1, 32)
    one = count_parameters(SelfAttention(64))
    assert count_parameters(model) == count_parameters(full) - (4 - layers) * one
    shapes = {name: p.shape for name, p in full.state_dict().items()}
    assert all(shapes[name] == p.shape for name, p in model.state_dict().items())


def test_scale_shift_lets_time_scale_the_normalised_features():
    torch.manual_seed(0)
    model = UNet(1, 16, time_conditioning="scale_shift")
    for p in model.parameters():
        torch.nn.init.normal_(p, std=0.05)
    block = model.down[0][0]
    assert block.time_proj.out_features == 2 * 16  # a scale and a shift per channel
    x = torch.randn(1, 1, 28, 28)
    assert not torch.allclose(model(x, torch.tensor([10])), model(x, torch.tensor([900])))


def _residual_blocks(model):
    return [m for m in model.modules() if isinstance(m, ResidualBlock)]


@pytest.mark.parametrize("time_conditioning", ["add", "scale_shift"])
def test_one_product_gives_every_block_its_own_time_projection(time_conditioning):
    torch.manual_seed(0)
    model = UNet(1, 16, time_conditioning=time_conditioning)
    for p in model.parameters():
        torch.nn.init.normal_(p, std=0.05)
    t_emb = model.time_mlp(timestep_embedding(torch.tensor([3, 400]), 16))
    times = model.time_projections(t_emb)
    blocks = _residual_blocks(model)
    assert times.shape == (2, sum(block.time_proj.out_features for block in blocks))
    for block in blocks:
        torch.testing.assert_close(times[:, block.time_columns], block.time_proj(t_emb))
    copied = copy.deepcopy(model)  # as the EMA network is made: it must project with its own weights
    last = _residual_blocks(copied)[-1]
    with torch.no_grad():
        last.time_proj.bias.add_(1.0)
        moved = copied.time_projections(t_emb) - times
    torch.testing.assert_close(moved[:, last.time_columns], torch.ones(2, last.time_proj.out_features))
    assert moved[:, : last.time_columns.start].abs().max() < 1e-6
    torch.testing.assert_close(model.time_projections(t_emb), times)  # the original's weights untouched


def test_stacked_time_projections_train_each_blocks_weights_as_separate_ones_would():
    torch.manual_seed(0)
    model = UNet(1, 16)
    for p in model.parameters():
        torch.nn.init.normal_(p, std=0.05)
    x, t, blocks = torch.randn(2, 1, 28, 28), torch.tensor([3, 400]), _residual_blocks(model)

    def gradients():
        model.zero_grad()
        model(x, t).square().sum().backward()
        return [g for block in blocks for g in (block.time_proj.weight.grad.clone(), block.time_proj.bias.grad.clone())]

    stacked = gradients()
    model.time_projections = lambda t_emb: torch.cat([block.time_proj(t_emb) for block in blocks], dim=1)
    for ours, one_product_per_block in zip(stacked, gradients(), strict=True):
        torch.testing.assert_close(ours, one_product_per_block)


def test_convolving_before_upsampling_costs_a_quarter_at_the_upsampled_resolution():
    counts = {}
    for order in ("resize_conv", "conv_resize"):
        model, macs = UNet(1, 32, upsample=order), []

        def count(module, inputs, output, macs=macs):
            macs.append(module.weight.numel() * inputs[0].shape[-1] * inputs[0].shape[-2])

        for m in model.modules():
            if m.__class__.__name__ == "Upsample":
                m.conv.register_forward_hook(count)
        model(torch.randn(1, 1, 28, 28), torch.tensor([1]))
        counts[order] = sum(macs)
    assert counts["resize_conv"] == 4 * counts["conv_resize"]


@pytest.mark.parametrize("blocks", [1, 2])
def test_lean_decoder_takes_the_residual_stages_skips_and_costs_less(blocks):
    """The lean up path has ``blocks`` stages per level, each fed the output of the down path's mirrored
    residual stage, and upsampling convolutions that narrow to the next level's width; it keeps the
    shapes and the zero function at the start, and at the default size does about 0.6x the arithmetic."""
    from torch.utils.flop_counter import FlopCounterMode

    flops = {}
    for decoder in ("full", "lean"):
        model = UNet(1, 32, num_res_blocks=blocks, attention="none", upsample="conv_resize", decoder=decoder)
        stages = [layer for layer in model.up if not isinstance(layer, Upsample)]
        assert len(stages) == 3 * (blocks + (decoder == "full"))
        counter = FlopCounterMode(display=False)
        with counter:
            assert model(torch.randn(1, 1, 28, 28), torch.tensor([5])).abs().max().item() == 0.0
        flops[decoder] = counter.get_total_flops()
    assert [up.conv.out_channels for up in model.up if isinstance(up, Upsample)] == [64, 32]
    assert [stage[0].conv1.in_channels for stage in stages][-blocks:] == [32 + 32] * blocks  # narrowed, and a skip
    assert flops["lean"] / flops["full"] < (0.65 if blocks == 1 else 0.8)
    for shape in ((3, 32, 32), (1, 30, 30)):
        x = torch.randn(2, *shape)
        assert UNet(shape[0], 16, decoder="lean", attention="lowest")(x, torch.tensor([0, 9])).shape == x.shape
