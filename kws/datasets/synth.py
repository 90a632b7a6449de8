"""An offline corpus in the Speech Commands layout, spoken by espeak-ng voices (and Pico's).

Every English dialect and voice variant espeak-ng ships, each speaker reshaped with a timbre of its
own (`draw_timbre`), at varied rate, pitch and intonation, placed anywhere in the second at varied
loudness. The split is by voice variant: the variants in the validation and test lists never speak
in training. Where SVOX Pico is installed, five of its six human-modelled voices add clips to the
training split only (too few to split; the sixth, en-GB, is kept out of the corpus as a check on
voices it never heard). Same seed and same installed synthesisers, same voices, words, splits and
loudness (not the same samples: neither synthesiser is sample-exact from run to run).
"""

from __future__ import annotations

import hashlib
import multiprocessing
import shutil
import zlib
from concurrent.futures import ProcessPoolExecutor, wait
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Callable

import numpy as np

from ..audio import SAMPLE_RATE, write_wav
from ..download import COMPLETE_MARKER, is_complete
from ..recipes import SYNTH_MARKER
from ..voices import pico as pico_tts  # (`pico` is a SynthConfig field)
from ..voices.espeak import ENGLISH_DIALECTS, Speaker, Timbre, Voice, list_variants, takes_timbre
from .speech_commands import KEYWORDS, NEGATIVES, NOISE_DIR, speaker_of

#: The 35 words of Speech Commands v0.02.
WORDS = ("backward", "bed", "bird", "cat", "dog", "down", "eight", "five", "follow", "forward", "four",
         "go", "happy", "house", "learn", "left", "marvin", "nine", "no", "off", "on", "one", "right",
         "seven", "sheila", "six", "stop", "three", "tree", "two", "up", "visual", "wow", "yes", "zero")
NOISE_SECONDS = 30
FITS = 0.95  # seconds of the 1-s window a word or phrase may fill
MAX_RATE = 450  # espeak-ng's fastest words per minute
LONGEST = 1.5  # seconds: a phrase longer than this at a normal pace is refused, not sped up
PICO_PER_WORD = 300  # the one share tried (1 Pico clip per 1.6 espeak-ng training clips); not tuned


def _pico_default() -> int:
    return PICO_PER_WORD if pico_tts.available() else 0


@dataclass
class SynthConfig:
    per_word: int = 600  # clips per word; each comes from a different speaker
    seed: int = 0
    words: tuple[str, ...] = WORDS
    val_percent: float = 10.0
    test_percent: float = 10.0
    rates: tuple[int, int] = (120, 260)  # words per minute, drawn per speaker (espeak-ng's floor is 80)
    # How each word ends, drawn per clip: "." falls, "?" rises, "!" stresses: the intonation a
    # person gives a single word varies, and espeak-ng reads it from the punctuation.
    endings: tuple[str, ...] = ("",)
    # How far each speaker's vocal tract and voice source stray from the bundled variant it is
    # built on (see `draw_timbre`): 0 speaks with espeak-ng's variants as shipped.
    timbre: float = 1.0
    # Extra training clips per word in SVOX Pico's voices; 0 where `ttspico` is not installed.
    pico: int = field(default_factory=_pico_default)
    # Pico's voices, taken in turn clip by clip (list one twice to give it twice the clips). Half
    # American, half accented scored best on voices held out of training; en-GB stays out, as one
    # of those held-out voices. A word with no phoneme string for
    # the accented voices (`pico.markup`) goes to the next English one.
    pico_voices: tuple[str, ...] = ("en-US",) * 4 + pico_tts.ACCENTED
    # The share of each split's speakers (and of the Pico clips) that also say the words that are
    # not the twelve-class task's keywords: that task draws a tenth as many other-word clips as
    # keyword clips, so most of theirs were never used; with fewer, the corpus builds sooner and
    # the draws stay as large. A word trained as a keyword (`--words marvin`) is first said by
    # every speaker (`build_words`).
    others_share: float = 0.25

    def folder_name(self) -> str:
        """The first corpus (no timbre, no Pico) keeps its plain name; any other gets a suffix."""
        name = f"synth-n{self.per_word}-s{self.seed}"
        spoken = (self.rates, self.endings, self.timbre)
        if spoken != ((120, 260), ("",), 0.0) or self.pico:
            name += "-" + hashlib.sha1(repr(spoken).encode()).hexdigest()[:6]
        if self.pico:
            name += f"-pico{self.pico}"
            if self.pico_voices != pico_tts.ENGLISH:  # (the first Pico corpora spoke English only)
                name += "-" + hashlib.sha1(repr(self.pico_voices).encode()).hexdigest()[:6]
        if self.others_share < 1:
            name += f"-others{self.others_share:g}"
        return name

    def in_part(self) -> set[str]:
        """The corpus's words that only `others_share` of its speakers say."""
        return {w for w in self.words if w not in KEYWORDS} if self.others_share < 1 else set()


def in_full(corpus: Path, config: SynthConfig, word: str) -> bool:
    """Whether every speaker of `corpus` (built with `config`) says `word`, as a keyword needs."""
    return (corpus / word).is_dir() and word not in config.in_part()


def default_root(data_dir: Path, config: SynthConfig) -> Path:
    return data_dir / config.folder_name()


def ensure(out: Path, config: SynthConfig, progress: Callable[[int, int], None] | None = None) -> Path:
    """Build the corpus at `out` unless a complete one is already there."""
    if is_complete(out):
        return out
    return build(out, config, progress)


def build(out: Path, config: SynthConfig, progress: Callable[[int, int], None] | None = None) -> Path:
    rng = np.random.default_rng(config.seed)
    speaker = Speaker()
    speakers = _speakers(config, rng)
    partial = out.with_name(out.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    for word in config.words:
        (partial / word).mkdir()
    part, few = config.in_part(), _share_of(speakers, config.others_share)
    said_by = {w: few if w in part else speakers for w in config.words}
    _speak_words(partial, config, said_by, speaker, lambda word: rng, progress, part=part)
    lists = {split: [f"{w}/{sid}_nohash_0.wav" for w, who in said_by.items() for sid, _, s in who if s == split]
             for split in ("val", "test")}
    (partial / "validation_list.txt").write_text("".join(p + "\n" for p in lists["val"]))
    (partial / "testing_list.txt").write_text("".join(p + "\n" for p in lists["test"]))
    write_noise(partial / NOISE_DIR, rng, speaker)
    (partial / SYNTH_MARKER).write_text(repr(asdict(config)) + "\n")  # (what `recipes` recognises)
    shutil.rmtree(out, ignore_errors=True)
    partial.rename(out)
    (out / COMPLETE_MARKER).write_text("kws synth\n")
    return out


def _speak_words(folder: Path, config: SynthConfig, said_by: dict[str, list[tuple[str, Voice, str]]],
                 speaker: Speaker, rng_of: Callable[[str], np.random.Generator],
                 progress: Callable[[int, int], None] | None = None, own: bool = False,
                 part: set[str] = frozenset()) -> None:
    """Each word's speakers (`said_by`) say it into `folder/<word>/`, each word's clips drawing
    from `rng_of(word)`; Pico says a word in `part` `others_share` as often. Pico speaks in a
    second process meanwhile, so on two cores a build takes the longer of the two times, not
    their sum. `own`: words built on demand (see `add_pico`), and an espeak-ng clip too long for
    the window said faster until it fits (`FITS`)."""
    words = list(said_by)
    total = sum(len(who) + _pico_clips(config, w in part) for w, who in said_by.items())
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        pico_job = pool.submit(add_pico, folder, replace(config, words=tuple(words)), own, part) if config.pico else None

        def pico_done() -> int:
            return sum(1 for _ in folder.glob("*/pico*.wav")) if pico_job else 0

        done = spoken = 0
        for word in words:
            rng = rng_of(word)
            for sid, voice, _ in said_by[word]:
                text, voice = word + _ending(config, rng), jitter(voice, rng)
                audio = speak(speaker, text, voice)
                if own and len(audio) > FITS * SAMPLE_RATE:
                    faster = min(MAX_RATE, int(voice.rate * len(audio) / (FITS * SAMPLE_RATE)) + 1)
                    audio = speak(speaker, text, replace(voice, rate=faster))
                write_wav(folder / word / f"{sid}_nohash_0.wav", place(audio, rng))
                done += 1
                if progress and done % 50 == 0:
                    spoken = pico_done() if done % 1000 == 0 else spoken  # (counting files costs)
                    progress(done + spoken, total)
        if pico_job:
            while not wait([pico_job], timeout=0.5).done:
                if progress:
                    progress(done + pico_done(), total)
            pico_job.result()  # (re-raises what went wrong over there)
    if progress:
        progress(total, total)


def _share_of(speakers: list[tuple[str, Voice, str]], share: float) -> list[tuple[str, Voice, str]]:
    """The first `share` of each split's speakers (at least one), in their order."""
    quota = {split: max(1, round(share * sum(s == split for _, _, s in speakers))) for _, _, split in speakers}
    seen = dict.fromkeys(quota, 0)
    out = []
    for sid, voice, split in speakers:
        seen[split] += 1
        if seen[split] <= quota[split]:
            out.append((sid, voice, split))
    return out


def _pico_clips(config: SynthConfig, in_part: bool) -> int:
    return round(config.pico * config.others_share) if in_part else config.pico


def _ending(config: SynthConfig, rng: np.random.Generator) -> str:
    # (a single ending draws nothing, so the default corpus stays what it was)
    return config.endings[int(rng.integers(len(config.endings)))] if len(config.endings) > 1 else config.endings[0]


# Words beyond the corpus's 35 (`kws train --dataset synth --words "hey computer"`) are built on
# demand into a cache beside the corpus, a folder per word, by the corpus's own speakers: the same
# ids in the same splits, so a word joins the corpus without a voice crossing from test to training.
# A corpus of links (`with_words`) then puts a training's words and the corpus together.

def config_of(corpus: Path) -> SynthConfig:
    """The configuration a corpus was built with, from the marker `build` wrote into it."""
    import ast

    saved = {"others_share": 1.0, **ast.literal_eval((corpus / SYNTH_MARKER).read_text())}  # (built before it)
    known = {f.name for f in fields(SynthConfig)}
    return SynthConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in saved.items() if k in known})


def words_cache(corpus: Path) -> Path:
    return corpus.with_name(corpus.name + "-words")


def check_word(text: str, speaker: Speaker) -> str:
    """The word as its folder is named, once espeak-ng has said it and it fits the window."""
    from ..errors import UserError
    from ..voices.confusable import normalise

    word = normalise(text)
    seconds = len(speak(speaker, word, Voice())) / SAMPLE_RATE
    if seconds == 0:
        raise UserError(f"--words {word!r}: espeak-ng says nothing for it")
    if seconds > LONGEST:
        raise UserError(f"--words {word!r}: takes {seconds:.1f} s at a normal pace, and a keyword must fit the "
                        f"1-s window (phrases up to about {LONGEST:g} s are said faster to fit): choose a shorter one")
    return word


def build_words(corpus: Path, config: SynthConfig, words: list[str],
                progress: Callable[[int, int], None] | None = None) -> list[str]:
    """Build each of `words` that neither `corpus` (every speaker: `in_full`) nor its word cache
    has; returns those built.

    A clip that would overflow the window is said faster until it fits (`FITS`). Each word draws
    from its own random stream, so it sounds the same whichever words were built with it.
    """
    cache = words_cache(corpus)
    missing = [w for w in dict.fromkeys(words) if not in_full(corpus, config, w) and not is_complete(cache / w)]
    if not missing:
        return []
    speaker = Speaker()
    speakers = _speakers(config, np.random.default_rng(config.seed))
    partial = cache / ".partial"
    shutil.rmtree(partial, ignore_errors=True)
    for word in missing:
        (partial / word).mkdir(parents=True)
    _speak_words(partial, config, dict.fromkeys(missing, speakers), speaker,
                 lambda word: np.random.default_rng([config.seed, 2, zlib.crc32(word.encode())]), progress, own=True)
    for word in missing:
        (partial / word / COMPLETE_MARKER).write_text("kws synth\n")
        shutil.rmtree(cache / word, ignore_errors=True)
        (partial / word).rename(cache / word)
    partial.rmdir()
    return missing


def with_words(corpus: Path, config: SynthConfig, words: list[str], negatives: list[str]) -> Path:
    """A corpus of links to `corpus`'s words and noise and to `words` and `negatives` in its word
    cache (all built), with split lists that put each speaker where `corpus` does, and the
    negatives named in `NEGATIVES`. Reused while the same words are asked for."""
    cache = words_cache(corpus)
    extra = [w for w in dict.fromkeys([*words, *negatives]) if not in_full(corpus, config, w)]
    key = hashlib.sha1(repr((sorted(extra), sorted(negatives))).encode()).hexdigest()[:8]
    view = corpus.with_name(f"{corpus.name}-with-{key}")
    if is_complete(view):
        return view
    partial = view.with_name(view.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir()
    for target in [p for p in corpus.iterdir() if p.is_dir() and p.name not in extra] + [cache / w for w in extra]:
        try:
            (partial / target.name).symlink_to(target.resolve(), target_is_directory=True)
        except OSError:  # no links allowed here (Windows without developer mode): copy instead
            shutil.copytree(target, partial / target.name)
    split_of = {sid: split for sid, _, split in _speakers(config, np.random.default_rng(config.seed))}
    for split, name in (("val", "validation_list.txt"), ("test", "testing_list.txt")):
        own = [f"{w}/{wav.name}" for w in extra for wav in sorted((cache / w).glob("*.wav"))
               if split_of.get(speaker_of(wav.name)) == split]
        kept = [p for p in (corpus / name).read_text().splitlines() if p.split("/")[0] not in extra]
        (partial / name).write_text("".join(p + "\n" for p in kept + own))
    shutil.copy(corpus / SYNTH_MARKER, partial / SYNTH_MARKER)
    (partial / NEGATIVES).write_text("".join(w + "\n" for w in negatives))
    shutil.rmtree(view, ignore_errors=True)
    partial.rename(view)
    (view / COMPLETE_MARKER).write_text("kws synth\n")
    return view


def _speakers(config: SynthConfig, rng: np.random.Generator) -> list[tuple[str, Voice, str]]:
    """`per_word` distinct voices with an id and a split; held-out splits own whole variants."""
    variants = [""] + list_variants()
    rng.shuffle(variants)
    n_test = max(1, round(len(variants) * config.test_percent / 100))
    n_val = max(1, round(len(variants) * config.val_percent / 100))
    pools = {"test": variants[:n_test], "val": variants[n_test:n_test + n_val],
             "train": variants[n_test + n_val:]}
    n = config.per_word
    held = {"test": max(1, round(n * config.test_percent / 100)), "val": max(1, round(n * config.val_percent / 100))}
    splits = ["test"] * held["test"] + ["val"] * held["val"]
    splits += ["train"] * (n - len(splits))
    splits = [str(s) for s in rng.permutation(splits)]
    used = {"train": 0, "val": 0, "test": 0}
    out, seen = [], set()
    for k, split in enumerate(splits):
        variant = pools[split][used[split] % len(pools[split])]  # every variant before any repeats
        used[split] += 1
        voice = Voice(dialect=str(rng.choice(ENGLISH_DIALECTS)), variant=variant,
                      rate=int(rng.integers(*config.rates)), pitch=int(rng.integers(15, 90)),
                      pitch_range=int(rng.integers(20, 90)))
        if config.timbre > 0 and takes_timbre(variant):  # (drawn last: a timbre-free corpus stays as it was)
            voice = replace(voice, timbre=draw_timbre(rng, config.timbre).lines(variant))
        sid = hashlib.sha1(f"{config.seed}/{k}/{voice}".encode()).hexdigest()[:8]
        while sid in seen:
            sid = hashlib.sha1(sid.encode()).hexdigest()[:8]
        seen.add(sid)
        out.append((sid, voice, split))
    return out


def draw_timbre(rng: np.random.Generator, strength: float = 1.0) -> Timbre:
    """A random speaker's tract and source; `strength` scales every spread below (0: none).

    All formants move together by up to ±15% (tract length) and each by its own few percent
    (accent, articulation); bandwidths narrow or broaden; half the speakers get breath noise; pitch
    wobble, roughness, voicing and consonant levels vary; a third speak through a Klatt source.
    """
    tract = np.exp(rng.uniform(-0.15, 0.15) * strength)
    own = np.exp(rng.normal(0, 0.06 * strength, 9))
    scale = [1.0] + [float(tract * own[k]) for k in range(1, 9)]
    breath = tuple(int(b) for b in rng.integers(0, 1 + round(6 * strength), 8)) if rng.random() < 0.5 else ()
    return Timbre(
        formant_scale=tuple(scale), width_scale=float(np.exp(rng.uniform(-0.3, 0.5) * strength)),
        breath=breath, flutter=int(rng.integers(0, 1 + round(100 * strength))),
        roughness=int(rng.integers(0, 1 + round(5 * strength))),
        voicing=int(100 * np.exp(rng.uniform(-0.4, 0.4) * strength)),
        consonants=(int(100 * np.exp(rng.uniform(-0.5, 0.5) * strength)),
                    int(100 * np.exp(rng.uniform(-0.5, 0.5) * strength))),
        klatt=int(rng.integers(1, 5)) if rng.random() < 0.33 else None)


def jitter(voice: Voice, rng: np.random.Generator) -> Voice:
    """The same speaker never says a word twice in exactly the same way."""
    return replace(voice, rate=int(voice.rate * rng.uniform(0.9, 1.1)),
                   pitch=int(np.clip(voice.pitch + rng.integers(-5, 6), 0, 100)))


def add_pico(folder: Path, config: SynthConfig, own_words: bool = False, part: set[str] = frozenset()) -> None:
    """`config.pico` clips per word in Pico's voices (`others_share` of them for a word in `part`),
    training split only (never in the lists).

    Its own random stream, so the espeak-ng clips are the same with or without Pico (for
    `own_words`, one per word, so a word's clips do not depend on which words were built with it,
    and a phrase too long for the window is said faster). The voices take turns (`config.pico_voices`); each clip draws a pitch of 60-200% and a
    speed of 60-160% of the voice's own, and an ending that gives the word a falling, rising or
    stressed intonation.
    """
    rng = np.random.default_rng([config.seed, 1])
    speaker = pico_tts.PicoSpeaker()
    english = [v for v in config.pico_voices if v in pico_tts.ENGLISH] or list(pico_tts.ENGLISH)
    for word in config.words:
        if own_words:
            rng = np.random.default_rng([config.seed, 1, zlib.crc32(word.encode())])
        fallback = 0
        for k in range(_pico_clips(config, word in part)):
            language = config.pico_voices[k % len(config.pico_voices)]
            said = pico_tts.markup(word, language)
            if said is None:  # no phoneme string: an English voice reads the word itself
                language, fallback, said = english[fallback % len(english)], fallback + 1, word
            pitch, rate = int(rng.integers(60, 200)), int(rng.integers(60, 160))
            text = said + str(rng.choice(["", ".", "?", "!"]))
            audio = trim(speaker.say(text, language, pitch, rate))
            if own_words and len(audio) > FITS * SAMPLE_RATE:
                faster = min(pico_tts.RATE_RANGE[1], int(rate * len(audio) / (FITS * SAMPLE_RATE)) + 1)
                audio = trim(speaker.say(text, language, pitch, faster))
            clip = place(audio, rng)
            sid = hashlib.sha1(f"pico/{config.seed}/{word}/{k}".encode()).hexdigest()[:8]
            write_wav(folder / word / f"pico{sid}_nohash_0.wav", clip)


def speak(speaker: Speaker, text: str, voice: Voice) -> np.ndarray:
    """espeak-ng's 22,050 Hz output → 16 kHz, leading and trailing silence trimmed."""
    import soxr

    return trim(soxr.resample(speaker.say(text, voice), speaker.sample_rate, SAMPLE_RATE).astype(np.float32))


def trim(audio: np.ndarray) -> np.ndarray:
    """Without the leading and trailing stretches quieter than 1% of the peak."""
    loud = np.flatnonzero(np.abs(audio) > 0.01 * (np.abs(audio).max() + 1e-9))
    return audio[loud[0]:loud[-1] + 1] if len(loud) else audio


def place(word: np.ndarray, rng: np.random.Generator, length: int = SAMPLE_RATE) -> np.ndarray:
    """Put the word at a random offset in one second, at a random loudness."""
    word = word[:length]
    peak = float(np.abs(word).max()) or 1.0
    word = word / peak * 10 ** rng.uniform(-1.3, -0.05)  # peak between -26 dB and -1 dB
    clip = np.zeros(length, np.float32)
    start = int(rng.integers(0, length - len(word) + 1))
    clip[start:start + len(word)] = word
    return clip


def write_noise(folder: Path, rng: np.random.Generator, speaker: Speaker) -> None:
    """Generated background noise, one long WAV per kind, as the real dataset ships them."""
    folder.mkdir(parents=True, exist_ok=True)
    n = NOISE_SECONDS * SAMPLE_RATE
    for name, audio in noises(n, rng, speaker).items():
        write_wav(folder / f"{name}.wav", 0.5 * audio / (np.abs(audio).max() + 1e-9))
    (folder / "README.md").write_text("Noise generated by `kws synth`: coloured noises, mains hum, babble.\n")


def noises(n: int, rng: np.random.Generator, speaker: Speaker) -> dict[str, np.ndarray]:
    def coloured(exponent: float) -> np.ndarray:
        spectrum = np.fft.rfft(rng.standard_normal(n))
        f = np.fft.rfftfreq(n, 1 / SAMPLE_RATE)
        f[0] = f[1]
        return np.fft.irfft(spectrum * f ** (exponent / 2), n)

    t = np.arange(n) / SAMPLE_RATE
    hum = sum(np.sin(2 * np.pi * 50 * k * t + rng.uniform(0, 6.3)) / k for k in range(1, 8))
    hum = hum + 0.05 * rng.standard_normal(n)
    return {"white_noise": coloured(0), "pink_noise": coloured(-1), "brown_noise": coloured(-2),
            "blue_noise": coloured(1), "mains_hum": hum, "babble": _babble(n, rng, speaker)}


def _babble(n: int, rng: np.random.Generator, speaker: Speaker) -> np.ndarray:
    """Several espeak voices talking over each other, the sound of a room full of people."""
    out = np.zeros(n, np.float32)
    variants = list_variants()
    for _ in range(6):
        pos = 0
        while pos < n:
            voice = Voice(str(rng.choice(ENGLISH_DIALECTS)), str(rng.choice(variants)),
                          int(rng.integers(140, 220)), int(rng.integers(20, 80)))
            words = " ".join(rng.choice(WORDS, size=6))
            s = speak(speaker, words, voice)
            s = s[: n - pos]
            out[pos:pos + len(s)] += s / (np.abs(s).max() + 1e-9)
            pos += len(s) + int(rng.integers(0, SAMPLE_RATE // 4))
    return out
