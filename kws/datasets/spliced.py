"""Two keywords spliced into one other word, taught as `_unknown_`: keyword sounds that are not a keyword.

A net that max-pools over time can call a word a keyword on hearing a part of it (`happy` taken
for `up`). The first part of one keyword clip joined to the last part of a clip of another keyword
("ye" + "own") sounds like speech and holds keyword sounds, yet is no keyword, so it teaches that a
keyword is the whole word, in real speakers' voices, from clips the corpus already has.
"""

from __future__ import annotations

import torch

from . import Splits

FADE = 160  # samples of crossfade at the join (10 ms at 16 kHz), so the cut is not a click to learn


def energy_centre(clip: torch.Tensor, frame: int = 160) -> int:
    """The sample at the centre of a clip's energy: where its word is, in a 1-s clip with silence around it."""
    power = clip.float()[: len(clip) // frame * frame].reshape(-1, frame).pow(2).sum(1)
    where = (power * torch.arange(len(power))).sum() / power.sum().clamp_min(1e-9)
    return int(where.item() * frame + frame // 2)


def splice(head: torch.Tensor, tail: torch.Tensor) -> torch.Tensor:
    """`head` up to its energy centre, then `tail` from its own, at `head`'s level, as one int16 clip
    of `head`'s length."""
    n = len(head)
    a, b = head.float(), tail.float()
    b = b * (a.pow(2).mean().sqrt() / b.pow(2).mean().sqrt().clamp_min(1e-9))
    cut_a = min(max(energy_centre(head), FADE), n - FADE)
    cut_b = min(energy_centre(tail), n - FADE)
    ramp = torch.linspace(0, 1, FADE)
    joined = torch.cat([a[: cut_a - FADE], a[cut_a - FADE: cut_a] * (1 - ramp) + b[cut_b: cut_b + FADE] * ramp,
                        b[cut_b + FADE:]])
    out = torch.zeros(n)
    out[: min(n, len(joined))] = joined[:n]
    return out.round().clamp(-32768, 32767).to(torch.int16)


def add_spliced(splits: Splits, share: float, seed: int = 0) -> Splits:
    """`splits` with new training rows: `share` of the keyword clips (drawn at random), each spliced
    to a clip of another keyword, as `_unknown_` rows of the first clip's source. `splits` must have
    `_unknown_` (the trainer refuses the flag for data without it)."""
    x, y = splits.train
    keyword_rows = splits.keyword_rows().nonzero().flatten()
    generator = torch.Generator().manual_seed(seed)
    heads = keyword_rows[torch.randperm(len(keyword_rows), generator=generator)[:round(share * len(keyword_rows))]]
    words = y[keyword_rows]
    clips, kept = [], []
    for row in heads.tolist():
        others = keyword_rows[words != y[row]]
        if not len(others):
            continue
        tail = others[torch.randint(len(others), (1,), generator=generator)].item()
        clips.append(splice(x[row], x[tail]))
        kept.append(row)
    if not clips:
        return splits
    return splits.with_unknown_rows(torch.stack(clips), torch.tensor(kept), "spliced")
