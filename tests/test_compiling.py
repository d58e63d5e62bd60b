"""When the network is compiled for sampling, and that a failed compile falls back to the same images.

Real compiles take a minute with an empty cache, so these tests replace ``torch.compile``; what compiling
gains is measured by ``benchmarks/step_variants.py`` and ``benchmarks/headline.py --parts phase3``.
"""

from __future__ import annotations

import dataclasses

import pytest
import torch
import torch.nn.functional as F

import core
from core import compiling
from core.unet import GroupNorm


@pytest.fixture
def compiler(monkeypatch: pytest.MonkeyPatch):
    """Say whether a C++ compiler is installed, whatever this machine has."""

    def installed(present: bool) -> None:
        monkeypatch.setattr(compiling.shutil, "which", lambda name: "/usr/bin/g++" if present else None)

    return installed


def test_auto_compiles_long_cpu_runs_with_a_compiler_sooner_once_cached(compiler):
    compiler(True)
    ddpm_64, fast_64 = (1000, 64), (50, 64)
    assert core.compile_pays("cpu", *ddpm_64, cached=True)
    assert not core.compile_pays("cpu", *ddpm_64, cached=False)  # the first compile costs more than it saves
    assert core.compile_pays("cpu", 1000, 200, cached=False)  # ... except on a run this long
    assert not core.compile_pays("cpu", *fast_64, cached=True)
    assert not core.compile_pays("cuda", *ddpm_64, cached=True)  # measured on CPUs only
    for cached, least in ((True, core.AUTO_MIN_IMAGE_CALLS), (False, core.AUTO_MIN_IMAGE_CALLS_COLD)):
        assert core.compile_pays("cpu", least, 1, cached=cached)
        assert not core.compile_pays("cpu", least - 1, 1, cached=cached)
    compiler(False)
    assert not core.compile_pays("cpu", *ddpm_64, cached=True)
    assert core.compile_pays("cpu", *fast_64, mode="on")
    assert not core.compile_pays("cpu", *ddpm_64, mode="off")
    with pytest.raises(ValueError, match="unknown compile mode"):
        core.compile_pays("cpu", *ddpm_64, mode="fast")


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


def test_a_failed_compile_runs_the_network_eagerly_with_the_same_output(monkeypatch):
    tried = []

    def broken(module, **options):
        def call(*args):
            tried.append(1)
            raise RuntimeError("no C++ compiler found\nsecond line")

        return call

    monkeypatch.setattr(torch, "compile", broken)
    model = tiny_unet()
    network = compiling.CompiledNetwork(model)
    x, t = torch.randn(2, 1, 8, 8), torch.tensor([3, 7])
    with torch.no_grad():
        assert torch.equal(network(x, t), model(x, t))
        assert torch.equal(network(x, t), model(x, t))
    assert network.error == "no C++ compiler found" and len(tried) == 1  # tried once, then eager for good
    assert core.compile_error(model) is None  # this wrapper was made by hand, not by compiled()
    with torch.no_grad():
        compiling.compiled(model)(x, t)
    assert core.compile_error(model) == "no C++ compiler found"  # what sample prints
    with pytest.raises(RuntimeError):  # a real error in the network still surfaces
        network(torch.randn(2, 3, 8, 8), t)


def test_a_compiled_network_is_remembered_by_its_layers_not_its_weights(monkeypatch):
    monkeypatch.setattr(torch, "compile", lambda module, **options: module)
    model, same_layers, wider = (
        tiny_unet(),
        core.UNet(base_channels=8, channel_mults=(1, 2), attention="none"),
        tiny_unet(3),
    )
    assert not core.is_cached(model)
    with torch.no_grad():
        compiling.CompiledNetwork(model)(torch.randn(2, 1, 8, 8), torch.tensor([3, 7]))
    assert core.is_cached(model) and core.is_cached(same_layers) and not core.is_cached(wider)


def test_a_network_is_compiled_once_per_process(monkeypatch):
    monkeypatch.setattr(torch, "compile", lambda module, **options: module)
    model = tiny_unet()
    assert compiling.compiled(model) is compiling.compiled(model)
    assert compiling.compiled(tiny_unet()) is not compiling.compiled(model)


@pytest.mark.parametrize("classes", [0, 3])
def test_a_compiled_plan_draws_the_same_images(monkeypatch, classes):
    """``compile_mode="on"`` routes every call, guided ones too, through the compiled network; with a compile
    that changes nothing, the images are those of the eager plan, bit for bit."""
    compiles = []
    monkeypatch.setattr(torch, "compile", lambda module, **options: compiles.append(options) or module)
    model, schedule = tiny_unet(classes), core.NoiseSchedule.create("linear", 20)
    images = {}
    for mode in ("off", "on"):
        plan = core.plan_sampling(model, schedule, (1, 8, 8), 4, "ddpm", seed=1, compile_mode=mode)
        assert plan.compiled == (mode == "on")
        images[mode] = core.last_step(plan.run()).x
    assert torch.equal(images["on"], images["off"])
    assert compiles == [{"dynamic": False}]


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


def test_auto_reuses_a_network_this_process_has_compiled_even_for_a_short_run(monkeypatch, compiler):
    compiler(False)  # so that only the compile done here can make auto say yes
    monkeypatch.setattr(torch, "compile", lambda module, **options: module)
    model, schedule = tiny_unet(), core.NoiseSchedule.create("linear", 20)
    assert not core.plan_sampling(model, schedule, (1, 8, 8), 2, "ddim", steps=3).compiled
    core.last_step(core.plan_sampling(model, schedule, (1, 8, 8), 2, "ddim", steps=3, compile_mode="on").run())
    assert core.plan_sampling(model, schedule, (1, 8, 8), 2, "ddim", steps=3).compiled
    assert not core.plan_sampling(model, schedule, (1, 8, 8), 2, "ddim", steps=3, compile_mode="off").compiled


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
def test_compiling_ahead_compiles_a_batch_runs_share_and_remembers_the_network(monkeypatch, compiler, classes):
    compiler(True)
    shapes = []

    def fake(module, **options):
        def call(x, t, *labels):
            shapes.append((tuple(x.shape), len(labels)))
            return module(x, t, *labels)

        return call

    monkeypatch.setattr(torch, "compile", fake)
    model, schedule = tiny_unet(classes), core.NoiseSchedule.create("linear", 20)
    assert core.compile_for_sampling(model, schedule, (1, 8, 8)) is None
    # a conditional model draws one image of each class, twice in one batch for classifier-free guidance
    assert shapes == [((2 * classes, 1, 8, 8), 1) if classes else ((core.AHEAD_IMAGES, 1, 8, 8), 0)]
    assert core.AHEAD_IMAGES > 1  # a batch of one would be compiled for one image only
    assert core.is_cached(tiny_unet(classes))  # later processes' auto compiles their long runs
    long_run = core.AUTO_MIN_IMAGE_CALLS // schedule.timesteps  # images for DDPM's T calls each
    assert core.plan_sampling(tiny_unet(classes), schedule, (1, 8, 8), long_run, "ddpm").compiled


def test_the_compile_command_compiles_a_checkpoint_or_the_default_network(monkeypatch, tiny_run, capsys):
    from ddpm_tui.cli import main

    monkeypatch.setattr(torch, "compile", lambda module, **options: module)
    checkpoint = tiny_run / "model_final.pt"
    assert main(["compile", "--checkpoint", str(checkpoint)]) == 0
    assert "Compiled in" in capsys.readouterr().out
    assert core.is_cached(core.load_model(checkpoint).model)
    default = core.untrained_model(core.TrainConfig(), core.load_dataset("mnist"))
    assert not core.is_cached(default.model)
    assert main(["compile"]) == 0  # what `make run` does once: the network a default run will save
    assert core.is_cached(default.model)


def test_the_compile_command_says_why_it_could_not_and_skips_gpus(monkeypatch, tiny_run, capsys):
    from ddpm_tui.cli import main

    def broken(module, **options):
        def call(*args):
            raise RuntimeError("InvalidCxxCompiler: No working C++ compiler found")

        return call

    monkeypatch.setattr(torch, "compile", broken)
    assert main(["compile", "--checkpoint", str(tiny_run / "model_final.pt")]) == 1
    out = " ".join(capsys.readouterr().out.split())
    assert "could not be compiled (InvalidCxxCompiler: No working C++ compiler found); sampling runs it as it is" in out
    monkeypatch.setattr(core, "resolve_device", lambda name: torch.device("cuda"))
    assert main(["compile"]) == 0
    assert "nothing to do" in capsys.readouterr().out
