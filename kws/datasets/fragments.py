"""Keyword fragments taught as `_unknown_`: what a stream shows as a word enters or leaves the window.

A listening model scores the last second at every hop, so it sees each word cut off twice: its
start at the window's end as the word comes in, its end at the window's start as it goes out.
Trained on whole words only, a time-pooled net names those pieces too (the end of "stop" sounds
like "up"). Rows of such pieces, labelled `_unknown_`, teach it that a piece is not the word.
"""

from __future__ import annotations

from dataclasses import replace

import torch

from ..augment import word_frames
from . import Splits
from .speech_commands import NON_KEYWORDS, UNKNOWN

FRAME = 160  # 10 ms at 16 kHz: the unit `word_frames` measures a word in
FRAGMENT_CLASS = f"{UNKNOWN}/fragment"  # the class they train as where `_unknown_` has finer classes


def add_fragments(splits: Splits, share: float, seed: int = 0, keep: tuple[float, float] = (0.1, 0.3)) -> Splits:
    """`splits` with new training rows: for `share` of the keyword clips (drawn at random), the
    first or the last `keep` (a fraction drawn between the two) of the word, moved to the window's
    end or start, the rest of the word cut away. They are `_unknown_` rows of the clip's source."""
    from ..errors import UserError

    if UNKNOWN not in splits.labels:
        raise UserError(f"--fragments: {splits.name} has no {UNKNOWN} class to teach fragments as")
    x, y = splits.train
    names = splits.classes or splits.labels
    keyword = torch.tensor([name.split("/")[0] not in NON_KEYWORDS for name in names])[y]
    rows = keyword.nonzero().flatten()
    generator = torch.Generator().manual_seed(seed)
    rows = rows[torch.randperm(len(rows), generator=generator)[:round(share * len(rows))]]
    if not len(rows):
        return splits
    clips = x[rows]
    _, first, last = word_frames(clips.float())
    start, end = first * FRAME, (last + 1) * FRAME
    kept = ((end - start) * (keep[0] + (keep[1] - keep[0]) * torch.rand(len(rows), 1, generator=generator))).long()
    length = clips.shape[1]
    head = torch.rand(len(rows), 1, generator=generator) < 0.5
    # The word's first `kept` samples end where the window ends, or its last ones start where it starts.
    shift = torch.where(head, length - (start + kept), -(end - kept))
    source = torch.arange(length).unsqueeze(0) - shift
    inside = (source >= 0) & (source < length)
    pieces = torch.gather(clips, 1, source.clamp(0, length - 1)) * inside
    classes = splits.classes
    if classes is None or UNKNOWN in classes:
        target = names.index(UNKNOWN)
    else:  # `_unknown_` is split by word: the fragments are one more of its classes
        classes = [*classes, FRAGMENT_CLASS] if FRAGMENT_CLASS not in classes else classes
        target = classes.index(FRAGMENT_CLASS)
    source_of = splits.source_of and {**splits.source_of, "train": torch.cat([splits.source_of["train"],
                                                                              splits.source_of["train"][rows]])}
    return replace(splits, train=(torch.cat([x, pieces.to(x.dtype)]), torch.cat([y, torch.full((len(rows),), target)])),
                   classes=classes, source_of=source_of,
                   info={**splits.info, "fragments": len(rows)})
