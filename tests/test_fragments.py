"""Keyword fragments taught as `_unknown_` (`datasets.fragments`): what they hold and how they train."""

from __future__ import annotations

import pytest
import torch

from kws.augment import word_frames
from kws.datasets import Splits
from kws.datasets.fragments import FRAGMENT_CLASS, add_fragments
from kws.errors import UserError
from kws.recipes import resolve
from kws.train import run

LABELS = ["_silence_", "_unknown_", "yes", "no"]


def _splits(classes: list[str] | None = None) -> Splits:
    """12 keyword clips, each a tone from 0.3 s to 0.7 s at its own amplitude (so a fragment tells
    which clip it came from), 4 unknown and 2 silent rows; two sources."""
    n_kw, t = 12, torch.arange(16000)
    x = torch.zeros(18, 16000, dtype=torch.int16)
    for i in range(16):
        x[i, 4800:11200] = ((1000 + 500 * i) * torch.sin(0.3 * t[4800:11200])).to(torch.int16)
    y = torch.tensor([2, 3] * (n_kw // 2) + [1] * 4 + [0] * 2)
    source = torch.tensor([0, 1] * 9)
    return Splits("tones", "audio", LABELS, (x, y), (x[:4], y[:4]), (x[:4], y[:4]), classes=classes,
                  sources=["a", "b"], source_of={"train": source, "val": source[:4], "test": source[:4]})


def test_fragments_are_the_start_or_end_of_a_keyword_at_the_window_edge_taught_as_unknown():
    splits = _splits()
    out = add_fragments(splits, 0.5, seed=3)
    x, y = out.train
    assert len(y) == 18 + 6 and out.info["fragments"] == 6
    assert torch.equal(x[:18], splits.train[0]) and (y[18:] == LABELS.index("_unknown_")).all()
    _, first, last = word_frames(x[18:].float())
    frames = x.shape[1] // 160
    word = (11200 - 4800) // 160  # the tone's length in 10-ms frames
    sides = set()
    for k in range(6):
        span = int(last[k] - first[k]) + 1
        assert 0.2 * word - 1 <= span <= 0.45 * word + 1  # a fifth to less than half of the word
        at_end, at_start = int(last[k]) == frames - 1, int(first[k]) == 0
        assert at_end or at_start  # cut off by the window's edge, as a stream shows it
        sides.add("start of the word" if at_end else "end of the word")
        row = round((int(x[18 + k].abs().max()) - 1000) / 500)  # the clip it was cut from (its amplitude)
        assert splits.train[1][row] in (2, 3)  # a keyword's, never an unknown word's
        assert out.source_of["train"][18 + k] == splits.source_of["train"][row]
    assert sides == {"start of the word", "end of the word"}
    again = add_fragments(splits, 0.5, seed=3)
    assert torch.equal(again.train[0], x)  # seeded
    assert not torch.equal(add_fragments(splits, 0.5, seed=4).train[0], x)


def test_fragments_get_a_class_of_their_own_where_unknown_words_are_classes():
    classes = ["_silence_", "_unknown_/bed", "yes", "no"]
    out = add_fragments(_splits(classes), 0.25, seed=0)
    assert out.classes == [*classes, FRAGMENT_CLASS]
    assert (out.train[1][18:] == 4).all() and len(out.train[1]) == 18 + 3
    assert out.labels == LABELS  # what the model answers is unchanged: a fragment is `_unknown_`


def test_fragments_need_an_unknown_label():
    splits = _splits()
    no_unknown = Splits("tones", "audio", ["_silence_", "yes"], splits.train, splits.val, splits.test)
    with pytest.raises(UserError, match="no _unknown_ class"):
        add_fragments(no_unknown, 0.5)


def test_the_recipe_field_adds_the_fragments_to_what_training_sees(tmp_path):
    _, recipe = resolve("tones", "speech-commands", epochs=1, members=1, calibration_minutes=0.0, fragments=0.5)
    lines: list[str] = []
    metrics = run(_splits(), recipe, tmp_path / "run", data_dir=tmp_path, log=lines.append, progress=False)
    assert metrics["samples"]["train"] == 18 + 6
    assert "keyword fragments taught as _unknown_: 6 rows" in lines
    assert metrics["recipe"]["fragments"] == 0.5
