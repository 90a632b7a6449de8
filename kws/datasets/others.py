"""Other words from the offline corpus, taught as `_unknown_` beside a corpus of real speech.

A real corpus with few other words (the subset teaches three) leaves the net free to call any
word it never heard a keyword. The synthetic corpus says every word of Speech Commands in
hundreds of voices at no cost, so its words that are not keywords can teach the class boundary.
They are training rows only: the validation and test splits, and so the threshold calibrated on
validation, stay the real corpus's own.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Callable, Sequence

import torch

from . import EpochDraw, Splits
from .speech_commands import UNKNOWN


def add_others(splits: Splits, share: float, corpus: Callable[[], Path], withhold: Sequence[str] = ()) -> Splits:
    """`splits` with the training clips of every word of the corpus that is not one of their labels
    (nor in `withhold`) as `_unknown_` rows, a fresh draw of `share` × the keyword rows each epoch
    (`Splits.draw`). Where `_unknown_` has finer classes, each word keeps its own, shared with the
    real clips of the same word. `corpus` builds or finds the corpus, called once `splits` is known
    to be one corpus of real speech (a build takes minutes)."""
    from ..audio import SAMPLE_RATE
    from ..errors import UserError
    from .cache import cached_clips
    from .speech_commands import decode_clips, split_lists

    if splits.sources is not None:
        raise UserError(f"--dataset {splits.name}: joined sources teach their own other words; "
                        "synthetic other words go beside one corpus of real speech")
    if splits.is_synthetic():
        raise UserError(f"--dataset {splits.name}: a synthetic corpus already teaches its own other words")
    root = corpus()
    skip = {*splits.labels, *withhold}
    paths = [rel for rel in split_lists(root)["train"] if rel.split("/")[0] not in skip]
    if not paths:
        raise UserError(f"{root}: no training clips of words other than {', '.join(splits.labels)}")
    words = sorted({rel.split("/")[0] for rel in paths})
    classes = splits.classes
    if classes is not None:  # each word its own class, after the real ones
        classes = [*classes, *(c for c in (f"{UNKNOWN}/{w}" for w in words) if c not in classes)]
    names = classes or splits.labels
    target = {w: names.index(f"{UNKNOWN}/{w}" if classes is not None else UNKNOWN) for w in words}
    x, y = splits.train
    keywords = int(splits.keyword_rows().sum())
    audio = torch.from_numpy(cached_clips([root / rel for rel in paths], SAMPLE_RATE, decode_clips))
    rows = torch.arange(len(y), len(y) + len(paths))
    per_epoch = min(len(paths), round(share * keywords))
    draw = EpochDraw(rows, per_epoch) if splits.draw is None else \
        EpochDraw(torch.cat([splits.draw.rows, rows]), splits.draw.per_epoch + per_epoch)
    labels = torch.tensor([target[rel.split("/")[0]] for rel in paths], dtype=torch.long)
    return replace(splits, train=(torch.cat([x, audio]), torch.cat([y, labels])), classes=classes, draw=draw,
                   info={**splits.info, "synthetic_others": {"words": len(words), "clips": len(paths),
                                                             "per_epoch": per_epoch}})
