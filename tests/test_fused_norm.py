"""The channels-last GroupNorm-SiLU kernel: the same numbers as PyTorch's operators, forward and backward, the
fallback where it cannot be built, and a trainer that uses it."""

import ctypes

import pytest
import torch
import torch.nn.functional as F

import core
from core import fused_norm
from core.fused_norm import group_norm_silu

needs_kernel = pytest.mark.skipif(fused_norm.kernel() is None, reason="no C compiler to build the kernel")


def norm_and_input(b: int, c: int, h: int, w: int, groups: int = 8) -> tuple[torch.nn.GroupNorm, torch.Tensor]:
    """A GroupNorm with gains and biases away from 1 and 0, and a channels-last bf16 input whose channels have
    different means and scales, as a convolution's output has."""
    torch.manual_seed(0)
    norm = torch.nn.GroupNorm(groups, c)
    with torch.no_grad():
        norm.weight.add_(0.3 * torch.randn(c))
        norm.bias.add_(0.3 * torch.randn(c))
    x = torch.randn(b, c, h, w) * torch.rand(1, c, 1, 1) * 3 + torch.randn(1, c, 1, 1)
    return norm, x.to(torch.bfloat16).contiguous(memory_format=torch.channels_last).requires_grad_()


def outputs_and_gradients(norm, x, silu: bool, function, dy: torch.Tensor, shift=None) -> list[torch.Tensor]:
    """``function``'s output and the gradients of ``sum(y dy)`` for x, the gains, the biases (and ``shift``)."""
    x.grad, norm.weight.grad, norm.bias.grad = None, None, None
    inputs = [x, norm.weight, norm.bias] + ([] if shift is None else [shift])
    y = function(norm, x, silu) if shift is None else function(norm, x, silu, shift)
    gradients = torch.autograd.grad((y.float() * dy).sum(), inputs)
    return [y.detach().float()] + [g.float() for g in gradients]


def exact(norm, x, silu: bool, shift=None) -> torch.Tensor:
    """GroupNorm (and SiLU) in fp32 on the same bf16 input: the reference both bf16 ways round."""
    x = x.float() if shift is None else x.float() + shift.float()[:, :, None, None]
    y = F.group_norm(x, norm.num_groups, norm.weight, norm.bias, norm.eps)
    return F.silu(y) if silu else y


def pytorch_bf16(norm, x, silu: bool, shift=None) -> torch.Tensor:
    """What the network computes without the kernel, in NCHW order under bf16 autocast."""
    with torch.autocast("cpu", dtype=torch.bfloat16):
        x = x.contiguous() if shift is None else x.contiguous() + shift[:, :, None, None]
        y = norm(x)
        return F.silu(y) if silu else y


def assert_as_close_as_pytorch(fused, pytorch, reference, names) -> None:
    """Each of the kernel's results is within 1% of the fp32 reference and at most 1.5x PyTorch bf16's error."""
    for name, ours, theirs, want in zip(names, fused, pytorch, reference, strict=True):
        scale = want.abs().max()
        error, pytorch_error = (ours - want).abs().max() / scale, (theirs - want).abs().max() / scale
        assert error < 0.01, name  # bf16 keeps 8 bits: a wrong mean, variance or gradient term is off by far more
        assert error <= 1.5 * pytorch_error + 1e-3, name


@needs_kernel
# Widths that are multiples of 16 take the kernel's AVX-512 loops where the CPU has them; 24 and 40, its scalar loops.
@pytest.mark.parametrize(
    ("shape", "silu"),
    [((32, 64, 28, 28), True), ((3, 128, 7, 7), False), ((2, 32, 5, 6), True), ((4, 24, 9, 9), True)],
)
def test_the_kernel_is_as_close_to_fp32_as_pytorchs_bf16_forward_and_backward(shape, silu):
    norm, x = norm_and_input(*shape)
    dy = torch.randn(shape)
    reference = outputs_and_gradients(norm, x, silu, exact, dy)
    fused = outputs_and_gradients(norm, x, silu, group_norm_silu, dy)
    pytorch = outputs_and_gradients(norm, x, silu, pytorch_bf16, dy)
    assert fused[0].is_contiguous(memory_format=torch.channels_last) and fused[1].is_contiguous(
        memory_format=torch.channels_last
    )
    assert_as_close_as_pytorch(fused, pytorch, reference, ("y", "dx", "dgamma", "dbeta"))


@needs_kernel
@pytest.mark.parametrize(("shape", "silu"), [((32, 64, 14, 14), True), ((3, 32, 5, 6), False), ((4, 40, 9, 9), True)])
def test_a_shift_added_inside_the_kernel_is_as_close_to_fp32_as_adding_it_first(shape, silu):
    norm, x = norm_and_input(*shape)
    shift = (2 * torch.randn(shape[:2])).to(torch.bfloat16).requires_grad_()  # a time projection under autocast
    dy = torch.randn(shape)
    reference = outputs_and_gradients(norm, x, silu, exact, dy, shift)
    fused = outputs_and_gradients(norm, x, silu, group_norm_silu, dy, shift)
    pytorch = outputs_and_gradients(norm, x, silu, pytorch_bf16, dy, shift)
    assert_as_close_as_pytorch(fused, pytorch, reference, ("y", "dx", "dgamma", "dbeta", "dshift"))
    without = outputs_and_gradients(norm, x, silu, group_norm_silu, dy)
    assert (without[0] - fused[0]).abs().max() > 0.1  # the shift changes the output: it is not ignored


@needs_kernel
@pytest.mark.parametrize("shape", [(32, 64, 14, 14), (3, 32, 5, 6)])
def test_the_kernel_adds_a_residual_inputs_second_gradient_into_the_one_it_writes(shape):
    norm, x = norm_and_input(*shape)
    dy, dp = torch.randn(shape), 3 * torch.randn(shape)

    def gradients(normalise) -> list[torch.Tensor]:
        """The gradients of sum(y dy) + sum(x dp), x used twice: normalised, and as ``normalise`` passes it on."""
        y, passed = normalise(x)
        loss = (y.float() * dy).sum() + (passed.float() * dp).sum()
        return [g.float() for g in torch.autograd.grad(loss, [x, norm.weight, norm.bias])]

    fused = gradients(lambda x: fused_norm.group_norm_silu_and_input(norm, x))
    reference = gradients(lambda x: (exact(norm, x, True), x))
    pytorch = gradients(lambda x: (pytorch_bf16(norm, x, True), x))
    assert_as_close_as_pytorch(fused, pytorch, reference, ("dx", "dgamma", "dbeta"))
    alone = torch.autograd.grad((group_norm_silu(norm, x).float() * dy).sum(), x)[0].float() + dp
    assert (fused[0] - alone).abs().max() < 0.01 * alone.abs().max()  # dp added once, in bf16


@needs_kernel
def test_an_upsampled_tensor_hands_its_gradient_on_in_channels_last_order():
    _, x = norm_and_input(2, 32, 6, 6)
    wide = torch.cat([fused_norm.channels_last_gradient(x), x.detach()], dim=1)
    seen = []
    x.register_hook(lambda g: seen.append(g.is_contiguous(memory_format=torch.channels_last)))
    wide.sum().backward()
    assert seen == [True]
    constant = x.detach()
    assert fused_norm.channels_last_gradient(constant) is constant  # nothing to hand on


@needs_kernel
def test_the_kernel_serves_channels_last_bf16_cpu_tensors_only():
    norm, x = norm_and_input(2, 32, 6, 6)
    assert group_norm_silu(norm, x).grad_fn.name() == "GroupNormSiLUBackward"
    for other in (x.detach().contiguous(), x.detach().float()):
        y = group_norm_silu(norm, other)
        torch.testing.assert_close(y, F.silu(norm(other)), rtol=0, atol=0)


def test_without_the_kernel_pytorch_computes_the_same(monkeypatch):
    monkeypatch.setattr(fused_norm, "kernel", lambda: None)
    norm, x = norm_and_input(2, 32, 6, 6)
    torch.testing.assert_close(group_norm_silu(norm, x), F.silu(norm(x)), rtol=0, atol=0)
    torch.testing.assert_close(group_norm_silu(norm, x, silu=False), norm(x), rtol=0, atol=0)
    assert not fused_norm.channels_last_pays(torch.device("cpu"), bf16=True)


def test_without_a_compiler_nothing_is_built(monkeypatch, tmp_path):
    monkeypatch.setenv("CC", str(tmp_path / "no-such-compiler"))
    assert not fused_norm._build(tmp_path / "kernel.so")
    assert list(tmp_path.iterdir()) == []


def test_a_build_is_named_for_its_source_cpu_and_flags(monkeypatch):
    paths = [fused_norm.library_path()]
    monkeypatch.setattr(fused_norm, "FLAG_SETS", (("-O1", "-shared", "-fPIC"),))
    paths.append(fused_norm.library_path())  # new flags build afresh instead of loading the old build
    monkeypatch.setattr(fused_norm, "cpu_signature", lambda: "another CPU")
    paths.append(fused_norm.library_path())
    assert len(set(paths)) == 3


def test_an_unwritable_cache_builds_nothing_and_raises_nothing(tmp_path):
    blocked = tmp_path / "file"
    blocked.write_text("not a folder")
    assert not fused_norm._build(blocked / "kernels" / "kernel.so")


@needs_kernel
def test_a_build_is_written_whole_and_loads(tmp_path):
    library = tmp_path / "kernel.so"
    assert fused_norm._build(library)
    assert [p.name for p in tmp_path.iterdir()] == ["kernel.so"]
    assert ctypes.CDLL(str(library)).group_norm_silu_backward


@needs_kernel
def test_a_cpu_bf16_trainer_runs_channels_last_and_learns_as_without_the_kernel(tmp_path, monkeypatch):
    def losses(enabled: bool) -> tuple[list[float], torch.nn.Module]:
        monkeypatch.setattr(fused_norm, "_enabled", enabled)
        config = core.TrainConfig(output_dir=str(tmp_path / str(enabled)), max_images=64, guide_at=0.0, seed=3)
        trainer = core.Trainer(config)
        if not trainer.bf16:
            pytest.skip("this CPU trains in fp32, where the kernel is not used")
        x0 = trainer.images_at(torch.arange(32))
        return [trainer.train_step(x0) for _ in range(8)], trainer.model

    plain, plain_model = losses(False)
    fused, fused_model = losses(True)
    kernel = next(name for name, p in plain_model.named_parameters() if p.ndim == 4 and p.shape[1] > 1)
    assert fused_model.get_parameter(kernel).is_contiguous(memory_format=torch.channels_last)
    assert plain_model.get_parameter(kernel).is_contiguous()
    # bf16 rounding moves the losses by about 1e-6 here; a kernel without its SiLU moved them by 4e-3
    assert fused == pytest.approx(plain, rel=1e-4)


@needs_kernel
@pytest.mark.parametrize("saved_with_kernel", [True, False])
def test_a_run_resumes_in_the_other_memory_layout_with_its_moments_in_that_layout(
    tmp_path, monkeypatch, saved_with_kernel
):
    monkeypatch.setattr(fused_norm, "_enabled", saved_with_kernel)
    config = core.TrainConfig(output_dir=str(tmp_path), max_images=32, base_channels=8, guide_at=0.0, seed=1)
    trainer = core.Trainer(config)
    if not trainer.bf16:
        pytest.skip("this CPU trains in fp32, where the kernel is not used")
    trainer.train_step(trainer.images_at(torch.arange(32)))
    checkpoint = trainer.save_checkpoint()
    monkeypatch.setattr(fused_norm, "_enabled", not saved_with_kernel)
    resumed = core.Trainer(config, resume=checkpoint)
    for optimiser in resumed.optimizers:
        for p, state in optimiser.state.items():
            assert all(v.stride() == p.stride() for v in state.values() if v.shape == p.shape)
    assert resumed.train_step(resumed.images_at(torch.arange(32))) > 0


@needs_kernel
def test_an_eager_bf16_cpu_call_of_an_nchw_network_normalises_by_the_kernel(monkeypatch):
    torch.manual_seed(0)
    model = core.build_model(core.TrainConfig(), (1, 28, 28)).eval()  # weights in NCHW order, as the EMA's
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.02 * torch.randn_like(p))
    x, t = torch.randn(4, 1, 28, 28), torch.full((4,), 500)
    calls, apply = [], fused_norm.GroupNormSiLU.apply
    monkeypatch.setattr(fused_norm.GroupNormSiLU, "apply", lambda *args: calls.append(1) or apply(*args))
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        fused = model(x, t).float()
        monkeypatch.setattr(fused_norm, "_enabled", False)
        plain = model(x, t).float()
    assert len(calls) == sum(isinstance(m, torch.nn.GroupNorm) for m in model.modules())
    torch.testing.assert_close(fused, plain, atol=0.05, rtol=0)  # bf16 rounds in other places
