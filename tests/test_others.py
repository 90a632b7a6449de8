"""Other words of the offline corpus taught as `_unknown_` beside real speech (`datasets.others`)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from kws.datasets import Splits, synth
from kws.datasets.others import add_others
from kws.download import COMPLETE_MARKER
from kws.errors import UserError
from kws.recipes import SYNTH_MARKER, resolve
from kws.train import run

LABELS = ["_silence_", "_unknown_", "yes", "no"]
# The corpus: each word said by three speakers, one each in training, validation and test.
CORPUS_WORDS = {"yes": 1000, "bed": 2000, "dog": 3000, "happy": 4000}


def _corpus(root: Path) -> Path:
    """A corpus in the Speech Commands layout whose every clip is a constant: its word's level plus
    its speaker's number, so a row tells which clip it is."""
    for word, level in CORPUS_WORDS.items():
        (root / word).mkdir(parents=True)
        for k in range(3):
            sf.write(root / word / f"s{k}_nohash_0.wav", np.full(16000, level + k, np.int16), 16000, subtype="PCM_16")
    (root / "validation_list.txt").write_text("".join(f"{w}/s1_nohash_0.wav\n" for w in CORPUS_WORDS))
    (root / "testing_list.txt").write_text("".join(f"{w}/s2_nohash_0.wav\n" for w in CORPUS_WORDS))
    (root / COMPLETE_MARKER).write_text("test corpus\n")
    return root


def _splits(classes: list[str] | None = None, sources: bool = False) -> Splits:
    """10 keyword rows, 2 unknown and 2 silent ones."""
    x = torch.zeros(14, 16000, dtype=torch.int16)
    y = torch.tensor([2, 3] * 5 + [1, 1, 0, 0])
    of = {split: torch.zeros(14, dtype=torch.long) for split in ("train", "val", "test")}
    joined = {"sources": ["a", "b"], "source_of": of} if sources else {}
    return Splits("real", "audio", LABELS, (x, y), (x[:4], y[:4]), (x[:4], y[:4]), classes=classes, **joined)


def test_other_words_are_training_rows_drawn_anew_each_epoch(tmp_path):
    root = _corpus(tmp_path / "corpus")
    splits = _splits()
    out = add_others(splits, 0.2, lambda: root)
    x, y = out.train
    assert len(y) == 14 + 3  # bed, dog and happy in training; never `yes` (a label), never another split
    assert sorted(int(v) for v in x[14:, 0]) == [2000, 3000, 4000]
    assert (y[14:] == LABELS.index("_unknown_")).all()
    assert torch.equal(out.draw.rows, torch.arange(14, 17)) and out.draw.per_epoch == 2  # 0.2 × 10 keyword rows
    assert out.epoch_size() == 14 + 2
    assert torch.equal(out.val[0], splits.val[0]) and torch.equal(out.test[0], splits.test[0])
    assert out.info["synthetic_others"] == {"words": 3, "clips": 3, "per_epoch": 2}
    orders = {tuple(sorted(out.epoch_order(torch.Generator().manual_seed(s)).tolist())) for s in range(8)}
    assert len(orders) > 1 and all(set(range(14)) <= set(o) and len(o) == 16 for o in orders)


def test_each_other_word_keeps_its_class_shared_with_the_real_clips_of_that_word(tmp_path):
    root = _corpus(tmp_path / "corpus")
    classes = ["_silence_", "_unknown_/bed", "yes", "no"]
    out = add_others(_splits(classes), 1.0, lambda: root, withhold=["happy"])
    assert out.classes == [*classes, "_unknown_/dog"]
    by_level = {int(row[0]): int(label) for row, label in zip(*(t[14:] for t in out.train))}
    assert by_level == {2000: 1, 3000: 4}  # real and synthetic "bed" are one class; happy withheld
    assert out.labels == LABELS  # what the model answers is unchanged


def test_joined_sources_a_synthetic_corpus_and_a_corpus_without_other_words_are_refused(tmp_path):
    root = _corpus(tmp_path / "corpus")
    unbuilt = lambda: pytest.fail("the corpus is built before the data is checked")  # noqa: E731
    with pytest.raises(UserError, match="joined sources"):
        add_others(_splits(sources=True), 0.5, unbuilt)
    with pytest.raises(UserError, match="no training clips"):
        add_others(_splits(), 0.5, lambda: root, withhold=["bed", "dog", "happy"])
    (root / SYNTH_MARKER).write_text("{}\n")
    corpus = _splits()
    corpus.info["root"] = str(root)
    with pytest.raises(UserError, match="already teaches"):
        add_others(corpus, 0.5, unbuilt)


def test_the_recipe_field_trains_with_the_offline_corpus_others(tmp_path):
    per_word = 3
    # (as if built) The corpus whose every voice says every word: those words are what it teaches.
    _corpus(synth.default_root(tmp_path, synth.SynthConfig(per_word=per_word, others_share=1.0)))
    _, recipe = resolve("real", "speech-commands", epochs=1, members=1, calibration_minutes=0.0, per_word=per_word,
                        unknown_words=False, synthetic_others=0.2, spliced_words=0.0)
    lines: list[str] = []
    metrics = run(_splits(), recipe, tmp_path / "run", data_dir=tmp_path, log=lines.append, progress=False)
    assert metrics["samples"]["train"] == 14 + 3
    assert "synthetic other words taught as _unknown_: 2 an epoch of 3 clips of 3 words" in lines
