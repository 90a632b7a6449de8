"""Reading a picture of a digit into MNIST's 28×28 format, whatever its size, colours or polarity."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from .errors import UserError


def load_image(path: Path, shape: tuple[int, int] = (28, 28)) -> torch.Tensor:
    """(1, H, W) uint8, white digit on black, fitted into a 20×20 box and centred by mass like MNIST."""
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: no such file" if not path.exists() else f"{path}: not a file")
    try:
        with Image.open(path) as img:
            grey = np.asarray(img.convert("L"), dtype=np.float32)
    except (UnidentifiedImageError, OSError) as e:
        raise UserError(f"{path}: not a readable image ({type(e).__name__})") from None
    return torch.from_numpy(to_mnist(grey, shape)).unsqueeze(0)


def to_mnist(grey: np.ndarray, shape: tuple[int, int] = (28, 28)) -> np.ndarray:
    from PIL import Image

    border = np.concatenate([grey[0], grey[-1], grey[:, 0], grey[:, -1]])
    if np.median(border) > 127:  # dark ink on light paper: flip to MNIST's light-on-dark
        grey = 255 - grey
    grey = grey - np.median(border if np.median(border) <= 127 else 255 - border)
    grey = np.clip(grey, 0, None)
    if grey.max() <= 0:
        return np.zeros(shape, np.uint8)
    grey = grey / grey.max() * 255
    rows, cols = np.nonzero(grey > 0.2 * 255)
    grey = grey[rows.min():rows.max() + 1, cols.min():cols.max() + 1]
    box = round(min(shape) * 20 / 28)
    scale = box / max(grey.shape)
    size = (max(1, round(grey.shape[1] * scale)), max(1, round(grey.shape[0] * scale)))
    small = np.asarray(Image.fromarray(grey.astype(np.uint8)).resize(size, Image.LANCZOS), np.float32)
    canvas = np.zeros(shape, np.float32)
    top, left = (shape[0] - small.shape[0]) // 2, (shape[1] - small.shape[1]) // 2
    canvas[top:top + small.shape[0], left:left + small.shape[1]] = small
    ys, xs = np.indices(shape)
    mass = canvas.sum()
    dy = int(round(shape[0] / 2 - (ys * canvas).sum() / mass))
    dx = int(round(shape[1] / 2 - (xs * canvas).sum() / mass))
    canvas = np.roll(canvas, (dy, dx), axis=(0, 1))
    return np.clip(canvas, 0, 255).astype(np.uint8)
