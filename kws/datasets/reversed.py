"""Keywords played backwards, taught as `_unknown_`: other words in the speakers' own voices.

A corpus with few other words (the real subset teaches three) leaves the net free to call any
speech a keyword. A keyword reversed keeps its speaker, microphone, loudness and spectrum, and is
no longer the word ("no" backwards is close to "on"), so it teaches the class boundary with
clips that cost nothing to make.
"""

from __future__ import annotations

from dataclasses import replace

import torch

from . import Splits
from .speech_commands import UNKNOWN

REVERSED_CLASS = f"{UNKNOWN}/reversed"  # the class they train as where `_unknown_` has finer classes


def add_reversed(splits: Splits, share: float, seed: int = 0) -> Splits:
    """`splits` with new training rows: `share` of the keyword clips (drawn at random), reversed in
    time, as `_unknown_` rows of the clip's source. `splits` must have `_unknown_` (the trainer
    refuses the flag for data without it)."""
    x, y = splits.train
    names = splits.classes or splits.labels
    rows = splits.keyword_rows().nonzero().flatten()
    generator = torch.Generator().manual_seed(seed)
    rows = rows[torch.randperm(len(rows), generator=generator)[:round(share * len(rows))]]
    if not len(rows):
        return splits
    classes = splits.classes
    if classes is None or UNKNOWN in classes:
        target = names.index(UNKNOWN)
    else:  # `_unknown_` is split by word: reversed keywords are one more of its classes
        classes = [*classes, REVERSED_CLASS] if REVERSED_CLASS not in classes else classes
        target = classes.index(REVERSED_CLASS)
    source_of = splits.source_of and {**splits.source_of, "train": torch.cat([splits.source_of["train"],
                                                                              splits.source_of["train"][rows]])}
    return replace(splits, train=(torch.cat([x, x[rows].flip(1)]), torch.cat([y, torch.full((len(rows),), target)])),
                   classes=classes, source_of=source_of, info={**splits.info, "reversed": len(rows)})
