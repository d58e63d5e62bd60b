"""Your own images: a folder as a dataset (formats, sizes, colour, classes, the cache, the held-out split),
the memorised share, and every bad folder as one line with exit status 2 from a real process."""

from __future__ import annotations

import json
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import core
from core import folder as folder_module
from ddpm_tui.cli import main


def bomb_png(path: Path, side: int = 100_000) -> Path:
    """A PNG whose header declares side x side pixels and whose data is a few bytes: a decompression bomb."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0")) + chunk(b"IEND", b"")
    )
    return path


def test_every_format_decodes_to_the_centre_square(tmp_path):
    """PNG, JPEG, BMP, GIF (first frame), WebP and TIFF are found recursively, resized on the shorter side
    and centre-cropped: a 60x30 image whose middle 30x30 is white comes out white."""
    picture = np.zeros((30, 60, 3), np.uint8)
    picture[:, 15:45] = 255
    for suffix in (".png", ".jpg", ".bmp", ".gif", ".webp", ".tiff"):
        (tmp_path / "deep" / "er").mkdir(parents=True, exist_ok=True)
        Image.fromarray(picture).save(tmp_path / "deep" / "er" / f"picture{suffix}")
    data = core.load_folder(tmp_path, image_size=16)
    assert data.image_shape == (1, 16, 16)  # every image is gray, so the dataset is
    everything = torch.cat([data.pixels, core.load_folder(tmp_path, "test", image_size=16).pixels])
    assert len(everything) == 6
    assert everything.float().mean() > 240  # lossy formats stay near white


def test_alpha_is_composited_onto_black_and_colour_is_kept(tmp_path):
    rgba = np.zeros((8, 8, 4), np.uint8)
    rgba[..., 0] = 255  # pure red, transparent in the left half
    rgba[:, 4:, 3] = 255
    for i in range(4):
        Image.fromarray(rgba).save(tmp_path / f"{i}.png")
    pixels = torch.cat([core.load_folder(tmp_path, split, image_size=8).pixels for split in ("train", "test")])
    assert pixels.shape[1] == 3
    assert (pixels[:, 0, :, :4] == 0).all() and (pixels[:, 0, :, 4:] == 255).all()
    assert (pixels[:, 1:] == 0).all()
    assert core.load_folder(tmp_path, image_size=8, channels=1).pixels.shape[1] == 1


def test_default_size_is_the_most_common_rounded_and_capped(tmp_path):
    assert folder_module.default_image_size([(29, 31), (29, 31), (500, 500)]) == 28  # shorter side 29 -> 28
    assert folder_module.default_image_size([(640, 480)] * 3) == 64
    assert folder_module.default_image_size([(5, 5)]) == 8


def test_classes_are_sorted_sub_folders_and_the_split_is_stable(tmp_path, digits_folder):
    digits_folder(tmp_path, 200)
    listing = core.list_folder(tmp_path)
    assert listing.classes == tuple(f"digit_{d}" for d in range(10))
    train, test = core.load_folder(tmp_path), core.load_folder(tmp_path, "test")
    assert train.classes == listing.classes and train.image_shape == (1, 28, 28)
    assert (len(train), len(test)) == (180, 20)
    again = core.load_folder(tmp_path, "test")
    assert torch.equal(again.pixels, test.pixels)  # the same held-out images on every start
    real = core.load_dataset("mnist", "train")
    assert torch.equal(torch.sort(torch.cat([train.labels, test.labels])).values, torch.sort(real.labels[:200]).values)


def test_a_second_start_reads_the_cache_and_a_changed_folder_decodes_again(tmp_path, monkeypatch, digits_folder):
    digits_folder(tmp_path, 40, classes=False)
    first = core.load_folder(tmp_path)

    def no_decoding(path, size):
        raise AssertionError("decoded again")

    monkeypatch.setattr(folder_module, "decode", no_decoding)
    assert torch.equal(core.load_folder(tmp_path).pixels, first.pixels)
    Image.fromarray(np.zeros((28, 28), np.uint8)).save(tmp_path / "new.png")
    with pytest.raises(AssertionError, match="decoded again"):
        core.load_folder(tmp_path)


def test_nearest_training_matches_brute_force():
    generator = torch.Generator().manual_seed(0)
    training = torch.randint(0, 256, (300, 1, 6, 6), dtype=torch.uint8, generator=generator)
    queries = torch.rand(20, 1, 6, 6, generator=generator) * 2 - 1
    distances, index = core.nearest_training(queries, training)
    exact = ((queries + 1) / 2).flatten(1)[:, None] - (training.float() / 255).flatten(1)[None]
    rms = exact.square().mean(-1).sqrt()
    assert torch.equal(index, rms.argmin(1))
    assert torch.allclose(distances, rms.min(1).values, atol=1e-5)


def test_copies_score_one_and_held_out_images_about_five_percent():
    train, test = core.load_dataset("mnist", "train"), core.load_dataset("mnist", "test")
    copies = core.memorisation(train.pixels[:300], train.pixels, test.pixels[:2000])
    assert copies.memorised == 1.0 and copies.median_distance < 1e-3
    fresh = core.memorisation(test.pixels[2000:3000], train.pixels, test.pixels[:2000])
    assert 0.02 <= fresh.memorised <= 0.09
    assert 0.8 < fresh.median_distance / fresh.held_out_median < 1.2


def test_eval_images_scores_copies_near_one_and_held_out_near_five_percent(tmp_path, capsys):
    train, test = core.load_dataset("mnist", "train"), core.load_dataset("mnist", "test")
    core.export_images(train.images[:100], tmp_path / "copies")
    core.export_images(test.images[5000:5400], tmp_path / "held_out")
    results = []
    for name in ("copies", "held_out"):
        capsys.readouterr()
        assert main(["eval", "--images", str(tmp_path / name), "--json", "--nearest", str(tmp_path / "n.png")]) == 0
        results.append(json.loads(capsys.readouterr().out))
    assert results[0]["memorised"] == 1.0
    assert 0.01 <= results[1]["memorised"] <= 0.1
    assert Image.open(tmp_path / "n.png").size[0] > 8 * 28  # eight columns: four pairs side by side


def test_a_class_folder_trains_conditionally_and_everything_works_on_it(folder_run, tmp_path, capsys):
    payload = torch.load(folder_run / "model_final.pt", weights_only=True)
    assert payload["data"]["classes"] == [f"digit_{d}" for d in range(10)] and payload["image_shape"] == [1, 28, 28]
    assert payload["data"]["images"] == 64  # --max_images of the 108 training images
    model = str(folder_run / "model_final.pt")
    assert main(["sample", "--checkpoint", model, "--class_label", "digit_7", "--sampler", "ddim", "--steps", "3",
                 "--num_images", "4", "--output", str(tmp_path / "seven.png")]) == 0  # fmt: skip
    assert "class 7 (digit_7)" in capsys.readouterr().out
    assert main(["eval", "--checkpoint", model, "--num_images", "20", "--steps", "3", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert "scores" not in result and 0 <= result["memorised"] <= 1 and len(result["nearest_class_shares"]) == 10
    assert main(["eval", "--checkpoint", model, "--num_images", "20", "--steps", "3"]) == 0
    assert "no Frechet distance" in capsys.readouterr().out
    inspect = ["inspect", "--checkpoint", model, "--num_images", "4", "--t", "5", "--output", str(tmp_path / "i.png")]
    assert main(inspect) == 0


def test_a_folder_with_an_unreadable_file_skips_it_and_says_so(tmp_path, digits_folder):
    digits_folder(tmp_path, 40, classes=False)
    (tmp_path / "broken.png").write_bytes(b"not a png at all")
    bomb_png(tmp_path / "bomb.png")
    data = core.load_folder(tmp_path)
    assert len(data) + len(core.load_folder(tmp_path, "test")) == 40
    assert "2 files skipped (first: bomb.png, refused unread" in data.source


def test_a_folder_smaller_than_a_batch_trains_with_a_note(tmp_path, tiny_train_args, digits_folder, capsys):
    folder = digits_folder(tmp_path / "few", 12, classes=False)
    argv = ["train", *tiny_train_args, "--dataset", "folder", "--data_dir", str(folder)]
    assert main([*argv, "--output_dir", str(tmp_path / "run")]) == 0
    out = " ".join(capsys.readouterr().out.split())  # as one line, however the console wrapped it
    assert "11 training images are fewer than one batch of 32: each step trains on all 11" in out


def test_every_bad_folder_is_one_line_and_exit_2(tmp_path, tiny_train_args, digits_folder, capsys):
    """Each bad folder: one line on stderr and status 2; two of them through a real process, with no traceback."""
    (tmp_path / "empty").mkdir()
    (tmp_path / "unreadable").mkdir()
    (tmp_path / "unreadable" / "a.png").write_bytes(b"garbage")
    (tmp_path / "bomb").mkdir()
    bomb_png(tmp_path / "bomb" / "huge.png")
    digits_folder(tmp_path / "classes", 30)
    (tmp_path / "classes" / "digit_x").mkdir()
    digits_folder(tmp_path / "flat", 40, classes=False)
    cases = {
        "does not exist": ["--data_dir", str(tmp_path / "missing")],
        "holds no images": ["--data_dir", str(tmp_path / "empty")],
        "a.png, not a readable image": ["--data_dir", str(tmp_path / "unreadable")],
        "huge.png, refused unread": ["--data_dir", str(tmp_path / "bomb")],
        "--image_size must be 8 to 256 pixels, got 4": ["--data_dir", str(tmp_path / "flat"), "--image_size", "4"],
        "--image_size must be 8 to 256 pixels, got 300": ["--data_dir", str(tmp_path / "flat"), "--image_size", "300"],
        "digit_x holds no images": ["--data_dir", str(tmp_path / "classes")],
        "--dataset folder needs --data_dir": [],
        "--conditional needs two or more classes": ["--data_dir", str(tmp_path / "flat"), "--conditional"],
    }

    def argv(case: list[str]) -> list[str]:
        folder = ["--max_images", "1000", "--dataset", "folder", *case, "--output_dir", str(tmp_path / "out")]
        return ["train", *tiny_train_args, *folder]

    pipes = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE, "text": True}
    real = ("huge.png, refused unread", "digit_x holds no images")
    running = {m: subprocess.Popen([sys.executable, "-m", "ddpm_tui", *argv(cases[m])], **pipes) for m in real}
    for message, case in cases.items():
        with pytest.raises(SystemExit) as exited:
            raise SystemExit(main(argv(case)))
        err = capsys.readouterr().err.strip()
        assert exited.value.code == 2 and message in err and len(err.splitlines()) == 1, (message, err)
    for message, process in running.items():
        _, stderr = process.communicate(timeout=120)
        assert process.returncode == 2, (message, stderr)
        assert message in stderr and "Traceback" not in stderr
        assert len(stderr.strip().splitlines()) == 1, stderr
