"""Keywords played backwards, taught as `_unknown_` (`datasets.reversed`)."""

from __future__ import annotations

import torch

from kws.datasets import Splits
from kws.datasets.reversed import add_reversed
from kws.recipes import resolve
from kws.train import run

LABELS = ["_silence_", "_unknown_", "yes", "no"]


def _splits(classes: list[str] | None = None) -> Splits:
    """12 keyword clips, each a rising ramp at its own slope (so a row tells which clip it came from
    and which way it runs), 4 unknown and 2 silent rows; two sources."""
    ramp = torch.linspace(0, 1, 16000)
    x = torch.stack([(ramp * (1000 + 500 * i)).to(torch.int16) for i in range(18)])
    y = torch.tensor([2, 3] * 6 + [1] * 4 + [0] * 2)
    source = torch.tensor([0, 1] * 9)
    return Splits("ramps", "audio", LABELS, (x, y), (x[:4], y[:4]), (x[:4], y[:4]), classes=classes,
                  sources=["a", "b"], source_of={"train": source, "val": source[:4], "test": source[:4]})


def test_reversed_rows_are_keywords_backwards_taught_as_unknown():
    splits = _splits()
    out = add_reversed(splits, 0.5, seed=3)
    x, y = out.train
    assert len(y) == 18 + 6 and out.info["reversed"] == 6
    assert torch.equal(x[:18], splits.train[0]) and (y[18:] == LABELS.index("_unknown_")).all()
    for k in range(18, 24):
        assert x[k, 0] > x[k, -1]  # falling: a rising clip played backwards
        row = round((int(x[k, 0]) - 1000) / 500)  # the clip it came from (its slope)
        assert torch.equal(x[k], splits.train[0][row].flip(0))
        assert splits.train[1][row] in (2, 3)  # a keyword's, never an unknown word's or silence's
        assert out.source_of["train"][k] == splits.source_of["train"][row]
    assert torch.equal(add_reversed(splits, 0.5, seed=3).train[0], x)  # seeded
    assert not torch.equal(add_reversed(splits, 0.5, seed=4).train[0], x)
    assert torch.equal(out.val[0], splits.val[0]) and torch.equal(out.test[0], splits.test[0])  # training only


def test_reversed_rows_get_a_class_of_their_own_where_unknown_words_are_classes():
    classes = ["_silence_", "_unknown_/bed", "yes", "no"]
    out = add_reversed(_splits(classes), 0.25, seed=0)
    assert out.classes == [*classes, "_unknown_/reversed"]
    assert (out.train[1][18:] == 4).all() and len(out.train[1]) == 18 + 3
    assert out.labels == LABELS  # what the model answers is unchanged: a reversed word is `_unknown_`


def test_the_recipe_field_adds_the_reversed_rows_to_what_training_sees(tmp_path):
    _, recipe = resolve("ramps", "speech-commands", epochs=1, members=1, calibration_minutes=0.0, reversed_words=0.5,
                        spliced_words=0.0)
    lines: list[str] = []
    metrics = run(_splits(), recipe, tmp_path / "run", data_dir=tmp_path, log=lines.append, progress=False)
    assert metrics["samples"]["train"] == 18 + 6
    assert "keywords reversed and taught as _unknown_: 6 rows" in lines

