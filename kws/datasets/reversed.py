"""Keywords played backwards, taught as `_unknown_`: other words in the speakers' own voices.

A corpus with few other words (the real subset teaches three) leaves the net free to call any
speech a keyword. A keyword reversed keeps its speaker, microphone, loudness and spectrum, and is
no longer the word ("no" backwards is close to "on"), so it teaches the class boundary with
clips that cost nothing to make.
"""

from __future__ import annotations

import torch

from . import Splits


def add_reversed(splits: Splits, share: float, seed: int = 0) -> Splits:
    """`splits` with new training rows: `share` of the keyword clips (drawn at random), reversed in
    time, as `_unknown_` rows of the clip's source. `splits` must have `_unknown_` (the trainer
    refuses the flag for data without it)."""
    x = splits.train[0]
    rows = splits.keyword_rows().nonzero().flatten()
    generator = torch.Generator().manual_seed(seed)
    rows = rows[torch.randperm(len(rows), generator=generator)[:round(share * len(rows))]]
    if not len(rows):
        return splits
    return splits.with_unknown_rows(x[rows].flip(1), rows, "reversed")
