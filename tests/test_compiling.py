"""When the network runs compiled for sampling, and that a failed compile falls back to the same images.

Building a real package takes a minute, so these tests replace ``core.compiling.build_package`` and
``load_package`` with a package that runs a copy of the network given the weights loaded into it; what
compiling gains is measured by ``benchmarks/compiled_sampling.py`` and ``benchmarks/headline.py --parts phase3``.
"""

from __future__ import annotations

import copy
import dataclasses
import functools

import pytest
import torch
import torch.nn.functional as F

import core
from core import compiling, fused_norm
from core.unet import GroupNorm


class FakePackage:
    """A loaded package: a copy of the network it was built from, which runs on the weights loaded into it."""

    def __init__(self, network: torch.nn.Module) -> None:
        self.network = copy.deepcopy(network)
        self.names = [name for name, _ in [*network.named_parameters(), *network.named_buffers()]]
        self.weighed = 0

    def get_constant_fqns(self) -> list[str]:
        return list(self.names)

    def load_constants(self, constants: dict, use_inactive: bool, check_full_update: bool) -> None:
        assert not use_inactive and check_full_update and sorted(constants) == sorted(self.names)
        self.network.load_state_dict(constants, strict=False)
        self.weighed += 1

    def run(self, inputs: list[torch.Tensor]) -> list[torch.Tensor]:
        with torch.no_grad():
            return [self.network(*inputs)]


@pytest.fixture
def packages(monkeypatch: pytest.MonkeyPatch):
    """Packages built and loaded without a compiler: the calls each build was made for, by path."""
    built: dict = {}

    def build(network, args, path):
        built[path] = (network, [tuple(arg.shape) for arg in args])
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch()

    monkeypatch.setattr(compiling, "build_package", build)
    monkeypatch.setattr(compiling, "load_package", lambda path: FakePackage(built[path][0]))
    return built


@pytest.fixture
def without_kernel(monkeypatch: pytest.MonkeyPatch) -> None:
    """A CPU where the GroupNorm kernel does not serve (no C compiler): bf16 sampling runs pay for a package."""
    monkeypatch.setattr(fused_norm, "_enabled", False)


@pytest.fixture
def compiler(monkeypatch: pytest.MonkeyPatch):
    """Say whether a C++ compiler is installed, whatever this machine has."""

    def installed(present: bool) -> None:
        monkeypatch.setattr(compiling.shutil, "which", lambda name: "/usr/bin/g++" if present else None)

    return installed


def test_auto_runs_a_packaged_network_compiled_and_builds_one_only_for_a_long_run(compiler):
    compiler(True)
    ddpm_64, preview, few = (1000, 64), (10, 64), (2, 4)
    assert core.compile_pays("cpu", *preview, cached=True)  # loading a package costs milliseconds
    assert not core.compile_pays("cpu", *few, cached=True)  # ... more than a call or two on a few images save
    assert not core.compile_pays("cpu", *ddpm_64, cached=False)  # building costs more than Phase 3 saves
    assert core.compile_pays("cpu", 1000, 200, cached=False)  # ... but not more than a run this long
    assert not core.compile_pays("cuda", *ddpm_64, cached=True)  # measured on CPUs only
    for cached, least in ((True, core.AUTO_MIN_IMAGE_CALLS), (False, core.AUTO_MIN_IMAGE_CALLS_COLD)):
        assert core.compile_pays("cpu", least, 1, cached=cached)
        assert not core.compile_pays("cpu", least - 1, 1, cached=cached)
    compiler(False)
    assert core.compile_pays("cpu", *ddpm_64, cached=True)  # a package needs no compiler to load
    assert not core.compile_pays("cpu", 1000, 200, cached=False)  # ... but one to build
    assert core.compile_pays("cpu", *few, mode="on")
    assert not core.compile_pays("cpu", *ddpm_64, mode="off")
    with pytest.raises(ValueError, match="unknown compile mode"):
        core.compile_pays("cpu", *ddpm_64, mode="fast")


@pytest.mark.skipif(fused_norm.kernel() is None, reason="no C compiler to build the GroupNorm kernel")
def test_auto_stays_eager_for_bf16_calls_that_the_groupnorm_kernel_serves(monkeypatch):
    ddpm_64 = (1000, 64)
    assert core.compile_pays("cpu", *ddpm_64, cached=True)  # fp32 calls run in NCHW order: the package pays
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert core.serves_eager_calls("cpu")
        assert not core.compile_pays("cpu", *ddpm_64, cached=True)  # channels-last eager is as fast
        assert core.compile_pays("cpu", *ddpm_64, mode="on")  # ... unless asked for
        monkeypatch.setattr(fused_norm, "_enabled", False)
        assert core.compile_pays("cpu", *ddpm_64, cached=True)  # without the kernel the package pays again


@pytest.mark.skipif(fused_norm.kernel() is None, reason="no C compiler to build the GroupNorm kernel")
def test_a_bf16_run_plans_eagerly_where_the_kernel_serves_even_with_a_package(packages):
    network, schedule = tiny_unet(), core.NoiseSchedule.create("linear", 20)
    assert core.compile_for_sampling(network, schedule, (1, 8, 8)) is None  # fp32: its package is built
    assert core.plan_sampling(network, schedule, (1, 8, 8), 64, "ddpm").compiled  # ... and fp32 runs load it
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert not core.plan_sampling(network, schedule, (1, 8, 8), 64, "ddpm").compiled


@pytest.mark.skipif(
    fused_norm.kernel() is None or not core.use_bf16(torch.device("cpu")),
    reason="no C compiler to build the GroupNorm kernel, or a CPU that computes in fp32",
)
def test_the_compile_command_builds_nothing_where_the_kernel_serves(packages, tiny_run, capsys):
    from ddpm_tui.cli import main

    checkpoint = str(tiny_run / "model_final.pt")
    assert main(["compile", "--checkpoint", checkpoint]) == 0
    assert "Nothing to compile" in capsys.readouterr().out and not packages
    assert main(["compile", "--checkpoint", checkpoint, "--precision", "fp32"]) == 0
    assert "Compiled in" in capsys.readouterr().out and len(packages) == 1  # fp32 calls run in NCHW order


def test_the_compile_cache_outlives_a_reboot_unless_asked_otherwise(monkeypatch, tmp_path):
    monkeypatch.delenv("TORCHINDUCTOR_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert core.compile_cache_dir() == tmp_path / "ddpm-tui" / "compiled"
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", str(tmp_path / "own"))
    assert core.compile_cache_dir() == tmp_path / "own"


def tiny_unet(classes: int = 0) -> torch.nn.Module:
    torch.manual_seed(0)
    model = core.UNet(base_channels=8, channel_mults=(1, 2), attention="none", num_classes=classes).eval()
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(0.05 * torch.randn_like(parameter))  # so the zero-initialised last layers matter
    return model


def test_a_failed_build_runs_the_network_eagerly_with_the_same_output(monkeypatch):
    tried = []

    def broken(network, args, path):
        tried.append(1)
        raise RuntimeError("InvalidCxxCompiler: No working C++ compiler found\nsecond line")

    monkeypatch.setattr(compiling, "build_package", broken)
    model = tiny_unet()
    network = core.compiling.compiled(model, may_build=True)
    x, t = torch.randn(2, 1, 8, 8), torch.tensor([3, 7])
    with torch.no_grad():
        assert torch.equal(network(x, t), model(x, t))
        assert torch.equal(network(x, t), model(x, t))
    assert network.error == "InvalidCxxCompiler: No working C++ compiler found" and len(tried) == 1  # once
    assert core.compile_error(model) == network.error  # what sample prints
    with pytest.raises(RuntimeError):  # a real error in the network still surfaces
        network(torch.randn(2, 3, 8, 8), t)


def test_a_package_serves_every_network_with_the_same_layers_and_loads_each_ones_weights(packages):
    model, same_layers, wider = (
        tiny_unet(),
        core.UNet(base_channels=8, channel_mults=(1, 2), attention="none"),
        tiny_unet(3),
    )
    assert not core.is_cached(model)
    x, t = torch.randn(3, 1, 8, 8), torch.tensor([3, 7, 9])
    with torch.no_grad():
        assert torch.equal(compiling.compiled(model, may_build=True)(x, t), model(x, t))
        assert core.is_cached(model) and core.is_cached(same_layers) and not core.is_cached(wider)
        assert torch.equal(compiling.compiled(same_layers)(x, t), same_layers(x, t))  # its own weights
        assert not torch.equal(same_layers(x, t), model(x, t))
    assert len(packages) == 1  # built once, for both


def test_each_run_loads_the_networks_weights_as_they_are_now(packages):
    """A trainer's preview network changes between epochs: every plan loads its weights again."""
    model, schedule = tiny_unet(), core.NoiseSchedule.create("linear", 20)
    plan = core.plan_sampling(model, schedule, (1, 8, 8), 4, "ddim", steps=2, compile_mode="on")
    core.last_step(plan.run())
    with torch.no_grad():
        model.conv_out.bias.add_(1.0)
    images = {}
    for mode in ("off", "on"):
        plan = core.plan_sampling(model, schedule, (1, 8, 8), 4, "ddim", steps=2, seed=1, compile_mode=mode)
        images[mode] = core.last_step(plan.run()).x
    assert torch.equal(images["on"], images["off"])
    assert compiling.compiled(model).error is None
    runner = next(iter(compiling.compiled(model).runners.values()))
    assert runner.weighed == 2  # once per plan, not once per call


def test_a_network_is_compiled_once_per_process_and_a_batch_of_one_runs_eagerly(packages):
    model = tiny_unet()
    assert compiling.compiled(model) is compiling.compiled(model)
    assert compiling.compiled(tiny_unet()) is not compiling.compiled(model)
    copied = copy.deepcopy(model)  # as the trainer snapshots its EMA network: another network, compiled on its own
    assert getattr(copied, "_compiled", None) is None and compiling.compiled(copied) is not compiling.compiled(model)
    with torch.no_grad():
        compiling.compiled(model, may_build=True)(torch.randn(1, 1, 8, 8), torch.tensor([3]))
    assert not packages  # a package built for one image would fix the batch at one
    with torch.no_grad():
        compiling.compiled(model)(torch.randn(2, 1, 8, 8), torch.tensor([3, 4]))
    assert [shapes for _, shapes in packages.values()] == [[(2, 1, 8, 8), (2,)]]


@pytest.mark.parametrize("classes", [0, 3])
def test_a_compiled_plan_draws_the_same_images(packages, classes):
    """``compile_mode="on"`` routes every call, guided ones too, through the package; with a package that runs
    the same network, the images are those of the eager plan, bit for bit."""
    model, schedule = tiny_unet(classes), core.NoiseSchedule.create("linear", 20)
    images = {}
    for mode in ("off", "on"):
        plan = core.plan_sampling(model, schedule, (1, 8, 8), 4, "ddpm", seed=1, compile_mode=mode)
        assert plan.compiled == (mode == "on")
        images[mode] = core.last_step(plan.run()).x
    assert torch.equal(images["on"], images["off"])
    assert len(packages) == 1


def test_a_v_prediction_network_compiles_its_unet_and_keeps_the_wrapper_eager(packages):
    schedule = core.NoiseSchedule.create("linear", 20)
    predictor = core.objective.noise_predictor(tiny_unet(), schedule, "v")
    x, t = torch.randn(2, 1, 8, 8), torch.tensor([3, 7])
    with torch.no_grad():
        assert torch.equal(compiling.compiled(predictor, may_build=True)(x, t), predictor(x, t))
    [(network, _)] = packages.values()
    assert isinstance(network, core.UNet)
    assert compiling.network_key(predictor) == compiling.network_key(predictor.network)


def test_generate_decides_for_the_whole_run_not_one_batch(monkeypatch):
    """``eval``'s 1,000 images come in batches of 250; at 50 calls each batch alone would not pay for a
    compile, the run does. So every batch's plan asks about all the run's images."""
    asked = []
    monkeypatch.setattr(core.sampling, "should_compile", lambda net, device, calls, images, mode: asked.append(images))
    core.generate(tiny_unet(), core.NoiseSchedule.create("linear", 20), 6, (1, 8, 8), "ddim", steps=2, batch=4)
    assert asked == [6, 6]  # two batches, of 4 and 2 images


def test_group_norm_computes_in_fp32_when_compiled(monkeypatch):
    norm = GroupNorm(2, 4)
    with torch.no_grad():
        norm.weight.normal_(), norm.bias.normal_()
    x = torch.randn(3, 4, 5, 5).bfloat16()
    exact = F.group_norm(x.float(), 2, norm.weight, norm.bias)
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        eager = norm(x)
        monkeypatch.setattr(torch.compiler, "is_compiling", lambda: True)
        traced = norm(x)
    assert eager.dtype == torch.bfloat16 and traced.dtype == torch.float32
    assert torch.allclose(traced, exact, atol=1e-5)
    assert torch.allclose(eager.float(), exact, atol=0.05)  # bf16: 8 bits of mantissa


def test_the_network_compiled_ahead_is_the_one_its_run_saves(tiny_run):
    """``ddpm-tui compile`` builds a fresh network where no checkpoint exists yet; for its compile to serve
    that run's sampling later, it must be the network the run's checkpoint loads: same layers, same wrapper."""
    saved = core.load_model(tiny_run / "model_final.pt")
    fresh = core.untrained_model(saved.config, core.load_dataset(saved.config.dataset))
    assert compiling.network_key(fresh.model) == compiling.network_key(saved.model)
    assert repr(fresh.model) == repr(saved.model) and fresh.image_shape == saved.image_shape
    wider = core.untrained_model(dataclasses.replace(saved.config, base_channels=16), core.load_dataset("mnist"))
    assert compiling.network_key(wider.model) != compiling.network_key(saved.model)


@pytest.mark.parametrize("classes", [0, 3])
def test_compiling_ahead_builds_the_package_runs_load(packages, classes):
    model, schedule = tiny_unet(classes), core.NoiseSchedule.create("linear", 20)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert core.compile_for_sampling(model, schedule, (1, 8, 8)) is None
    # a conditional model draws one image of each class, twice in one batch for classifier-free guidance
    [(_, shapes)] = packages.values()
    assert shapes == ([(2 * classes, 1, 8, 8), (2 * classes,), (2 * classes,)] if classes else
                      [(core.MIN_BATCH, 1, 8, 8), (core.MIN_BATCH,)])  # fmt: skip
    later = tiny_unet(classes)  # another process's network of the same layers
    assert core.is_cached(later)
    plan = core.plan_sampling(later, schedule, (1, 8, 8), 100, "ddpm")  # 2,000 image-calls
    assert plan.compiled
    with torch.autocast("cpu", dtype=torch.bfloat16):
        core.last_step(plan.run())
    assert len(packages) == 1 and compiling.compiled(later).runners  # it loaded the package built ahead, built no other


def test_the_compile_command_compiles_a_checkpoint_or_the_default_network(packages, tiny_run, capsys, without_kernel):
    from ddpm_tui.cli import main

    checkpoint = tiny_run / "model_final.pt"
    assert main(["compile", "--checkpoint", str(checkpoint)]) == 0
    assert "Compiled in" in capsys.readouterr().out
    assert core.is_cached(core.load_model(checkpoint).model)
    default = core.untrained_model(core.TrainConfig(), core.load_dataset("mnist"))
    assert not core.is_cached(default.model)
    assert main(["compile"]) == 0  # what `make run` does once: the network a default run will save
    assert core.is_cached(default.model)


def test_the_compile_command_says_why_it_could_not_and_skips_gpus(monkeypatch, tiny_run, capsys, without_kernel):
    from ddpm_tui.cli import main

    def broken(network, args, path):
        raise RuntimeError("InvalidCxxCompiler: No working C++ compiler found")

    monkeypatch.setattr(compiling, "build_package", broken)
    assert main(["compile", "--checkpoint", str(tiny_run / "model_final.pt")]) == 1
    out = " ".join(capsys.readouterr().out.split())
    assert "could not be compiled (InvalidCxxCompiler: No working C++ compiler found); sampling runs it as it is" in out
    monkeypatch.setattr(core, "resolve_device", lambda name: torch.device("cuda"))
    assert main(["compile"]) == 0
    assert "nothing to do" in capsys.readouterr().out


def test_a_trainers_previews_run_from_the_package_this_machine_has(packages, tmp_path, without_kernel):
    """Once the network's package exists, each epoch's preview (10 calls on 64 images) loads it and that
    epoch's EMA weights, and draws the images the eager network draws."""
    config = core.TrainConfig(max_images=64, timesteps=20, base_channels=8, output_dir=str(tmp_path))
    trainer = core.Trainer(config)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert core.compile_for_sampling(trainer.sampling_model(), trainer.schedule, trainer.data.image_shape) is None
    for epoch in range(2):
        trainer.train_step(trainer.images_at(torch.arange(32)))
        previews = trainer.generate_samples()
        runner = next(iter(compiling.compiled(trainer.sampling_model()).runners.values()))
        assert runner.weighed == epoch + 2  # this epoch's weights (and once for compile_for_sampling's own step)
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(core.trainer, "plan_sampling", functools.partial(core.plan_sampling, compile_mode="off"))
            assert torch.equal(previews, trainer.generate_samples())
