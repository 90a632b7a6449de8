"""Saving and loading models as plain data: tensors, strings and numbers, nothing executable.

Files are written atomically (temporary file, fsync, rename) and read with
`torch.load(weights_only=True)`, so a stranger's checkpoint can never run code here.
"""

from __future__ import annotations

import os
import pickle
import re
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from . import __version__
from .errors import UserError
from .model import Classifier, build_classifier

if TYPE_CHECKING:
    from .export import OnnxClassifier

FORMAT = 1


def atomic_save(obj: object, path: Path) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def save_model(model: Classifier, path: Path, **extra: object) -> None:
    """What `classify` needs without the dataset: recipe, weights, labels, plus `extra` metadata."""
    atomic_save({"format": FORMAT, "kws_version": __version__, "kind": model.kind, **model.describe(),
                 "state_dict": model.state_dict(), **extra}, path)


def add_to(path: Path, **extra: object) -> None:
    """Write more metadata into a saved checkpoint (what is learnt about it after training)."""
    atomic_save({**read(path), **extra}, path)


def read(path: Path) -> dict:
    """Load a checkpoint file as plain data, with one clear message for every way it can be wrong."""
    path = Path(path)
    if not path.exists():
        raise UserError(f"{path}: no such checkpoint")
    if path.is_dir():
        raise UserError(f"{path}: is a directory; give the model.pt inside it")
    if path.suffix.lower() == ".onnx":
        raise UserError(f"{path}: an ONNX export, which classify, detect and listen run; "
                        "this needs the model.pt it was exported from")
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        # torch says "GLOBAL module.name" when the pickle asks for something outside plain data;
        # any other unpickling error is a file that was never a checkpoint (text, an image, …)
        found = re.search(r"GLOBAL (\S+)|[Uu]nsupported class (\S+)", str(e))  # (older torch: "class")
        if found:
            raise UserError(f"{path}: refused: the checkpoint holds objects that could run code "
                            f"({found.group(1) or found.group(2)})") from None
        raise UserError(f"{path}: not a kws checkpoint (not a file torch.save wrote)") from None
    except Exception as e:
        raise UserError(f"{path}: not a kws checkpoint ({type(e).__name__})") from None
    if isinstance(data, dict) and "optimizer" in data and "model" in data:  # what `fit` writes as last.pt
        raise UserError(f"{path}: training state for `kws train --resume`, not a model; use the model.pt beside it")
    if not isinstance(data, dict) or "state_dict" not in data or "frontend" not in data:
        raise UserError(f"{path}: not a kws checkpoint")
    if data.get("format") != FORMAT:
        raise UserError(f"{path}: checkpoint format {data.get('format')} from kws {data.get('kws_version')}; "
                        f"this kws {__version__} reads format {FORMAT}")
    return data


def load_model(path: Path) -> tuple[Classifier, dict]:
    data = read(path)
    try:
        model = build_classifier(data["frontend"], data["net"], data["labels"], weights_follow=True,
                                 classes=data.get("classes"))
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        raise UserError(f"{path}: the checkpoint's model description is invalid ({e})") from None
    outputs = model.classes or model.labels
    if len(outputs) != data["net"].get("n_classes"):
        what = "classes" if model.classes else "labels"
        raise UserError(f"{path}: {len(outputs)} {what} but the network has {data['net'].get('n_classes')} outputs")
    try:
        model.load_state_dict(data["state_dict"])
    except RuntimeError as e:
        first = str(e).strip().splitlines()
        detail = next((line.strip() for line in first[1:] if line.strip()), first[0])
        raise UserError(f"{path}: the weights do not fit the model ({detail[:160]})") from None
    model.eval()
    return model, data


def load_any(path: Path) -> tuple["Classifier | OnnxClassifier", dict]:
    """A kws checkpoint (.pt), or a model exported to ONNX (.onnx, run by onnxruntime), ready to classify."""
    if Path(path).suffix.lower() == ".onnx":
        from .export import OnnxClassifier

        model = OnnxClassifier(path)
        return model, {"calibration": model.calibration} if model.calibration else {}
    return load_model(path)
