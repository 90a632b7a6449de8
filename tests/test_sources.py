"""Several sources in one dataset (`synth+folder`), a user's own clips split by hash, and how each
kind of folder is recognised."""

import json
from dataclasses import replace

import numpy as np
import pytest
import soundfile as sf
import torch

from kws.datasets import load_dataset
from kws.datasets.speech_commands import hash_split, load, split_lists
from kws.errors import UserError
from kws.features import LogMel
from kws.model import new_classifier
from kws.recipes import RECIPES, SYNTH_MARKER, recipe_for, resolve
from kws.train import FEW_OTHER_WORDS, _source_mask, other_words_hint, synthetic_only_hint

from .conftest import kws


def _folder(root, words, level, per_word=10, lists=True):
    """`per_word` clips per word, every sample of a clip at `level` (which names the source) plus a
    tone per word; the first clip of each word validates and the second tests, when `lists`."""
    for i, word in enumerate(words):
        (root / word).mkdir(parents=True)
        tone = 0.2 * np.sin(2 * np.pi * 200 * (i + 1) * np.arange(16000) / 16000)
        for k in range(per_word):
            sf.write(root / word / f"{word}{k:03d}_nohash_0.wav", level + tone, 16000, subtype="PCM_16")
    if lists:
        (root / "validation_list.txt").write_text("".join(f"{w}/{w}000_nohash_0.wav\n" for w in words))
        (root / "testing_list.txt").write_text("".join(f"{w}/{w}001_nohash_0.wav\n" for w in words))
    return root


def _source(x: torch.Tensor) -> torch.Tensor:
    """Which source a clip came from: its mean level (the tones average out)."""
    return (x.float().mean(1) / 32768 * 10).round().long()


def test_sources_merge_by_word_and_keep_their_own_splits(tmp_path):
    real = _folder(tmp_path / "real", ["yes", "no", "bed"], level=0.1)
    synth = _folder(tmp_path / "synth", ["yes", "no", "go", "cat"], level=0.3)
    joined = load_dataset(f"{real}+{synth}", tmp_path, words=["yes", "no", "go"])
    assert joined.labels == ["_silence_", "_unknown_", "yes", "no", "go"]  # go comes from one source alone
    assert joined.sources == ["real", "synth"]
    for split in ("train", "val", "test"):
        x, y = getattr(joined, split)
        of = joined.source_of[split]
        spoken = y != joined.labels.index("_silence_")  # (silence is cut from noise: neither source has any)
        assert torch.equal(_source(x)[spoken], torch.where(of == 0, 1, 3)[spoken])  # every row where it says
        alone = load(real, words=["yes", "no"])  # the real source's own split, as it is alone
        assert int(((of == 0) & spoken).sum()) == int((getattr(alone, split)[1] != 0).sum())
    test_y = joined.test[1]
    assert int((test_y == joined.labels.index("yes")).sum()) == 2  # one test clip of yes from each source


def test_keywords_only_the_synthetic_corpus_says_are_named_with_the_remedy(small_corpus, tmp_path):
    real = _folder(tmp_path / "real", ["yes", "no", "bed"], level=0.1)
    joined = load_dataset(f"{small_corpus}+{real}", tmp_path, words=["yes", "no", "stop"])
    assert joined.keywords_only_synthetic() == ["stop"]
    hint = synthetic_only_hint(joined)
    assert hint.startswith("keywords with synthetic clips only: stop.") and "joined with +" in hint
    # the remedy taken: a folder of recordings of stop alone, joined with + (the real one still lacks it)
    mine = _folder(tmp_path / "mine", ["stop"], level=0.2, lists=False)
    mended = load_dataset(f"{small_corpus}+{real}+{mine}", tmp_path, words=["yes", "no", "stop"])
    assert mended.keywords_only_synthetic() == [] and synthetic_only_hint(mended) is None
    # recordings alone, one of them without a keyword: no synthetic voice, nothing to say
    other = _folder(tmp_path / "other", ["yes", "stop", "cat"], level=0.3)
    assert load_dataset(f"{real}+{other}", tmp_path, words=["yes", "no", "stop"]).keywords_only_synthetic() == []
    assert load(real, words=["yes", "no"]).keywords_only_synthetic() == []


def test_unknown_words_of_every_source_become_classes(tmp_path):
    real = _folder(tmp_path / "real", ["yes", "bed"], level=0.1)
    synth = _folder(tmp_path / "synth", ["yes", "cat"], level=0.3)
    joined = load_dataset(f"{real}+{synth}", tmp_path, words=["yes"], unknown_words=True)
    assert joined.classes == ["_silence_", "_unknown_/bed", "_unknown_/cat", "yes"]
    names = [joined.classes[t] for t in joined.train[1].tolist()]
    levels = _source(joined.train[0]).tolist()
    assert all(lvl == 1 for n, lvl in zip(names, levels) if n == "_unknown_/bed")
    assert all(lvl == 3 for n, lvl in zip(names, levels) if n == "_unknown_/cat")


def test_a_word_no_source_has_and_mixed_kinds_are_refused(tmp_path):
    real = _folder(tmp_path / "real", ["yes"], level=0.1)
    synth = _folder(tmp_path / "synth", ["yes", "no"], level=0.3)
    with pytest.raises(UserError, match="no source has the word"):
        load_dataset(f"{real}+{synth}", tmp_path, words=["yes", "stop"])
    with pytest.raises(UserError, match="cannot join audio and images"):
        load_dataset(f"{real}+digits", tmp_path, words=["yes"])


def test_the_labels_a_source_lacks_are_lowered_in_its_rows_loss(tmp_path):
    """`absent_penalty`: the rows of a source without "go" get go's logit lowered by the penalty
    (by inf: go is left out of their softmax, and that source teaches nothing about go); its
    `_unknown_` words stand for every other word, so every finer unknown class stays in."""
    real = _folder(tmp_path / "real", ["yes", "no", "bed"], level=0.1)
    synth = _folder(tmp_path / "synth", ["yes", "no", "go", "cat"], level=0.3)
    joined = load_dataset(f"{real}+{synth}", tmp_path, words=["yes", "no", "go"], unknown_words=True)
    assert joined.classes == ["_silence_", "_unknown_/bed", "_unknown_/cat", "yes", "no", "go"]
    label_of = new_classifier(LogMel(), joined.labels, classes=joined.classes).label_of
    assert _source_mask(joined, label_of, 2.0)[0].tolist() == [0.0] * 5 + [-2.0]
    mask = _source_mask(joined, label_of, float("inf"))
    assert mask.shape == (2, 6)
    assert mask[0].isneginf().tolist() == [False] * 5 + [True] and not mask[0][:5].any()
    assert not mask[1].any()
    logits = torch.zeros(len(joined.train[1]), 6, requires_grad=True)
    of, y = joined.source_of["train"], joined.train[1]
    torch.nn.functional.cross_entropy(logits + mask[of], y).backward()
    go = joined.classes.index("go")
    assert not logits.grad[of == 0, go].any() and logits.grad[of == 1, go].abs().sum() > 0
    assert _source_mask(load(real, words=["yes", "no"]), label_of, 2.0) is None  # one source: nothing to mask


def test_balance_sets_each_sources_share_of_an_epoch(tmp_path):
    big = _folder(tmp_path / "big", ["yes", "no"], level=0.1, per_word=40)
    small = _folder(tmp_path / "small", ["yes", "no"], level=0.3, per_word=5)
    for balance, expected in ((0.0, None), (1.0, 0.5), (0.5, None)):
        joined = load_dataset(f"{big}+{small}", tmp_path, task="35", balance=balance)
        n_big, n_small = (int((joined.source_of["train"] == i).sum()) for i in (0, 1))
        order = joined.epoch_order(torch.Generator().manual_seed(0))
        assert len(order) == joined.epoch_size() == n_big + n_small
        share = float((joined.source_of["train"][order] == 1).float().mean())
        if balance == 0.0:
            assert sorted(order.tolist()) == list(range(n_big + n_small))  # each row once
        elif balance == 1.0:
            assert abs(share - expected) < 0.02
            assert set(order.tolist()) >= set(range(n_big, n_big + n_small))  # every small row, some twice
        else:
            want = n_small ** 0.5 / (n_small ** 0.5 + n_big ** 0.5)
            assert abs(share - want) < 0.02 and share > n_small / (n_big + n_small)
    first, again = (load_dataset(f"{big}+{small}", tmp_path, task="35", balance=1.0) for _ in range(2))
    assert torch.equal(first.epoch_order(torch.Generator().manual_seed(3)),
                       again.epoch_order(torch.Generator().manual_seed(3)))  # a pure function of the seed


def test_own_clips_without_split_lists_are_split_by_a_hash_of_the_speaker(tmp_path):
    mine = tmp_path / "my_clips"
    (mine / "yes").mkdir(parents=True)
    for speaker in range(40):
        for take in range(2):
            sf.write(mine / "yes" / f"spk{speaker:02d}_nohash_{take}.wav", np.zeros(8000), 16000, subtype="PCM_16")
    splits = split_lists(mine)
    assert sum(len(v) for v in splits.values()) == 80 and splits["val"] and splits["test"]
    for split, clips in splits.items():  # a speaker's takes stay together
        speakers = {c.split("/")[1].split("_nohash_")[0] for c in clips}
        assert all(hash_split(f"yes/{s}_nohash_1.wav") == split for s in speakers)
    assert split_lists(mine) == splits  # reproducible
    (mine / "testing_list.txt").write_text("")
    with pytest.raises(UserError, match="validation_list.txt"):
        split_lists(mine)


def test_each_kind_of_folder_gets_its_own_recipe(tmp_path, small_corpus):
    real = _folder(tmp_path / "real", ["yes"], level=0.1)
    assert recipe_for(str(real)) == "speech-commands"
    assert recipe_for(str(small_corpus)) == "synth" and (small_corpus / SYNTH_MARKER).is_file()
    assert recipe_for(f"synth+{real}") == "hybrid" and resolve(f"synth+{real}")[1].source_balance > 0


def test_a_real_folder_with_few_other_words_is_told_how_to_teach_more(tmp_path, small_corpus):
    real = load(_folder(tmp_path / "real", ["yes", "no", "bed", "cat"], level=0.05), words=["yes", "no"])
    hint = other_words_hint(real, RECIPES["speech-commands"])
    assert hint and "2 other words (bed, cat)" in hint and "--synthetic-others 0.5 --unknown-weight 0.5" in hint
    assert other_words_hint(real, replace(RECIPES["speech-commands"], synthetic_others=0.5)) is None
    many = [f"word{i:02d}" for i in range(FEW_OTHER_WORDS)]
    plenty = load(_folder(tmp_path / "plenty", ["yes", *many], level=0.05, per_word=3), words=["yes"])
    assert plenty.info["other_words"] == many and other_words_hint(plenty, RECIPES["speech-commands"]) is None
    synthetic = load(small_corpus, words=["yes", "no", "stop"])  # (a synthetic corpus teaches its own)
    synthetic = replace(synthetic, info={**synthetic.info, "other_words": ["bed"]})
    assert synthetic.is_synthetic() and not real.is_synthetic()
    assert other_words_hint(synthetic, RECIPES["speech-commands"]) is None


def test_a_real_folder_and_a_synthetic_corpus_train_together(small_corpus, tmp_path):
    real = _folder(tmp_path / "real", ["yes", "no", "bed"], level=0.05, per_word=12)
    run = tmp_path / "run"
    r = kws("train", "--dataset", f"{small_corpus}+{real}", "--words", "yes,no,stop", "--epochs", "2",
            "--members", "1", "--calibration-minutes", "0", "--out", run)
    assert r.returncode == 0, r.stderr
    assert "recipe hybrid:" in r.stderr and "keywords with synthetic clips only: stop." in r.stderr
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["labels"] == ["_silence_", "_unknown_", "yes", "no", "stop"]  # stop: synthetic clips only
    r = kws("evaluate", "--model", run / "model.pt", "--json")
    assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout)
    assert set(report["per_source"]) == {"synth", "real"}
    assert sum(s["count"] for s in report["per_source"].values()) == report["count"]
    r = kws("evaluate", "--model", run / "model.pt", "--dataset", real)  # one source alone: its own words
    assert r.returncode == 0 and "accuracy" in r.stdout, r.stderr
