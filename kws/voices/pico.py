"""A second offline synthesiser: SVOX Pico (Android's old built-in TTS), through the `ttspico` package.

espeak-ng builds its vowels from formant rules, and a network trained only on them learns cues no
person makes. Pico's six voices (one speaker each for en-US, en-GB, de-DE, es-ES, fr-FR, it-IT) are
statistical models trained on recordings of real people, so their spectra are a human's. Six voices
are too few to train on alone, but mixed into the espeak-ng corpus they lift real-speech accuracy
(docs/real-speech.md). The four non-English voices say English words from a phoneme
string in their own language's sounds (`markup`): English as a German, Spanish, French or Italian
speaker says it. Optional: `pip install "kws[pico]"` compiles the small C library (POSIX, a C compiler).
"""

from __future__ import annotations

import threading

import numpy as np

ENGLISH = ("en-US", "en-GB")
ACCENTED = ("de-DE", "es-ES", "fr-FR", "it-IT")
LANGUAGES = ENGLISH + ACCENTED
SAMPLE_RATE = 16000  # Pico speaks at 16 kHz, the rate the frontend expects
PITCH_RANGE = (50, 200)  # percent of the voice's own pitch
RATE_RANGE = (20, 500)  # percent of its own speed


def available() -> bool:
    try:
        import ttspico  # noqa: F401
    except ImportError:
        return False
    return True


class PicoSpeaker:
    """Text → float32 mono samples at 16 kHz, in one of Pico's English voices."""

    _lock = threading.Lock()  # setting an engine's pitch and rate, then speaking, is one step

    def __init__(self) -> None:
        import ttspico

        self._engines = {language: ttspico.TtsEngine(language) for language in LANGUAGES}

    def say(self, text: str, language: str = "en-US", pitch: int = 100, rate: int = 100) -> np.ndarray:
        if language not in self._engines:
            raise ValueError(f"Pico speaks {', '.join(LANGUAGES)}, not {language!r}")
        if not (PITCH_RANGE[0] <= pitch <= PITCH_RANGE[1] and RATE_RANGE[0] <= rate <= RATE_RANGE[1]):
            raise ValueError(f"pitch {pitch} / rate {rate}: Pico takes {PITCH_RANGE} and {RATE_RANGE} percent")
        chunks: list[bytes] = []
        with PicoSpeaker._lock:
            engine = self._engines[language]
            engine.pitch, engine.rate = pitch, rate
            engine.speak(text, lambda _format, audio, _end: chunks.append(audio) or True)
        return np.frombuffer(b"".join(chunks), np.int16).astype(np.float32) / 32768.0


# The Speech Commands words in broad General American X-SAMPA, one symbol per space-separated item.
ENGLISH_PHONEMES = {
    "backward": "b { k w @` d", "bed": "b E d", "bird": "b 3` d", "cat": "k { t", "dog": "d O g",
    "down": "d aU n", "eight": "eI t", "five": "f aI v", "follow": "f A l oU", "forward": "f O r w @` d",
    "four": "f O r", "go": "g oU", "happy": "h { p i", "house": "h aU s", "learn": "l 3` n",
    "left": "l E f t", "marvin": "m A r v I n", "nine": "n aI n", "no": "n oU", "off": "O f", "on": "A n",
    "one": "w V n", "right": "r aI t", "seven": "s E v @ n", "sheila": "S i l @", "six": "s I k s",
    "stop": "s t A p", "three": "T r i", "tree": "t r i", "two": "t u", "up": "V p",
    "visual": "v I Z u @ l", "wow": "w aU", "yes": "j E s", "zero": "z I r oU",
}
# Each English sound a voice lacks → the nearest its language has, as its speakers substitute
# them ("th" → s, w → v in German; v → b, h → x in Spanish; h silent in French and Italian).
# Every symbol on the right is one that voice's lingware speaks (checked in tests/test_voices.py).
ACCENTS = {
    "de-DE": {"{": "E", "@`": "6", "3`": "9 6", "T": "s", "D": "d", "w": "v", "V": "a", "A": "a:",
              "oU": "o:", "eI": "e:", "r": "R", "i": "i:", "u": "u:"},
    "es-ES": {"{": "a", "E": "e", "I": "i", "V": "a", "A": "a", "O": "o", "oU": "o u", "eI": "e i",
              "aI": "a j", "aU": "a u", "@": "e", "@`": "e r", "3`": "e r", "v": "b", "z": "s", "Z": "s",
              "S": "tS", "h": "x", "w": "u"},
    "fr-FR": {"{": "a", "I": "i", "V": "9", "A": "a", "oU": "o", "eI": "e", "aI": "a j", "aU": "a u",
              "@`": "9 R", "3`": "9 R", "r": "R", "h": "", "T": "s", "D": "z"},
    "it-IT": {"{": "E", "I": "i", "V": "a", "A": "a", "O": "o", "oU": "o u", "eI": "e i", "aI": "a i",
              "aU": "a u", "@": "e", "@`": "e r", "3`": "e r", "h": "", "T": "t", "D": "d", "Z": "S",
              "w": "u", "j": "i"},
}


def accented_phonemes(word: str, language: str) -> list[str]:
    """The word's English sounds as a speaker of `language` makes them."""
    table = ACCENTS[language]
    return [q for p in ENGLISH_PHONEMES[word].split() for q in table.get(p, p).split()]


def markup(word: str, language: str) -> str | None:
    """What to give `say` for `word` in `language`: the word itself for the English voices, a
    phoneme string for the others, None where there is no pronunciation for it."""
    if language in ENGLISH:
        return word
    if word not in ENGLISH_PHONEMES:
        return None
    return f'<phoneme alphabet="xsampa" ph="{"".join(accented_phonemes(word, language))}"/>'
