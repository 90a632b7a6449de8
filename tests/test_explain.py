"""Pictures of what the network sees, and a Grad-CAM that points where the evidence is."""

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from PIL import Image

from kws.checkpoint import load_model
from kws.datasets.images import read_idx
from kws.explain import grad_cam

from .conftest import SHARED, kws


def _png_size(path: Path) -> tuple[int, int]:
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with Image.open(path) as img:
        img.verify()
    with Image.open(path) as img:
        return img.size


def _held_out(corpus: Path, word: str, n: int) -> list[Path]:
    names = [p for p in (corpus / "testing_list.txt").read_text().split() if p.startswith(word + "/")]
    return [corpus / p for p in names[:n]]


def test_spectrogram_with_the_default_and_the_model_frontend(small_corpus, trained_run, tmp_path):
    clip = _held_out(small_corpus, "yes", 1)[0]
    r = kws("spectrogram", clip, "-o", tmp_path / "a.png")
    assert r.returncode == 0, r.stderr
    w, h = _png_size(tmp_path / "a.png")
    assert 600 <= w <= 2000 and 300 <= h <= 1500
    long = tmp_path / "long.wav"  # a longer stereo file at another rate: one time axis for both panels
    audio, _ = sf.read(clip, dtype="float32")
    sf.write(long, np.stack([np.tile(audio, 3)] * 2, 1), 16000)
    r = kws("spectrogram", long, "--model", trained_run / "model.pt", "-o", tmp_path / "b.png")
    assert r.returncode == 0, r.stderr
    assert _png_size(tmp_path / "b.png")[0] >= 600


def test_explain_writes_a_picture_for_a_clip_and_a_digit(small_corpus, trained_run, digits_run, tmp_path):
    clip = _held_out(small_corpus, "stop", 1)[0]
    r = kws("explain", clip, "--model", trained_run / "model.pt", "-o", tmp_path / "clip.png")
    assert r.returncode == 0, r.stderr
    assert "Grad-CAM for" in r.stdout
    w, h = _png_size(tmp_path / "clip.png")
    assert 800 <= w <= 2500 and 600 <= h <= 2500
    digit = tmp_path / "seven.png"
    img = read_idx(SHARED / "mnist" / "t10k-images-idx3-ubyte.gz")[0] if (SHARED / "mnist").is_dir() \
        else np.pad(np.full((20, 4), 255, np.uint8), ((4, 4), (12, 12)))
    Image.fromarray(img).resize((84, 84)).save(digit)
    r = kws("explain", digit, "--model", digits_run / "model.pt", "-o", tmp_path / "digit.png", "--target", "7")
    assert r.returncode == 0, r.stderr
    assert "Grad-CAM for 7" in r.stdout
    assert _png_size(tmp_path / "digit.png")[1] >= 600


def test_explain_and_spectrogram_errors_are_one_line(trained_run, digits_run, tmp_path):
    for args in (["explain", tmp_path / "missing.wav", "--model", trained_run / "model.pt"],
                 ["spectrogram", tmp_path / "missing.wav"],
                 ["spectrogram", tmp_path, "--model", digits_run / "model.pt"],
                 ["explain", tmp_path / "x.wav", "--model", trained_run / "model.pt", "--target", "banana"]):
        sf.write(tmp_path / "x.wav", np.zeros(16000, np.float32), 16000)
        r = kws(*args)
        assert r.returncode == 2, (args, r.stderr)
        assert len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr


def _quiet_second(word: np.ndarray, start: int) -> torch.Tensor:
    x = 0.001 * np.random.default_rng(0).standard_normal(16000).astype(np.float32)
    x[start:start + len(word)] += word
    return torch.from_numpy(x)[None]


def test_grad_cam_follows_the_word_in_time(small_corpus, trained_run):
    """The same word placed in the first, then in the second half of a quiet second: the heat's
    share in the first half must fall when the word moves out of it.

    Averaged over twelve clips, and as a difference of the two placements, so that a model's own
    leaning to one side cancels. Heat that ignores time scores 0. The fixture models I measured
    scored 0.70 (the word's half held 0.84-0.87 of the heat); single clips of a short "no" move
    little either way, so no clip is checked alone. (Fixture models trained with unknown words as
    classes scored 0.10-0.36 in four builds: their heat spreads more, see conftest.)"""
    model, _ = load_model(trained_run / "model.pt")
    shifts = []
    for word in ("yes", "no", "stop"):
        for path in _held_out(small_corpus, word, 4):
            clip, _ = sf.read(path, dtype="float32")
            loud = np.flatnonzero(np.abs(clip) > 0.05 * np.abs(clip).max())
            spoken = clip[loud[0]:loud[-1] + 1][:7600]
            spoken = 0.3 * spoken / np.abs(spoken).max()
            first_half = []
            for start in (7600 - len(spoken), 8400):  # ending just before the middle; starting just after
                heat, _ = grad_cam(model, _quiet_second(spoken, start), model.labels.index(word))
                first_half.append(float(heat[:, :heat.shape[1] // 2].sum() / heat.sum()))
            shifts.append(first_half[0] - first_half[1])
    assert np.mean(shifts) > 0.2, np.round(shifts, 2)


@pytest.mark.parametrize("side", ["left", "right"])
def test_grad_cam_finds_a_shifted_digit(digits_run, side):
    mnist = SHARED / "mnist" / "t10k-images-idx3-ubyte.gz"
    if not mnist.exists():
        pytest.skip(f"MNIST test images not found at {mnist}")
    model, _ = load_model(digits_run / "model.pt")
    for img in read_idx(mnist)[:12]:
        small = np.asarray(Image.fromarray(img).resize((16, 16), Image.BILINEAR))
        canvas = np.zeros((28, 28), np.uint8)
        left = 0 if side == "left" else 12
        canvas[6:22, left:left + 16] = small
        heat, _ = grad_cam(model, torch.from_numpy(canvas)[None])
        on_left = heat[:, :14].sum() / heat.sum()
        assert (on_left if side == "left" else 1 - on_left) > 0.5, (side, on_left)
