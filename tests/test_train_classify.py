"""A short real training run, then classify on clips the model never saw."""

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from kws.checkpoint import load_model
from kws.datasets.images import load_digits
from kws.errors import UserError
from kws.features import PixelScale
from kws.model import new_classifier
from kws.train import TrainConfig, fit

from .conftest import FIXTURE_EPOCHS, kws, signal_after_first_epoch


def test_training_beats_chance_widely(trained_run):
    metrics = json.loads((trained_run / "metrics.json").read_text())
    assert metrics["labels"] == ["_silence_", "_unknown_", "yes", "no", "stop"]
    assert metrics["epochs"] == FIXTURE_EPOCHS and len(metrics["history"]) == FIXTURE_EPOCHS
    assert 0 <= metrics["val_accuracy"] <= 1 and metrics["train_seconds"] > 0
    assert metrics["test_accuracy"] >= 0.85  # chance is 0.2
    for name in ("model.pt", "last.pt", "curves.png", "confusion.png"):
        assert (trained_run / name).stat().st_size > 0


def test_a_class_weight_scales_that_class_in_the_training_loss(tmp_path):
    """Weight 0 for one digit: its examples teach nothing, so the net stops saying it; weight 1 for
    all is the plain loss. (`kws train --unknown-weight` is the same mechanism for `_unknown_`.)"""
    splits = load_digits(seed=0)
    x, y = splits.test
    three = y == splits.labels.index("3")
    recall = {}
    for name, weights in (("plain", {}), ("no threes", {"3": 0.0})):
        torch.manual_seed(0)
        model = new_classifier(PixelScale(), splits.labels)
        fit(model, splits, TrainConfig(epochs=3, class_weights=weights, device="cpu"), tmp_path / name,  # (where x is)
            generator=torch.Generator().manual_seed(0), progress=False)
        model.eval()
        with torch.no_grad():
            said = model(x).argmax(1)
        recall[name] = float((said[three] == y[three]).float().mean())
        assert float((said[~three] == y[~three]).float().mean()) > 0.8, name  # the other digits are learned
    assert recall["plain"] > 0.8 and recall["no threes"] < 0.1, recall
    with pytest.raises(UserError, match="_unknown_"):
        fit(new_classifier(PixelScale(), splits.labels), splits, TrainConfig(epochs=1, class_weights={"_unknown_": 0.5}),
            tmp_path / "bad", generator=torch.Generator(), progress=False)


def test_checkpoint_is_plain_data_and_self_contained(trained_run):
    data = torch.load(trained_run / "model.pt", weights_only=True)
    assert data["labels"] == ["_silence_", "_unknown_", "yes", "no", "stop"]
    assert data["frontend"]["type"] == "logmel" and "mel_basis" in "".join(data["state_dict"])
    assert data["train_args"]["dataset"].endswith("synth")
    recipe = data["train_args"]["recipe"]
    assert recipe["name"] == "speech-commands"  # (asked for by name: the corpus itself would get synth)
    assert data["frontend"]["config"]["norm"] == recipe["norm"] == "channel-mean"
    assert recipe["members"] == 2 and data["net"]["members"] == 2
    assert recipe["unknown_words"] is False and "classes" not in data
    model, _ = load_model(trained_run / "model.pt")
    assert model(torch.zeros(1, 16000)).shape == (1, 5)


def _held_out(corpus, word, n):
    listed = (corpus / "testing_list.txt").read_text().split()
    return [corpus / p for p in listed if p.startswith(word + "/")][:n]


def test_classify_unseen_clips_including_44k_stereo(trained_run, small_corpus, tmp_path):
    clips = {w: _held_out(small_corpus, w, 4) for w in ("yes", "no", "stop")}
    # One held-out clip re-recorded at 44.1 kHz stereo, the way a laptop saves it.
    import soxr

    mono, _ = sf.read(clips["stop"][0], dtype="float32")
    stereo = np.stack([soxr.resample(mono, 16000, 44100)] * 2, axis=1) * [1.0, 0.8]
    odd = tmp_path / "stop_44k_stereo.wav"
    sf.write(odd, stereo, 44100)
    files = [f for fs in clips.values() for f in fs] + [odd]
    r = kws("classify", "--model", trained_run / "model.pt", "--json", "--top-k", "2", *files)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert [o["file"] for o in out] == [str(f) for f in files]
    assert all(len(o["top"]) == 2 and o["top"][0]["label"] == o["label"] for o in out)
    truth = [f.parent.name for f in files[:-1]] + ["stop"]
    correct = sum(o["label"] == t for o, t in zip(out, truth))
    assert correct >= 9, [(o["label"], t) for o, t in zip(out, truth)]
    assert abs(sum(p["probability"] for p in out[0]["top"])) <= 1.0 + 1e-6


def test_classify_long_clip_finds_the_word_window(trained_run, small_corpus, tmp_path):
    clip, _ = sf.read(_held_out(small_corpus, "yes", 1)[0], dtype="float32")
    long = np.concatenate([np.zeros(16000 * 2, np.float32), clip, np.zeros(8000, np.float32)])
    sf.write(tmp_path / "long.wav", long, 16000)
    r = kws("classify", "--model", trained_run / "model.pt", tmp_path / "long.wav")
    assert r.returncode == 0, r.stderr
    assert ": yes (" in r.stdout and "@ " in r.stdout


def test_classify_uses_the_latest_run_and_says_so(trained_run, small_corpus, tmp_path):
    runs = tmp_path / "runs"
    (runs / "a").mkdir(parents=True)
    (runs / "a" / "model.pt").write_bytes((trained_run / "model.pt").read_bytes())
    r = kws("classify", _held_out(small_corpus, "no", 1)[0], env={"KWS_RUNS_DIR": str(runs)})
    assert r.returncode == 0, r.stderr
    assert "most recent run" in r.stderr and str(runs / "a" / "model.pt") in r.stderr


def test_evaluate_reports_and_draws(trained_run, small_corpus, tmp_path):
    png = tmp_path / "cm.png"
    r = kws("evaluate", "--model", trained_run / "model.pt", "--dataset", small_corpus, "--json", "-o", png)
    assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout)
    metrics = json.loads((trained_run / "metrics.json").read_text())
    assert abs(report["accuracy"] - metrics["test_accuracy"]) < 1e-9
    assert set(report["per_class"]) == set(metrics["labels"])
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_evaluate_a_plain_folder_scores_words_the_model_does_not_know_as_rejections(trained_run, small_corpus,
                                                                                    tmp_path):
    import shutil

    folder = tmp_path / "recordings"
    for word in ("yes", "bed", "house"):  # a keyword, and two words behind _unknown_
        (folder / word).mkdir(parents=True)
        for clip in _held_out(small_corpus, word, 6):
            shutil.copy(clip, folder / word / clip.name)
    r = kws("evaluate", "--model", trained_run / "model.pt", "--dataset", folder, "--json")
    assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout)
    assert report["count"] == 6 and report["skipped"] == ["bed", "house"]
    unknown = report["unknown_words"]
    assert unknown["count"] == 12 and set(unknown["per_word"]) == {"bed", "house"}
    assert set(unknown["taken_for"]) <= {"yes", "no", "stop"}
    # The same clips one by one through `classify`: the report counts exactly what the model answers.
    # (How many the small fixture model refuses moves by clips from build to build of the corpus.)
    c = kws("classify", *sorted(folder.glob("*/*.wav")), "--model", trained_run / "model.pt", "--json")
    assert c.returncode == 0, c.stderr
    said = [(Path(a["file"]).parent.name, a["label"]) for a in json.loads(c.stdout)]
    assert len(said) == 18
    others = [label for word, label in said if word != "yes"]
    refused = [label for label in others if label in ("_unknown_", "_silence_")]
    assert unknown["rejected"] == pytest.approx(len(refused) / 12)
    assert unknown["taken_for"] == Counter(label for label in others if label not in refused)
    assert report["accuracy"] == pytest.approx([label for word, label in said if word == "yes"].count("yes") / 6)
    text = kws("evaluate", "--model", trained_run / "model.pt", "--dataset", folder)
    assert "words the model does not know (bed, house)" in text.stdout and "rejected" in text.stdout


def test_sigterm_saves_and_resume_reaches_the_same_weights(small_corpus, tmp_path):
    import signal

    args = ["train", "--dataset", small_corpus, "--words", "yes,no", "--epochs", "3", "--seed", "3",
            "--recipe", "speech-commands", "--members", "1",
            "--calibration-minutes", "0"]
    full = kws(*args, "--out", tmp_path / "full")
    assert full.returncode == 0, full.stderr
    status, rest_of_stderr = signal_after_first_epoch([*args, "--out", tmp_path / "part"], signal.SIGTERM)
    assert status == 130
    assert "--resume" in rest_of_stderr and "Traceback" not in rest_of_stderr
    resumed = kws(*args, "--out", tmp_path / "part", "--resume")
    assert resumed.returncode == 0, resumed.stderr
    a = torch.load(tmp_path / "full" / "last.pt", weights_only=True)["model"]
    b = torch.load(tmp_path / "part" / "last.pt", weights_only=True)["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_bfloat16_training_learns_keeps_float32_weights_and_a_float32_frontend(tmp_path):
    """Mixed precision changes the net's arithmetic in training only: the digits are still learned,
    the saved weights are float32, and the frontend's images stay float32 inside the autocast."""
    from kws.features import LogMel
    from kws.train import autocast_dtype

    splits = load_digits(seed=0)
    torch.manual_seed(0)
    model = new_classifier(PixelScale(), splits.labels)
    metrics = fit(model, splits, TrainConfig(epochs=3, precision="bfloat16"), tmp_path / "bf16",
                  generator=torch.Generator().manual_seed(0), progress=False)
    assert metrics["test_accuracy"] > 0.8  # chance is 0.1
    assert metrics["autocast"] == "bfloat16"
    saved = torch.load(tmp_path / "bf16" / "model.pt", weights_only=True)["state_dict"]
    assert all(v.dtype == torch.float32 for v in saved.values() if v.is_floating_point())

    audio = new_classifier(LogMel(), ["_silence_", "_unknown_", "yes"])
    seen = []
    audio.frontend.register_forward_hook(lambda _m, _i, out: seen.append(out.dtype))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        logits = audio(torch.randn(2, 16000) * 0.1)
    assert seen == [torch.float32] and logits.dtype == torch.bfloat16

    assert autocast_dtype("float32", torch.device("cpu")) is None
    assert autocast_dtype("bfloat16", torch.device("cpu")) == torch.bfloat16
    assert autocast_dtype("auto", torch.device("cpu")) in (None, torch.bfloat16)
    with pytest.raises(UserError, match="--precision"):
        autocast_dtype("half", torch.device("cpu"))
