"""Evaluation metrics on inputs whose answers are known, and the eval/compare commands."""

from __future__ import annotations

import json
import re

import pytest
import torch
import torch.nn.functional as F

import core
from core import (
    Evaluator,
    class_entropy,
    class_shares,
    export_images,
    frechet_distance,
    load_classifier,
    load_dataset,
    one_class_warning,
    recognised_share,
)
from ddpm_tui.cli import main


def test_frechet_distance_of_known_gaussians():
    gen = torch.Generator().manual_seed(0)
    a = torch.randn(20000, 4, generator=gen)
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-6)
    shift = torch.tensor([1.0, 2.0, 0.0, 0.0])
    b = torch.randn(20000, 4, generator=gen) + shift
    assert frechet_distance(a, b) == pytest.approx(5.0, abs=0.1)  # ||mu_a - mu_b||^2, equal covariances
    c = 2 * torch.randn(20000, 4, generator=gen)
    # same means; Tr(I + 4I - 2 (4I)^(1/2)) = 4 * (1 + 4 - 4) = 4
    assert frechet_distance(a, c) == pytest.approx(4.0, abs=0.15)


def test_recognised_share_and_class_entropy():
    confident = F.one_hot(torch.tensor([0, 1, 2, 3]), 10).float()
    unsure = torch.full((4, 10), 0.1)
    assert recognised_share(torch.cat([confident, unsure])) == 0.5
    assert class_entropy(F.one_hot(torch.full((50,), 7), 10).float()) == 0.0
    assert class_entropy(F.one_hot(torch.arange(100) % 10, 10).float()) == pytest.approx(1.0)


def test_a_high_recognised_share_of_one_class_comes_with_a_warning():
    """Blobs the classifier calls "7" with confidence are all recognised; the warning says why that is empty.
    The line sits between 90% of one class (entropy 0.21) and 60% of one class (0.61)."""

    def one_class_share(share: float) -> torch.Tensor:
        mostly = round(100 * share)
        return F.one_hot(torch.cat([torch.full((mostly,), 7), torch.arange(100 - mostly) % 9]), 10).float()

    blobs = one_class_share(1.0)
    assert recognised_share(blobs) == 1.0 and "one class" in one_class_warning(class_entropy(blobs))
    assert one_class_warning(class_entropy(one_class_share(0.9))) is not None
    assert one_class_warning(class_entropy(one_class_share(0.6))) is None
    assert one_class_warning(class_entropy(F.one_hot(torch.arange(100) % 10, 10).float())) is None


@pytest.fixture(scope="session")
def evaluator() -> Evaluator:
    return Evaluator(load_classifier("mnist"))


def test_the_classifier_is_accurate(evaluator):
    assert evaluator.classifier.test_accuracy >= 0.97


def test_real_images_score_near_the_floor_and_bad_ones_far_worse(evaluator):
    floor = evaluator.floor(1000)
    real = evaluator.score(evaluator.floor_pool[1000:2000])
    assert real.frechet_distance < 2 * floor.frechet_distance
    assert real.recognised > 0.85 and real.class_entropy > 0.98
    noise = evaluator.score(torch.randn(1000, 1, 28, 28, generator=torch.Generator().manual_seed(0)).clamp(-1, 1))
    assert noise.frechet_distance > 20 * floor.frechet_distance and noise.class_entropy < 0.3
    blurred = evaluator.score(F.avg_pool2d(evaluator.floor_pool[:1000], 5, stride=1, padding=2))
    assert blurred.frechet_distance > 10 * floor.frechet_distance and blurred.recognised < 0.5


def test_class_shares_count_the_most_likely_class():
    probabilities = F.one_hot(torch.tensor([0, 0, 0, 2]), 3).float() * 0.8 + 0.1
    assert class_shares(probabilities) == [0.75, 0.0, 0.25]


def test_training_images_score_as_a_perfect_copy_of_the_training_set_would(evaluator):
    training = evaluator.training(500)
    assert torch.equal(evaluator.training_pool[:500], load_dataset("mnist").images[:500])
    assert training.count == 500 and sum(training.class_shares) == pytest.approx(1.0)
    assert min(training.class_shares) > 0.07 and training.recognised > 0.85
    with pytest.raises(ValueError, match="at most"):
        evaluator.training(len(evaluator.training_pool) + 1)


def test_eval_of_an_image_folder(evaluator, tmp_path, capsys):
    export_images(evaluator.floor_pool[2000:2100], tmp_path / "real")
    assert main(["eval", "--images", str(tmp_path / "real")]) == 0
    out = capsys.readouterr().out
    assert "real floor (100)" in out and "training images (100)" in out and "one class" not in out
    export_images(evaluator.floor_pool[2000:2001].expand(40, -1, -1, -1), tmp_path / "copies")
    assert main(["eval", "--images", str(tmp_path / "copies")]) == 0
    assert "nearly all one class" in capsys.readouterr().out  # 40 copies of one real digit
    export_images(torch.zeros(3, 1, 32, 32), tmp_path / "wrong")
    assert main(["eval", "--images", str(tmp_path / "wrong")]) == 2
    assert "the images are 32x32 gray; mnist images are 28x28 gray" in capsys.readouterr().err


def test_compare_prints_a_row_per_run(evaluator, tiny_train_args, tmp_path, capsys):
    runs = [tmp_path / "a", tmp_path / "b"]
    for run, width in zip(runs, ("8", "16"), strict=True):
        args = [a if a != "8" else width for a in tiny_train_args]
        assert main(["train", *args, "--output_dir", str(run)]) == 0
    capsys.readouterr()
    assert main(["compare", *map(str, runs), "--num_images", "20", "--steps", "5"]) == 0
    out = capsys.readouterr().out
    rows = [line for line in out.splitlines() if re.match(r"│\s+(a|b) │ mnist", line)]
    assert len(rows) == 2, out
    assert (runs[0] / "eval.json").exists()


def test_a_cached_eval_is_reused_only_while_the_sampler_visits_the_same_timesteps_with_the_same_w_and_eta(
    tiny_train_args, tmp_path, capsys
):
    run = tmp_path / "run"
    assert main(["train", *tiny_train_args, "--epochs", "3", "--output_dir", str(run)]) == 0  # keeps a guide
    command = ["eval", "--checkpoint", str(run / "model_final.pt"), "--num_images", "20", "--steps", "5"]
    assert main(command) == 0
    cache = run / "eval.json"
    result = json.loads(cache.read_text())
    assert len(result["settings"]["timesteps"]) == 5 and result["settings"]["timesteps"][0] == 19  # T = 20
    result["scores"]["frechet_distance"] = 12345.0  # marks the cached score
    cache.write_text(json.dumps(result))
    capsys.readouterr()
    assert main(command) == 0
    assert "12345" in capsys.readouterr().out
    assert result["settings"]["guided_sigmas"] == [core.GUIDANCE_SIGMA_MIN, core.GUIDANCE_SIGMA_MAX]
    guided_every_noisy_step = {k: v for k, v in result["settings"].items() if k != "guided_sigmas"}
    for settings in (
        *(
            {**result["settings"], setting: older}
            for setting, older in (("timesteps", [19, 10, 5, 2, 0]), ("autoguidance", 1.75), ("eta", 1.0))
        ),
        guided_every_noisy_step,  # an older ddpm-tui's: the same steps, but guided above sigma = 1
    ):
        cache.write_text(json.dumps({**result, "settings": settings}))
        assert main(command) == 0
        assert "12345" not in capsys.readouterr().out
    # an older ddpm-tui's cache, written before eval scored the training images: redone, not a KeyError
    result = json.loads(cache.read_text())
    result["scores"]["frechet_distance"] = 12345.0
    cache.write_text(json.dumps({k: v for k, v in result.items() if k != "training"}))
    assert main(command) == 0
    assert "12345" not in capsys.readouterr().out and "training" in json.loads(cache.read_text())


def test_the_shipped_classifier_loads_without_training_and_keeps_its_accuracy():
    """The package's classifier (fp16 arrays, no pickle) scores its held-out half as well as it claims."""
    from core.classifier import classifier_split

    classifier = load_classifier("mnist")  # the test cache is empty: this is the bundled file
    _, test, _ = classifier_split("mnist")
    _, probabilities = classifier.features_and_probabilities(test.images)
    accuracy = (probabilities.argmax(1) == test.labels).float().mean().item()
    assert accuracy == pytest.approx(classifier.test_accuracy, abs=0.002) and accuracy > 0.97
