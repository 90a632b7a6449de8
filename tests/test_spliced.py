"""Two keywords spliced into one other word, taught as `_unknown_` (`datasets.spliced`)."""

from __future__ import annotations

import torch

from kws.datasets import Splits
from kws.datasets.spliced import FADE, add_spliced, energy_centre, splice
from kws.recipes import resolve
from kws.train import run

LABELS = ["_silence_", "_unknown_", "yes", "no"]


def _burst(at: int, level: float, pitch: float = 0.3, n: int = 16000) -> torch.Tensor:
    """A clip silent but for a 200 ms tone (`pitch` radians a sample) centred at sample `at`."""
    clip = torch.zeros(n)
    clip[at - 1600: at + 1600] = level * torch.sin(torch.arange(3200) * pitch)
    return clip.to(torch.int16)


def _pitch(part: torch.Tensor) -> float:
    """Radians a sample, from the zero crossings."""
    signs = torch.sign(part.float())
    return float((signs[1:] != signs[:-1]).sum()) * torch.pi / len(part)


def _splits(classes: list[str] | None = None) -> Splits:
    """12 keyword clips (yes: a low burst early, no: a high one late), 4 unknown and 2 silent rows; two sources."""
    x = torch.stack([_burst(4000, 1000 + 100 * i, 0.3) if i % 2 == 0 else _burst(12000, 1000 + 100 * i, 0.9)
                     for i in range(18)])
    y = torch.tensor([2, 3] * 6 + [1] * 4 + [0] * 2)
    source = torch.tensor([0, 1] * 9)
    return Splits("bursts", "audio", LABELS, (x, y), (x[:4], y[:4]), (x[:4], y[:4]), classes=classes,
                  sources=["a", "b"], source_of={"train": source, "val": source[:4], "test": source[:4]})


def test_a_splice_keeps_the_first_clip_to_its_centre_and_the_second_from_its_own():
    head, tail = _burst(4000, 1000), _burst(12000, 4000)
    assert abs(energy_centre(head) - 4000) <= 160 and abs(energy_centre(tail) - 12000) <= 160
    out = splice(head, tail)
    assert out.dtype == torch.int16 and out.shape == head.shape
    cut = energy_centre(head)
    assert torch.equal(out[: cut - FADE], head[: cut - FADE])  # the head, untouched, up to the join
    # then the tail's second half, brought to the head's level (the tail is four times as loud)
    rest = out[cut + FADE: cut + FADE + 1000].float()
    assert rest.abs().max() > 500 and rest.abs().max() < 1200
    assert out[cut + 1700:].abs().max() == 0  # the tail's burst ended 1,600 samples after its centre


def test_spliced_rows_join_two_different_keywords_and_are_taught_as_unknown():
    splits = _splits()
    out = add_spliced(splits, 0.5, seed=3)
    x, y = out.train
    assert len(y) == 18 + 6 and out.info["spliced"] == 6
    assert torch.equal(x[:18], splits.train[0]) and (y[18:] == LABELS.index("_unknown_")).all()
    for k in range(18, 24):
        # one burst, centred where the head's was: the head's low (yes) or high (no) first half,
        # then the other keyword's second half, the other pitch (the crossfade overlaps the two)
        sounding = (x[k] != 0).nonzero().flatten()
        centre = min((4000, 12000), key=lambda c: abs(c - int(sounding[0]) - 1600))
        assert abs(int(sounding[0]) - (centre - 1600)) <= 2 and abs(int(sounding[-1]) - (centre + 1600 - FADE)) <= 2
        first, second = _pitch(x[k, centre - 1500: centre - 200]), _pitch(x[k, centre + 200: centre + 1500])
        assert (first < 0.4 and second > 0.8) if centre == 4000 else (first > 0.8 and second < 0.4)
    assert torch.equal(add_spliced(splits, 0.5, seed=3).train[0], x)  # seeded
    assert not torch.equal(add_spliced(splits, 0.5, seed=4).train[0], x)
    assert torch.equal(out.val[0], splits.val[0]) and torch.equal(out.test[0], splits.test[0])  # training only


def test_spliced_rows_get_a_class_of_their_own_where_unknown_words_are_classes():
    classes = ["_silence_", "_unknown_/bed", "yes", "no"]
    out = add_spliced(_splits(classes), 0.25, seed=0)
    assert out.classes == [*classes, "_unknown_/spliced"]
    assert (out.train[1][18:] == 4).all() and len(out.train[1]) == 18 + 3
    assert out.labels == LABELS  # what the model answers is unchanged: a spliced word is `_unknown_`


def test_the_recipe_field_adds_the_spliced_rows_to_what_training_sees(tmp_path):
    _, recipe = resolve("bursts", "speech-commands", epochs=1, members=1, calibration_minutes=0.0, spliced_words=0.5)
    lines: list[str] = []
    metrics = run(_splits(), recipe, tmp_path / "run", data_dir=tmp_path, log=lines.append, progress=False)
    assert metrics["samples"]["train"] == 18 + 6
    assert "keywords spliced into other words and taught as _unknown_: 6 rows" in lines
