"""Google Speech Commands v0.02 (CC BY 4.0), read from its real on-disk layout.

A folder per word, `_background_noise_/` with long noise recordings, and `validation_list.txt` /
`testing_list.txt` naming clips such as `yes/0a7c2a8d_nohash_0.wav`; every other clip trains.
The offline corpus from `kws synth` uses the same layout, so this one reader serves both.
"""

from __future__ import annotations

import os
import random
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch

from ..audio import SAMPLE_RATE, fit_length, to_mono_rate
from ..download import Remote, extract_tar, fetch, is_complete
from ..errors import UserError
from . import EpochDraw, Splits
from .cache import cached_clips

SILENCE, UNKNOWN = "_silence_", "_unknown_"
NON_KEYWORDS = (SILENCE, UNKNOWN)  # labels a model answers but never reports as a keyword heard
NOISE_DIR = "_background_noise_"
NEGATIVES = "negatives.txt"  # words a corpus teaches in full as `_unknown_` (`load`)
KEYWORDS = ("yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go")

ARCHIVE = Remote("http://download.tensorflow.org/data/speech_commands_v0.02.tar.gz",
                 "af14739ee7dc311471de98f5f9d2c9191b18aedfe957f4a6ff791c709868ff58", 2_428_923_189)
TEST_ARCHIVE = Remote("http://download.tensorflow.org/data/speech_commands_test_set_v0.02.tar.gz",
                      "cc2a00c1147c2254e9be3fa0f779d8c17421dc349b86366567a8edfa9acd51df", 112_563_277)
FOLDER, TEST_FOLDER = "speech_commands_v0.02", "speech_commands_test_set_v0.02"


def download(data_dir: Path, remote: Remote | None = None, folder: str = FOLDER, progress: bool = True) -> Path:
    """Fetch and extract an archive into `data_dir/folder` (no-op when already complete).

    `$KWS_SPEECH_COMMANDS_URL` (and `$KWS_SPEECH_COMMANDS_SHA256`) point the default at a mirror.
    """
    if remote is None:
        remote = Remote(os.environ.get("KWS_SPEECH_COMMANDS_URL") or ARCHIVE.url,
                        os.environ.get("KWS_SPEECH_COMMANDS_SHA256") or ARCHIVE.sha256)
    target = data_dir / folder
    if is_complete(target):
        return target
    archive = fetch(remote, data_dir / "downloads", progress=progress)
    return extract_tar(archive, target)


def word_folders(root: Path) -> list[str]:
    """Every word in the corpus: the folders holding WAVs, except the noise folder."""
    return sorted(p.name for p in root.iterdir()
                  if p.is_dir() and not p.name.startswith((".", "_")) and any(p.glob("*.wav")))


def task_words(root: Path, task: str = "12", words: list[str] | None = None,
               missing_ok: bool = False) -> tuple[list[str], bool]:
    """The keywords to recognise and whether `_silence_`/`_unknown_` classes are added.
    `missing_ok`: keep the keywords this folder has (one source among several may lack some, or all)."""
    available = word_folders(root)
    if words:
        chosen, extra = list(words), True
    elif task == "12":
        chosen, extra = list(KEYWORDS), True
    elif task == "35":
        chosen, extra = available, False
    else:
        raise UserError(f"unknown task {task!r}: use 12, 35, or --words a,b,c")
    missing = [w for w in chosen if w not in available]
    if missing and not missing_ok:
        raise UserError(f"{root}: no folder for the word(s) {', '.join(missing)}")
    return [w for w in chosen if w in available], extra


LISTS = {"val": "validation_list.txt", "test": "testing_list.txt"}


def has_split_lists(root: Path) -> bool:
    return all((root / name).is_file() for name in LISTS.values())


def speaker_of(rel: str) -> str:
    """The speaker of a clip: Speech Commands names it SPEAKER_nohash_N.wav; else the file's stem."""
    name = Path(rel).name
    return name.split("_nohash_")[0] if "_nohash_" in name else Path(name).stem


def hash_split(rel: str, val_percent: float = 10.0, test_percent: float = 10.0) -> str:
    """The split of a clip in a folder without split lists, from a hash of its speaker's name (the
    part before `_nohash_`, else the file name): the same on every machine and every run, and one
    speaker's clips stay together, as Speech Commands' own lists keep them."""
    import hashlib

    bucket = int(hashlib.sha1(f"kws/{speaker_of(rel)}".encode()).hexdigest()[:8], 16) % 10000 / 100
    return "val" if bucket < val_percent else "test" if bucket < val_percent + test_percent else "train"


def split_lists(root: Path) -> dict[str, list[str]]:
    """Relative clip paths per split, from the two list files (the rest is training); a folder
    with neither, such as a user's own recordings, is split by `hash_split`."""
    listed: dict[str, set[str]] | None = None
    if has_split_lists(root):
        listed = {split: {line.strip() for line in (root / name).read_text().splitlines() if line.strip()}
                  for split, name in LISTS.items()}
    elif any((root / name).is_file() for name in LISTS.values()):
        missing = next(name for name in LISTS.values() if not (root / name).is_file())
        raise UserError(f"{root}: has one split list but not {missing}; give both, or neither to split by hash")
    out: dict[str, list[str]] = {"train": [], "val": [], "test": []}
    for word in word_folders(root):
        for wav in sorted((root / word).glob("*.wav")):
            rel = f"{word}/{wav.name}"
            if listed is None:
                out[hash_split(rel)].append(rel)
            else:
                out["val" if rel in listed["val"] else "test" if rel in listed["test"] else "train"].append(rel)
    return out


def load(root: Path, task: str = "12", words: list[str] | None = None, seed: int = 0,
         silence_percent: float = 10.0, unknown_percent: float = 10.0, name: str | None = None,
         unknown_words: bool = False, unknown_each_epoch: bool = False, missing_ok: bool = False,
         train_unknown_percent: float | None = None) -> Splits:
    """Decode a corpus in the Speech Commands layout into int16 tensors, one row per 1-s clip.

    For the 12-class task, `_unknown_` clips are drawn from the other words and `_silence_` clips are
    cut from the background noise, each about `*_percent` of a split (TensorFlow's recipe). Words
    the corpus names in `negatives.txt`, near misses of its keywords, are `_unknown_` beside that
    draw, together as many clips as the keywords have (an even share each): a draw of a few clips
    of each would not teach where a keyword ends.
    `unknown_words` gives each other word a training class of its own, `_unknown_/bed` and so on
    (`Splits.classes`; the same clips are drawn), so the net learns each word rather than one broad
    catch-all class. `unknown_each_epoch` keeps every other
    word's training clip and has each epoch draw its `_unknown_` share anew (`Splits.draw`); the
    validation and test draws stay as they are. `train_unknown_percent` draws the training
    split's `_unknown_` share apart from the other splits' (the draws of those do not change).
    """
    root = Path(root)
    if not root.is_dir():
        raise UserError(f"{root}: no such dataset folder")
    keywords, extra = task_words(root, task, words, missing_ok)
    folders = word_folders(root)
    labels = ([SILENCE, UNKNOWN] if extra else []) + keywords
    index = {w: i for i, w in enumerate(labels)}
    classes = None
    if extra and unknown_words:
        classes = [SILENCE, *(f"{UNKNOWN}/{w}" for w in folders if w not in index), *keywords]
    negatives = set(read_negatives(root)) - set(keywords)
    rng = random.Random(seed)
    noise = load_noise(root)
    splits, draw = {}, None
    for split, paths in split_lists(root).items():
        fine = classes is not None and split == "train"
        target = {c: i for i, c in enumerate(classes if fine else labels)}
        known = [(p, target[p.split("/")[0]]) for p in paths if p.split("/")[0] in index]
        chosen = list(known)
        if extra:
            near = {w: [p for p in paths if p.split("/")[0] == w] for w in sorted(negatives)}
            share = -(-len(known) // max(1, len(near)))
            for w, clips in near.items():
                rng.shuffle(clips)
                chosen += [(p, target[f"{UNKNOWN}/{w}" if fine else UNKNOWN]) for p in clips[:share]]
            others = [p for p in paths if p.split("/")[0] not in index and p.split("/")[0] not in negatives]
            rng.shuffle(others)
            own_share = split == "train" and train_unknown_percent is not None
            percent = train_unknown_percent if own_share else unknown_percent
            n_unknown = min(len(others), int(np.ceil(len(known) * percent / 100)))
            pooled = unknown_each_epoch and split == "train"
            if pooled:
                draw = EpochDraw(torch.arange(len(chosen), len(chosen) + len(others)), n_unknown)
            chosen += [(p, target[f"{UNKNOWN}/{p.split('/')[0]}" if fine else UNKNOWN])
                       for p in (others if pooled else others[:n_unknown])]
        audio = cached_clips([root / p for p, _ in chosen], SAMPLE_RATE, decode_clips)
        y = [label for _, label in chosen]
        if extra:
            n_silence = int(np.ceil(len(known) * silence_percent / 100))
            audio = np.concatenate([audio, silence_clips(noise, n_silence, rng)])
            y += [target[SILENCE]] * n_silence
        splits[split] = (torch.from_numpy(audio), torch.tensor(y, dtype=torch.long))
    if len(splits["train"][1]) == 0:
        asked = ", ".join(keywords or words or KEYWORDS)
        raise UserError(f"{root}: no training clips for {asked}")
    return Splits(name or root.name, "audio", labels, splits["train"], splits["val"], splits["test"],
                  noise=torch.from_numpy(noise) if len(noise) else None,
                  info={"root": str(root), "task": task,
                        "other_words": [w for w in folders if w not in index] if extra else []},
                  classes=classes, draw=draw)


def read_negatives(root: Path) -> list[str]:
    path = root / NEGATIVES
    return [w.strip() for w in path.read_text().splitlines() if w.strip()] if path.is_file() else []


def decode_clips(paths: list[Path], length: int = SAMPLE_RATE) -> np.ndarray:
    """(n, length) int16; clips shorter than 1 s are zero-padded, longer ones cut."""
    out = np.zeros((len(paths), length), np.int16)

    def read(i: int) -> None:
        out[i] = _read_int16(paths[i], length)

    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(read, range(len(paths))))
    return out


def _read_int16(path: Path, length: int) -> np.ndarray:
    import soundfile as sf

    try:
        data, rate = sf.read(str(path), dtype="int16", always_2d=True)
    except Exception as e:  # a corrupt clip in a 100k-clip corpus is named, not a traceback
        raise UserError(f"{path}: cannot decode ({e})") from None
    if rate != SAMPLE_RATE or data.shape[1] != 1:
        mono = to_mono_rate(data.astype(np.float32) / 32768, rate)
        data = np.round(np.clip(mono, -1, 1) * 32767).astype(np.int16)
    return fit_length(data.reshape(-1), length)


def load_noise(root: Path) -> np.ndarray:
    """All background-noise recordings, resampled and concatenated (float32; empty if none)."""
    import soundfile as sf

    parts = []
    for wav in sorted((root / NOISE_DIR).glob("*.wav")):
        data, rate = sf.read(str(wav), dtype="float32", always_2d=True)
        parts.append(to_mono_rate(data, rate))
    return np.concatenate(parts) if parts else np.zeros(0, np.float32)


def silence_clips(noise: np.ndarray, n: int, rng: random.Random, length: int = SAMPLE_RATE) -> np.ndarray:
    """`n` 1-s cuts of background noise at random volume (digital silence if there is no noise)."""
    out = np.zeros((n, length), np.int16)
    if len(noise) <= length:
        return out
    for i in range(n):
        start = rng.randrange(len(noise) - length)
        cut = noise[start:start + length]
        peak = float(np.abs(cut).max()) or 1.0
        out[i] = np.round(np.clip(cut * (rng.uniform(0.0, 0.3) / peak), -1, 1) * 32767).astype(np.int16)
    return out
