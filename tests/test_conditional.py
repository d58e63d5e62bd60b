"""Class-conditional generation with classifier-free guidance: the network, the label dropout, that the
label is really learned and obeyed, and the commands' --conditional, --class_label and --guidance_scale."""

from __future__ import annotations

import pytest
import torch
from PIL import Image

from core import (
    NoiseSchedule,
    UNet,
    count_parameters,
    guided,
    l_simple,
    last_step,
    load_model,
    per_class_accuracy,
    sample,
)
from ddpm_tui.cli import main


def test_class_embedding_is_added_to_the_time_embedding():
    plain, conditional = UNet(1, 16), UNet(1, 16, num_classes=10)
    assert count_parameters(conditional) - count_parameters(plain) == 11 * 64  # 10 classes + null, time_dim 64
    for p in conditional.parameters():
        torch.nn.init.normal_(p, std=0.05)
    x, t = torch.randn(2, 1, 28, 28), torch.tensor([300, 300])
    assert not torch.allclose(conditional(x, t, torch.tensor([1, 1])), conditional(x, t, torch.tensor([7, 7])))
    torch.testing.assert_close(conditional(x, t), conditional(x, t, torch.tensor([10, 10])))  # None = null class
    with pytest.raises(ValueError, match="--conditional"):
        plain(x, t, torch.tensor([1, 1]))


class LabelSpy(torch.nn.Module):
    null_class = 10

    def forward(self, x, t, y):
        self.seen = y
        return torch.zeros_like(x, requires_grad=True)


def test_labels_are_dropped_to_the_null_class_one_time_in_ten():
    spy, s = LabelSpy(), NoiseSchedule.create("linear", 100)
    labels = torch.randint(0, 10, (20000,), generator=torch.Generator().manual_seed(0))
    torch.manual_seed(0)
    l_simple(spy, s, torch.zeros(20000, 1, 1, 1), labels)
    dropped = spy.seen == 10
    assert dropped.float().mean().item() == pytest.approx(0.1, abs=0.01)
    assert torch.equal(spy.seen[~dropped], labels[~dropped])  # the rest keep their own label


def test_per_class_accuracy():
    probs = torch.nn.functional.one_hot(torch.tensor([0, 0, 1, 2, 2, 2]), 3).float()
    assert per_class_accuracy(probs, torch.tensor([0, 1, 1, 2, 2, 0])) == [0.5, 0.5, 1.0]


def test_a_conditional_model_draws_the_class_it_is_asked_for():
    """Class 0 is dark images, class 1 bright ones: after training, the label alone picks which comes
    out; with w = 0 (the label ignored) both kinds come out."""
    torch.manual_seed(0)
    s = NoiseSchedule.create("linear", 50)
    model = UNet(1, base_channels=16, channel_mults=(1, 2), num_classes=2, attention="none", decoder="lean")
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    labels = torch.arange(128) % 2
    images = (labels.float() * 1.6 - 0.8).reshape(-1, 1, 1, 1).expand(-1, 1, 8, 8)
    for _ in range(250):
        loss = l_simple(model, s, images, labels)
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()

    def draw(label: int, scale: float) -> torch.Tensor:
        x_T = torch.randn(64, 1, 8, 8, generator=torch.Generator().manual_seed(1))
        predictor = guided(model, torch.full((64,), label), scale, model.null_class)
        return last_step(sample(predictor, s, x_T, "dpm++", 10)).x.mean(dim=(1, 2, 3))

    for scale in (1.0, 3.0):
        assert (draw(0, scale) < 0).float().mean() > 0.95
        assert (draw(1, scale) > 0).float().mean() > 0.95
    unconditional = draw(0, 0.0)
    assert 0.2 < (unconditional > 0).float().mean() < 0.8


@pytest.fixture
def conditional_run(tiny_conditional_run):
    return tiny_conditional_run


def test_train_conditional_previews_one_row_per_class(conditional_run):
    loaded = load_model(conditional_run / "model_final.pt")
    assert loaded.config.conditional and loaded.model.num_classes == 10
    width, height = Image.open(conditional_run / "samples" / "epoch_001.png").size
    assert (width, height) == (8 * 30 + 2, 10 * 30 + 2)  # 10 rows of 8 28-pixel images, 2-pixel padding


def test_sample_a_class_or_a_row_per_class(conditional_run, tmp_path, capsys):
    base = ["sample", "--checkpoint", str(conditional_run / "model_final.pt"), "--sampler", "dpm++", "--steps", "5"]
    assert main([*base, "--class_label", "3", "--num_images", "4", "--output", str(tmp_path / "three.png")]) == 0
    assert "class 3 (3), guidance w = 3" in capsys.readouterr().out
    assert (
        main(
            [
                *base,
                "--class_label",
                "all",
                "--num_images",
                "20",
                "--guidance_scale",
                "1",
                "--output",
                str(tmp_path / "all.png"),
            ]
        )
        == 0
    )
    assert Image.open(tmp_path / "all.png").size == (2 * 30 + 2, 10 * 30 + 2)  # a row of 2 per class


@pytest.mark.parametrize(
    "wanted,message",
    [("12", "class 12 is out of range: this model knows classes 0-9"), ("shoe", "choose one of 0, 1, 2")],
)
def test_a_class_the_model_does_not_know_is_one_line(conditional_run, wanted, message, capsys):
    code = main(["sample", "--checkpoint", str(conditional_run / "model_final.pt"), "--class_label", wanted])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1 and message in err, err


def test_class_label_on_an_unconditional_model_is_one_line(tiny_run, capsys):
    code = main(["sample", "--checkpoint", str(tiny_run / "model_final.pt"), "--class_label", "3"])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1 and "--conditional" in err


def test_eval_reports_per_class_accuracy(conditional_run, capsys):
    assert (
        main(
            [
                "eval",
                "--checkpoint",
                str(conditional_run / "model_final.pt"),
                "--num_images",
                "20",
                "--sampler",
                "dpm++",
                "--steps",
                "5",
                "--guidance_scale",
                "0",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "Per-class accuracy, w = 0" in out and "Mean per-class accuracy" in out
    assert out.count("%") >= 10
