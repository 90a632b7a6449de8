"""Decoded clips kept in one memory-mapped int16 file, so a corpus is decoded once, not every run.

The arrays live in a per-user cache folder (`cache_dir`), never beside the data: a dataset may be
installed read-only, or shared. Each is named by the list of files (their absolute paths) and
keyed by each file's size and modification time: a changed, added or removed clip makes a new key,
and the stale array for that list is deleted. The array is written to a temporary name and renamed
only when complete, so an interrupted build is never read as a finished one.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Callable

import numpy as np

def cache_dir() -> Path:
    """`$KWS_CACHE_DIR`, else the platform's user cache folder (`~/.cache/kws/clips` on Linux)."""
    if os.environ.get("KWS_CACHE_DIR"):
        return Path(os.environ["KWS_CACHE_DIR"])
    import platformdirs

    return Path(platformdirs.user_cache_dir("kws")) / "clips"


def _keys(paths: list[Path], length: int) -> tuple[str, str]:
    names = hashlib.sha256(f"{length}\n".encode())
    content = hashlib.sha256()
    for p in paths:
        p = p.absolute()  # (one cache folder serves every corpus)
        st = p.stat()
        names.update(f"{p}\n".encode())
        content.update(f"{p}\t{st.st_size}\t{st.st_mtime_ns}\n".encode())
    return names.hexdigest()[:16], content.hexdigest()[:16]


def cached_clips(paths: list[Path], length: int, decode: Callable[[list[Path], int], np.ndarray]) -> np.ndarray:
    """(len(paths), length) int16: from the cache when it is current, else decoded and cached.

    The result is a copy-on-write memory map: reading it costs page faults, not WAV decoding, and
    writing to it (augmentation in place, say) never changes the file. Where the cache folder
    cannot be written, clips are decoded without a cache.
    """
    if not paths:
        return np.zeros((0, length), np.int16)
    names, content = _keys(paths, length)
    cache = cache_dir()
    target = cache / f"{names}-{content}.int16"
    if target.is_file() and target.stat().st_size == len(paths) * length * 2:
        return np.memmap(target, dtype=np.int16, mode="c", shape=(len(paths), length))
    audio = decode(paths, length)
    partial = target.with_suffix(f".partial{os.getpid()}")
    try:
        cache.mkdir(parents=True, exist_ok=True)
        for stale in cache.glob(f"{names}-*.int16"):
            stale.unlink()
        with open(partial, "wb") as f:
            f.write(np.ascontiguousarray(audio, dtype=np.int16).tobytes())
            f.flush()
            os.fsync(f.fileno())
        os.replace(partial, target)
    except OSError:  # no home folder, a full disk: carry on uncached
        partial.unlink(missing_ok=True)
    return audio
