"""`_unknown_` words as training classes of their own (`--unknown-words`), answered as `_unknown_`."""

import json
import re

import numpy as np
import pytest
import soundfile as sf
import torch

from kws.checkpoint import load_model, save_model
from kws.datasets import speech_commands
from kws.features import LogMel, LogMelConfig
from kws.model import Classifier, new_classifier
from kws.train import TrainConfig, fit

from .conftest import kws

KEYWORDS = ["yes", "no"]
OTHERS = ["bed", "cat", "dog"]


def _corpus(root):
    """Six clips per word, each a tone whose pitch names its word, one per word in validation.
    Returns the word of each clip's second sample (which differs from tone to tone)."""
    words = KEYWORDS + OTHERS
    tones = {}
    for i, word in enumerate(words):
        (root / word).mkdir(parents=True)
        tone = np.round(8000 * np.sin(2 * np.pi * 300 * (i + 1) * np.arange(16000) / 16000)).astype(np.int16)
        tones[int(tone[1])] = word
        for k in range(6):
            sf.write(root / word / f"{k:04d}_nohash_0.wav", tone, 16000, subtype="PCM_16")
    (root / "validation_list.txt").write_text("".join(f"{w}/0000_nohash_0.wav\n" for w in words))
    (root / "testing_list.txt").write_text("")
    assert len(tones) == len(words)
    return tones


def test_unknown_clips_keep_their_word_in_training_only(tmp_path):
    word_of_level = _corpus(tmp_path)
    plain = speech_commands.load(tmp_path, words=KEYWORDS, unknown_percent=100)
    fine = speech_commands.load(tmp_path, words=KEYWORDS, unknown_percent=100, unknown_words=True)
    assert plain.classes is None and fine.labels == plain.labels == ["_silence_", "_unknown_", "yes", "no"]
    assert fine.classes == ["_silence_", "_unknown_/bed", "_unknown_/cat", "_unknown_/dog", "yes", "no"]
    assert torch.equal(fine.train[0], plain.train[0])  # the same clips are drawn
    second = fine.train[0][:, 1].tolist()
    for row, (target, label) in enumerate(zip(fine.train[1].tolist(), plain.train[1].tolist())):
        name = fine.classes[target]
        assert name.split("/")[0] == plain.labels[label]
        if name != "_silence_":  # (silence is cut from the corpus's noise; this one has none)
            word = word_of_level[second[row]]
            assert name == (f"_unknown_/{word}" if word in OTHERS else word), (row, name, word)
    assert {fine.classes[t].split("/")[0] for t in fine.train[1].tolist()} == set(fine.labels)
    assert torch.equal(fine.val[1], plain.val[1])  # judged by labels: validation indexes `labels`
    assert "4 classes (6 in training)" in fine.summary()


def test_the_training_unknown_share_leaves_validation_and_test_alone(tmp_path):
    _corpus(tmp_path)
    (tmp_path / "testing_list.txt").write_text("".join(f"{w}/0001_nohash_0.wav\n" for w in KEYWORDS + OTHERS))
    usual = speech_commands.load(tmp_path, words=KEYWORDS)
    more = speech_commands.load(tmp_path, words=KEYWORDS, train_unknown_percent=100)
    unknown = usual.labels.index("_unknown_")
    # 8 keyword clips in training (4 each): 10% of them is 1 other-word clip, 100% is 8 of the 12
    assert int((usual.train[1] == unknown).sum()) == 1 and int((more.train[1] == unknown).sum()) == 8
    for split in ("val", "test"):  # the same draw, clip for clip
        assert torch.equal(getattr(usual, split)[0], getattr(more, split)[0])
        assert torch.equal(getattr(usual, split)[1], getattr(more, split)[1])
    assert int((more.val[1] == unknown).sum()) == 1


def test_the_model_answers_each_label_with_its_classes_summed_probability(tmp_path):
    labels = ["_silence_", "_unknown_", "yes"]
    classes = ["_silence_", "_unknown_/bed", "_unknown_/cat", "yes"]
    torch.manual_seed(0)
    model = new_classifier(LogMel(LogMelConfig(norm="channel-mean")), labels, members=2, classes=classes).eval()
    x = torch.randn(4, 16000) * 0.1
    with torch.no_grad():
        per_class = model(x, per_member=True)  # what training sees: each member's class logits
        votes = per_class.softmax(-1).mean(0)
        answer = model.probabilities(x)
    assert per_class.shape == (2, 4, 4) and answer.shape == (4, 3)
    expected = torch.stack([votes[:, 0], votes[:, 1] + votes[:, 2], votes[:, 3]], 1)
    assert torch.allclose(answer, expected, atol=1e-6)
    save_model(model, tmp_path / "model.pt")
    again, data = load_model(tmp_path / "model.pt")
    assert data["classes"] == classes and again.classes == classes and again.labels == labels
    with torch.no_grad():
        assert torch.allclose(again.probabilities(x), answer, atol=1e-6)
    with pytest.raises(ValueError, match="belong to no label"):
        Classifier(model.frontend, model.net, labels, ["_silence_", "maybe/bed", "_unknown_/cat", "yes"])
    with pytest.raises(ValueError, match="label yes has no class"):
        Classifier(model.frontend, model.net, labels, ["_silence_", "_unknown_/bed", "_unknown_/cat", "_unknown_/dog"])


def test_the_trainer_learns_the_classes_and_reports_labels(tmp_path):
    _corpus(tmp_path / "corpus")
    splits = speech_commands.load(tmp_path / "corpus", words=KEYWORDS, unknown_percent=100, unknown_words=True)
    torch.manual_seed(0)
    model = new_classifier(LogMel(), splits.labels, classes=splits.classes)
    metrics = fit(model, splits, TrainConfig(epochs=25, batch_size=8, lr=3e-3), tmp_path / "run",
                  generator=torch.Generator().manual_seed(0), progress=False)
    assert metrics["history"][-1]["train_accuracy"] == 1.0  # tones: easily told apart
    assert metrics["val_accuracy"] == 1.0  # the validation targets are labels, and so are the answers
    with pytest.raises(ValueError, match="training targets"):
        fit(new_classifier(LogMel(), splits.labels), splits, TrainConfig(epochs=1), tmp_path / "bad",
            generator=torch.Generator(), progress=False)


def test_commands_answer_labels_and_refuse_a_damaged_class_list(tmp_path):
    """`classify` and the ONNX export of a model with classes answer with labels; a checkpoint whose
    classes do not fit its network or its labels is one line."""
    pytest.importorskip("onnxruntime")
    torch.manual_seed(0)
    labels = ["_silence_", "_unknown_", "yes", "no"]
    classes = ["_silence_", "_unknown_/bed", "_unknown_/cat", "yes", "no"]
    model = new_classifier(LogMel(LogMelConfig(norm="channel-mean")), labels, members=2, classes=classes)
    save_model(model, tmp_path / "model.pt", epoch=1, val_accuracy=0.0, dataset="synth", train_args={})
    (tmp_path / "clips").mkdir()
    rng = np.random.default_rng(0)
    for k in range(3):
        sf.write(tmp_path / "clips" / f"{k}.wav", (0.1 * rng.standard_normal(16000)).astype("float32"), 16000)
    r = kws("export", "--format", "onnx", "--model", tmp_path / "model.pt", "-o", tmp_path / "m.onnx",
            "--check", tmp_path / "clips")
    assert r.returncode == 0, r.stderr
    assert float(re.search(r"from PyTorch on 3 clips.*: (\S+)", r.stdout).group(1)) < 1e-4
    clips = sorted((tmp_path / "clips").glob("*.wav"))
    for source in (tmp_path / "model.pt", tmp_path / "m.onnx"):
        r = kws("classify", "--model", source, "--json", *clips)
        assert r.returncode == 0, r.stderr
        answers = json.loads(r.stdout)
        assert len(answers) == 3 and all(a["label"] in labels for a in answers), answers
        assert "_unknown_/" not in r.stdout  # (no class name leaks out, in the runners-up either)
    data = torch.load(tmp_path / "model.pt", weights_only=True)
    for damage, message in ((["_unknown_/dog"], "6 classes but the network has 5 outputs"),
                            (None, "label banana has no class")):
        broken = {**data, "classes": classes + damage} if damage else {**data, "labels": labels + ["banana"]}
        torch.save(broken, tmp_path / "broken.pt")
        r = kws("classify", "--model", tmp_path / "broken.pt", clips[0])
        assert r.returncode == 2 and message in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr


def test_each_epoch_draws_its_unknown_clips_anew_from_every_other_word(tmp_path):
    """`--unknown-each-epoch`: the training split keeps every other-word clip, each epoch shows
    the fixed draw's number of them, drawn anew, and every keyword clip once; validation and test
    are the fixed draw's."""
    word_of_level = _corpus(tmp_path / "corpus")
    fixed = speech_commands.load(tmp_path / "corpus", words=KEYWORDS, unknown_percent=30, unknown_words=True)
    each = speech_commands.load(tmp_path / "corpus", words=KEYWORDS, unknown_percent=30, unknown_words=True,
                                unknown_each_epoch=True)
    assert fixed.draw is None and each.draw is not None
    for split in ("val", "test"):
        assert all(torch.equal(a, b) for a, b in zip(getattr(fixed, split), getattr(each, split)))
    pool = each.draw.rows
    assert len(pool) == 3 * 5 and each.draw.per_epoch == 3  # 5 training clips of each other word; 30% of 10
    assert {word_of_level[v] for v in each.train[0][pool, 1].tolist()} == set(OTHERS)
    assert each.epoch_size() == len(fixed.train[1]) and "train 14 an epoch (of 26)" in each.summary()
    generator, seen = torch.Generator().manual_seed(0), set()
    for _ in range(40):
        order = each.epoch_order(generator)
        assert len(order) == each.epoch_size() == len(set(order.tolist()))
        drawn = set(order.tolist()) & set(pool.tolist())
        assert len(drawn) == 3 and set(order.tolist()) - drawn == set(range(len(each.train[1]))) - set(pool.tolist())
        seen |= drawn
    assert seen == set(pool.tolist())  # over a run the net hears every other-word clip

    calls = []

    def spy(g):
        calls.append(each.__class__.epoch_order(each, g))
        return calls[-1]

    each.epoch_order = spy  # the trainer takes each epoch's rows from the dataset
    torch.manual_seed(0)
    model = new_classifier(LogMel(), each.labels, classes=each.classes)
    metrics = fit(model, each, TrainConfig(epochs=3, batch_size=8, lr=3e-3), tmp_path / "run",
                  generator=torch.Generator().manual_seed(0), progress=False)
    assert len(calls) == 3 and len(metrics["history"]) == 3
    assert metrics["samples"]["train"] == 26
