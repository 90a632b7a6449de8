"""Reading sound files into 16 kHz mono float32, whatever their format, rate or channels."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import numpy as np

from .errors import UserError

SAMPLE_RATE = 16000


def load_audio(path: str | Path, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Decode any file libsndfile reads (WAV of any sample type, FLAC, OGG…), mix down, resample.

    Raises UserError with a one-line reason for anything a user could have handed us.
    """
    blocks = list(stream_audio(path, sample_rate))
    return np.concatenate(blocks) if blocks else np.zeros(0, np.float32)  # a few samples may resample to none


def stream_audio(path: str | Path, sample_rate: int = SAMPLE_RATE, block_seconds: float = 10.0) -> Iterator[np.ndarray]:
    """The same decoding in blocks of about `block_seconds`, so an hour-long file costs no more
    memory than a short one. Problems found part-way (a truncated file, a NaN) raise UserError then.
    """
    import soundfile as sf

    path = Path(path)
    if not path.exists():
        raise UserError(f"{path}: no such file")
    if path.is_dir():
        raise UserError(f"{path}: is a directory, not an audio file")
    if path.stat().st_size == 0:
        raise UserError(f"{path}: the file is empty")
    try:
        with sf.SoundFile(str(path)) as f:
            rate = f.samplerate
            resampler = None
            if rate != sample_rate:
                import soxr

                resampler = soxr.ResampleStream(rate, sample_rate, 1, dtype="float32")
            frames = max(1, int(block_seconds * rate))
            total = 0
            while True:
                block = f.read(frames, dtype="float32", always_2d=True)
                last = len(block) < frames
                total += len(block)
                if not np.isfinite(block).all():
                    raise UserError(f"{path}: the audio contains NaN or infinite samples")
                mono = np.ascontiguousarray(block.mean(axis=1), dtype=np.float32)
                out = resampler.resample_chunk(mono, last=last) if resampler is not None else mono
                if len(out):
                    yield out
                if last:
                    break
    except (sf.LibsndfileError, RuntimeError, OSError) as e:
        reason = str(e).split(":")[-1].strip() or "unreadable"
        raise UserError(f"{path}: not a readable audio file ({reason})") from None
    if total == 0:
        raise UserError(f"{path}: the audio has no samples")


def to_mono_rate(data: np.ndarray, rate: int, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """(samples, channels) or (samples,) at `rate` → (samples,) float32 at `sample_rate`."""
    mono = data.mean(axis=1) if data.ndim == 2 else data
    mono = np.ascontiguousarray(mono, dtype=np.float32)
    if rate != sample_rate:
        import soxr

        mono = soxr.resample(mono, rate, sample_rate).astype(np.float32)
    return mono


def fit_length(x: np.ndarray, length: int = SAMPLE_RATE) -> np.ndarray:
    """Zero-pad at the end or cut to exactly `length` samples (clips shorter than 1 s are padded)."""
    if len(x) >= length:
        return x[:length]
    return np.pad(x, (0, length - len(x)))


def write_wav(path: str | Path, x: np.ndarray, sample_rate: int = SAMPLE_RATE) -> None:
    """16-bit PCM, the Speech Commands format."""
    import soundfile as sf

    sf.write(str(path), np.clip(x, -1.0, 1.0), sample_rate, subtype="PCM_16")
