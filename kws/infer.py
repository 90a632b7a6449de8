"""Classifying whole files with a trained model: audio clips of any length, or pictures."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import numpy as np
import torch

from .audio import SAMPLE_RATE, fit_length, stream_audio
from .datasets.speech_commands import NON_KEYWORDS
from .errors import UserError
from .model import Classifier


@dataclass
class Prediction:
    file: str
    probabilities: torch.Tensor  # over the model's labels
    labels: list[str]
    start: float = 0.0  # seconds: where the best 1-s window begins in a longer clip

    def top(self, k: int) -> list[tuple[str, float]]:
        p, i = self.probabilities.topk(min(k, len(self.labels)))
        return [(self.labels[j], float(q)) for q, j in zip(p, i)]

    def as_json(self, k: int) -> dict:
        top = self.top(k)
        return {"file": self.file, "label": top[0][0], "probability": round(top[0][1], 6),
                "top": [{"label": label, "probability": round(p, 6)} for label, p in top]}


@torch.no_grad()
def classify_audio(model: Classifier, audio: np.ndarray, name: str = "", hop: int = SAMPLE_RATE // 10,
                   batch: int = 64) -> Prediction:
    """A clip longer than one second is scanned; the window most confident of a keyword wins."""
    return classify_chunks(model, [audio], name, hop, batch)


@torch.no_grad()
def classify_chunks(model: Classifier, chunks: Iterable[np.ndarray], name: str = "",
                    hop: int = SAMPLE_RATE // 10, batch: int = 64) -> Prediction:
    """`classify_audio` over a stream of chunks: every 1-s window at `hop`, the last one flush with
    the end, scored `batch` at a time, holding no more than a chunk and a window in memory."""
    length = model.clip_samples
    keyword = torch.tensor([i for i, label in enumerate(model.labels) if label not in NON_KEYWORDS], dtype=torch.long)
    best: list = [-1.0, None, 0]  # score, probabilities, start sample

    def score(frames: np.ndarray, first_start: int) -> None:
        probs = model.probabilities(torch.from_numpy(np.array(frames, dtype=np.float32)))
        conf, label = probs.max(1)
        # any window whose top label is a keyword beats every window whose top label is not
        ranked = torch.where(torch.isin(label, keyword), conf + 1.0, conf)
        i = int(ranked.argmax())
        if float(ranked[i]) > best[0]:
            best[:] = [float(ranked[i]), probs[i], first_start + i * hop]

    carry = np.zeros(0, np.float32)
    tail = np.zeros(0, np.float32)  # the last `length` samples seen
    offset = total = 0  # stream position of carry[0]; samples seen
    for chunk in chunks:
        chunk = np.asarray(chunk, np.float32).reshape(-1)
        carry = np.concatenate([carry, chunk])
        tail = np.concatenate([tail, chunk])[-length:]
        total += len(chunk)
        n = (len(carry) - length) // hop + 1 if len(carry) >= length else 0
        view = np.lib.stride_tricks.sliding_window_view(carry, length) if n else None
        for first in range(0, n, batch):
            count = min(batch, n - first)
            score(view[first * hop:(first + count) * hop:hop], offset + first * hop)
        carry = carry[n * hop:]
        offset += n * hop
    if total < length:
        score(fit_length(tail, length)[None], 0)
    elif (total - length) % hop:
        score(tail[None], total - length)
    if best[1] is None:
        raise UserError(f"{name}: the audio has no samples")
    start = best[2] / SAMPLE_RATE if total > length else 0.0
    return Prediction(name, best[1], model.labels, start=start)


def classify_file(model: Classifier, path: Path) -> Prediction:
    check_modality(model, path)
    if model.kind == "audio":
        return classify_chunks(model, stream_audio(path), str(path))
    from .images import load_image

    return classify_pixels(model, load_image(path, model.frontend.image_shape), str(path))


def classify_pixels(model: Classifier, pixels: torch.Tensor, name: str = "") -> Prediction:
    """One picture, already at the model's image size."""
    return Prediction(name, model.probabilities(pixels)[0], model.labels)


def check_modality(model: Classifier, path: Path) -> None:
    """A picture handed to an audio model, or a sound to an image model, is one clear line."""
    if model.kind == "audio" and _looks_like_image(path):
        raise UserError(f"{path}: this is an audio model and the file is an image")
    if model.kind != "audio" and not _looks_like_image(path) and path.suffix.lower() in (".wav", ".flac", ".ogg", ".mp3"):
        raise UserError(f"{path}: this is an image model and the file is audio")


def _looks_like_image(path: Path) -> bool:
    try:
        with open(path, "rb") as f:
            head = f.read(8)
    except OSError:
        return False
    return head.startswith((b"\x89PNG", b"\xff\xd8\xff", b"GIF8", b"BM"))
