"""A second offline synthesiser: SVOX Pico (Android's old built-in TTS), through the `ttspico` package.

espeak-ng builds its vowels from formant rules, and a network trained only on them learns cues no
person makes. Pico's English voices (en-US and en-GB, one speaker each) are statistical models
trained on recordings of real people, so their spectra are a human's. Two voices are too few to
train on alone, but mixed into the espeak-ng corpus they lift real-speech accuracy (README, "Hearing
real people"). Optional: `pip install "kws[pico]"` compiles the small C library (POSIX, a C compiler).
"""

from __future__ import annotations

import threading

import numpy as np

LANGUAGES = ("en-US", "en-GB")
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
            raise ValueError(f"Pico speaks {' or '.join(LANGUAGES)}, not {language!r}")
        if not (PITCH_RANGE[0] <= pitch <= PITCH_RANGE[1] and RATE_RANGE[0] <= rate <= RATE_RANGE[1]):
            raise ValueError(f"pitch {pitch} / rate {rate}: Pico takes {PITCH_RANGE} and {RATE_RANGE} percent")
        chunks: list[bytes] = []
        with PicoSpeaker._lock:
            engine = self._engines[language]
            engine.pitch, engine.rate = pitch, rate
            engine.speak(text, lambda _format, audio, _end: chunks.append(audio) or True)
        return np.frombuffer(b"".join(chunks), np.int16).astype(np.float32) / 32768.0
