"""The image side: MNIST (downloaded, sha256-verified) and scikit-learn's bundled 8×8 digits.

Both hand the trainer uint8 tensors of 28×28 pixels, the same network reads them as it reads
spectrograms.
"""

from __future__ import annotations

import gzip
import os
import struct
from pathlib import Path

import numpy as np
import torch

from ..download import Remote, fetch
from ..errors import UserError
from . import Splits

MNIST_BASE = "https://storage.googleapis.com/cvdf-datasets/mnist/"
MNIST_FILES = {
    "train-images-idx3-ubyte.gz": "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
    "train-labels-idx1-ubyte.gz": "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
    "t10k-images-idx3-ubyte.gz": "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
    "t10k-labels-idx1-ubyte.gz": "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
}
DIGITS = [str(d) for d in range(10)]


def download_mnist(data_dir: Path, base: str | None = None, progress: bool = True,
                   digests: dict[str, str] | None = None) -> Path:
    """The four IDX files into `data_dir/mnist/`, each verified against the official sha256."""
    base = (base or os.environ.get("KWS_MNIST_URL") or MNIST_BASE).rstrip("/") + "/"
    folder = data_dir / "mnist"
    for name, digest in (digests or MNIST_FILES).items():
        fetch(Remote(base + name, digest), folder, progress=progress)
    return folder


def read_idx(path: Path) -> np.ndarray:
    """An IDX file (optionally gzip-compressed) as a uint8 array, with its header checked."""
    try:
        raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    except (OSError, EOFError, gzip.BadGzipFile) as e:
        raise UserError(f"{path}: cannot read it ({e})") from None
    if len(raw) < 4 or raw[0:2] != b"\0\0":
        raise UserError(f"{path}: not an IDX file (bad magic number)")
    if raw[2] != 0x08:
        raise UserError(f"{path}: IDX data type 0x{raw[2]:02x} is not unsigned bytes")
    ndim = raw[3]
    if ndim not in (1, 3):
        raise UserError(f"{path}: IDX file with {ndim} dimensions; MNIST has 1 (labels) or 3 (images)")
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise UserError(f"{path}: truncated IDX header")
    shape = struct.unpack(f">{ndim}I", raw[4:header])
    expected = header + int(np.prod(shape))
    if len(raw) != expected:
        raise UserError(f"{path}: holds {len(raw) - header} data bytes but its header promises {expected - header} "
                        f"(shape {'×'.join(map(str, shape))}); the file is truncated or corrupt")
    return np.frombuffer(raw, np.uint8, offset=header).reshape(shape)


def _find(folder: Path, name: str) -> Path:
    for candidate in (folder / name, folder / name.removesuffix(".gz")):
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(name)


def load_mnist(folder: Path, seed: int = 0, val_size: int = 5000) -> Splits:
    """MNIST's 60,000 training images (the last `val_size`, shuffled by seed, validate) and 10,000 test."""
    files = {name: _find(folder, name) for name in MNIST_FILES}
    paths = list(files.values())
    x_train, y_train, x_test, y_test = (read_idx(files[n]) for n in MNIST_FILES)
    for images, labels, a, b in ((x_train, y_train, paths[0], paths[1]), (x_test, y_test, paths[2], paths[3])):
        if images.ndim != 3 or labels.ndim != 1:
            raise UserError(f"{a} / {b}: images must be 3-D and labels 1-D")
        if len(images) != len(labels):
            raise UserError(f"{a} has {len(images)} images but {b} has {len(labels)} labels")
        if images.shape[1:] != (28, 28):
            raise UserError(f"{a}: images are {images.shape[1]}×{images.shape[2]}, not 28×28")
        if labels.max(initial=0) > 9:
            raise UserError(f"{b}: labels beyond 9")
    order = torch.randperm(len(y_train), generator=torch.Generator().manual_seed(seed))
    x, y = torch.from_numpy(x_train.copy()), torch.from_numpy(y_train.astype(np.int64))
    val, train = order[:val_size], order[val_size:]
    return Splits("mnist", "image", DIGITS, (x[train], y[train]), (x[val], y[val]),
                  (torch.from_numpy(x_test.copy()), torch.from_numpy(y_test.astype(np.int64))),
                  info={"root": str(folder)})


def load_digits(seed: int = 0) -> Splits:
    """scikit-learn's 1,797 real 8×8 handwritten digits, scaled to MNIST's 28×28 frame: no download."""
    from PIL import Image
    from sklearn.datasets import load_digits as sk_digits

    data = sk_digits()
    images = np.stack([
        np.pad(np.asarray(Image.fromarray((img * 255 / 16).astype(np.uint8)).resize((20, 20), Image.BILINEAR)), 4)
        for img in data.images])
    x = torch.from_numpy(images)
    y = torch.from_numpy(data.target.astype(np.int64))
    order = torch.randperm(len(y), generator=torch.Generator().manual_seed(seed))
    n_val = n_test = len(y) * 15 // 100
    test, val, train = order[:n_test], order[n_test:n_test + n_val], order[n_test + n_val:]
    return Splits("digits", "image", DIGITS, (x[train], y[train]), (x[val], y[val]), (x[test], y[test]))


def load(name: str, data_dir: Path, seed: int = 0, progress: bool = True) -> Splits:
    if name == "digits":
        return load_digits(seed)
    folder = data_dir / "mnist"
    try:
        return load_mnist(folder, seed)
    except FileNotFoundError:
        return load_mnist(download_mnist(data_dir, progress=progress), seed)
