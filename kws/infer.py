"""Classifying whole files with a trained model: audio clips of any length, or pictures."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .audio import SAMPLE_RATE, fit_length, load_audio
from .errors import UserError
from .model import Classifier

NON_KEYWORDS = ("_silence_", "_unknown_")


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


def windows(audio: np.ndarray, length: int = SAMPLE_RATE, hop: int = SAMPLE_RATE // 10) -> torch.Tensor:
    """Every 1-s window of a longer clip at `hop`, the last one flush with the end."""
    if len(audio) <= length:
        return torch.from_numpy(fit_length(audio, length)).unsqueeze(0)
    starts = list(range(0, len(audio) - length + 1, hop))
    if starts[-1] != len(audio) - length:
        starts.append(len(audio) - length)
    x = torch.from_numpy(np.ascontiguousarray(audio))
    return torch.stack([x[s:s + length] for s in starts])


@torch.no_grad()
def classify_audio(model: Classifier, audio: np.ndarray, name: str = "", hop: int = SAMPLE_RATE // 10,
                   batch: int = 64) -> Prediction:
    """A clip longer than one second is scanned; the window most confident of a keyword wins."""
    length = model.frontend.config.clip_samples
    win = windows(audio, length, hop)
    probs = torch.cat([model.probabilities(win[i:i + batch]) for i in range(0, len(win), batch)])
    keyword = [i for i, label in enumerate(model.labels) if label not in NON_KEYWORDS]
    conf, best_label = probs.max(1)
    is_keyword = torch.isin(best_label, torch.tensor(keyword)) if keyword else torch.zeros_like(conf, dtype=torch.bool)
    score = torch.where(is_keyword, conf + 1.0, conf)  # any keyword window beats every non-keyword one
    best = int(score.argmax())
    return Prediction(name, probs[best], model.labels, start=best * hop / SAMPLE_RATE if len(win) > 1 else 0.0)


def classify_file(model: Classifier, path: Path) -> Prediction:
    if model.kind == "audio":
        if _looks_like_image(path):
            raise UserError(f"{path}: this is an audio model and the file is an image")
        return classify_audio(model, load_audio(path), str(path))
    from .images import load_image

    if not _looks_like_image(path) and path.suffix.lower() in (".wav", ".flac", ".ogg", ".mp3"):
        raise UserError(f"{path}: this is an image model and the file is audio")
    pixels = load_image(path, model.frontend.image_shape)
    return Prediction(str(path), model.probabilities(pixels)[0], model.labels)


def _looks_like_image(path: Path) -> bool:
    try:
        with open(path, "rb") as f:
            head = f.read(8)
    except OSError:
        return False
    return head.startswith((b"\x89PNG", b"\xff\xd8\xff", b"GIF8", b"BM"))
