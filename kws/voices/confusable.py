"""Words that sound almost like a keyword: the negatives that teach a model what the keyword is not.

A model taught "computer" and a few unrelated words calls "commuter" a keyword, because nothing
ever told it otherwise. So each keyword gets near misses: its spelling edited one letter at a time
(a vowel for a vowel, a consonant for a consonant, a letter dropped or doubled), read by espeak-ng's
own letter-to-sound rules, and kept when its phonemes are one or two away from the keyword's, not
zero (a homophone is the keyword). A phrase also gets each of its words alone, and the phrase with
one word changed. No word list is needed, and every negative is speakable because espeak-ng read it.
"""

from __future__ import annotations

import random

from ..errors import UserError

VOWELS = "aeiouy"
CONSONANTS = "bcdfghjklmnpqrstvwxz"
_STRESS = "ˈˌ"
_JOINS = "ːˑ̩̃"  # marks that belong to the phoneme before them


def normalise(text: str, given_as: str = "--words") -> str:
    """A keyword as a corpus folder names it: lower case, single spaces. Letters only, because
    espeak-ng reads digits and symbols as other words ("7" as "seven", "!" as "exclamation").
    `given_as` names where the user typed it, for the error."""
    words = text.lower().split()
    if not words or not all(part.replace("'", "").replace("-", "").isalpha() for part in words):
        raise UserError(f"{given_as} {text.strip()!r}: use letters only (spell numbers out: seven, not 7)")
    return " ".join(words)


def phonemes(text: str, speaker=None) -> list[str]:
    """espeak-ng's American-English phonemes for `text`, one string per sound (stress dropped)."""
    from .espeak import Speaker

    ipa = (speaker or Speaker()).phonemes(text, "en-us")
    out: list[str] = []
    for ch in ipa:
        if ch in _STRESS or ch.isspace():
            continue
        if ch in _JOINS and out:
            out[-1] += ch
        else:
            out.append(ch)
    return out


def distance(a: list[str], b: list[str]) -> int:
    """Phonemes inserted, dropped or changed to turn `a` into `b` (Levenshtein)."""
    row = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        prev, row[0] = row[0], i
        for j, y in enumerate(b, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (x != y))
    return row[-1]


def spelling_edits(word: str) -> set[str]:
    """The word with one letter changed for one of its kind, dropped, or doubled."""
    out = set()
    for i, ch in enumerate(word):
        kind = VOWELS if ch in VOWELS else CONSONANTS if ch in CONSONANTS else ""
        out.update(word[:i] + other + word[i + 1:] for other in kind if other != ch)
        if len(word) > 2:
            out.add(word[:i] + word[i + 1:])
        out.add(word[:i] + ch + word[i:])
    out.discard(word)
    return out


def confusables(keyword: str, n: int = 4, avoid: tuple[str, ...] = (), seed: int = 0, speaker=None) -> list[str]:
    """Up to `n` near misses of `keyword`, plus, for a phrase, each of its words alone.

    Each sounds one or two phonemes away from the keyword and at least one away from every other
    negative and from `avoid` (the other keywords, which must stay keywords). The choice is seeded:
    the same keyword gets the same negatives.
    """
    from .espeak import Speaker

    speaker = speaker or Speaker()
    keyword = normalise(keyword)
    parts = keyword.split()
    heard = {w: phonemes(w, speaker) for w in (keyword, *avoid)}
    target = heard[keyword]
    taken = [heard[w] for w in avoid]
    out = [p for p in parts if len(parts) > 1 and p not in avoid]
    taken += [phonemes(p, speaker) for p in out]
    rng = random.Random(f"{seed}/{keyword}")
    found: list[tuple[int, float, str, list[str]]] = []
    for k, part in enumerate(parts):
        for edit in sorted(spelling_edits(part)):
            text = " ".join(parts[:k] + [edit] + parts[k + 1:])
            sounds = phonemes(text, speaker)
            d = distance(target, sounds)
            if 1 <= d <= 2:
                found.append((d, rng.random(), text, sounds))
    chosen: list[str] = []
    # Closest first; a negative one phoneme from one already chosen adds little, so those wait
    # for a second pass.
    for spread in (2, 1):
        for _, _, text, sounds in sorted(found):
            if len(chosen) == n:
                break
            if text not in chosen and all(distance(sounds, t) >= spread for t in taken):
                chosen.append(text)
                taken.append(sounds)
    return out + chosen
