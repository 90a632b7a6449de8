"""Scoring a model: predictions in batches, accuracy, per-class precision and recall, confusion."""

from __future__ import annotations

import torch

from .model import Classifier


@torch.no_grad()
def predict(model: Classifier, x: torch.Tensor, batch_size: int = 512,
            device: torch.device | str = "cpu") -> torch.Tensor:
    """Class probabilities for every row of `x`, in eval mode."""
    was_training = model.training
    model.eval()
    out = [torch.softmax(model(x[i:i + batch_size].to(device)), dim=-1).cpu()
           for i in range(0, len(x), batch_size)]
    model.train(was_training)
    return torch.cat(out) if out else torch.zeros(0, len(model.labels))


def confusion(y_true: torch.Tensor, y_pred: torch.Tensor, n_classes: int) -> torch.Tensor:
    """Rows are true classes, columns predicted."""
    return torch.bincount(y_true * n_classes + y_pred, minlength=n_classes ** 2).view(n_classes, n_classes)


def report(y_true: torch.Tensor, y_pred: torch.Tensor, labels: list[str]) -> dict:
    """Accuracy and, per class, precision, recall and support, as plain numbers for JSON."""
    cm = confusion(y_true, y_pred, len(labels))
    tp = cm.diag().double()
    precision = tp / cm.sum(0).clamp_min(1)
    recall = tp / cm.sum(1).clamp_min(1)
    return {
        "accuracy": float(tp.sum() / max(1, len(y_true))),
        "count": len(y_true),
        "per_class": {label: {"precision": float(precision[i]), "recall": float(recall[i]),
                              "support": int(cm[i].sum())} for i, label in enumerate(labels)},
        "confusion": cm.tolist(),
    }


def evaluate_on(model: Classifier, meta: dict, dataset: str | None, data_dir, split: str = "test") -> dict:
    """Score `model` on a named dataset's split, or on every clip of a folder of word-named folders.

    A plain folder (no split lists, such as real recordings sorted by word) is scored whole, on the
    words the model knows; the others are listed as skipped.
    """
    from pathlib import Path

    from .datasets import load_dataset
    from .datasets.speech_commands import NON_KEYWORDS, decode_clips, word_folders
    from .errors import UserError

    if not dataset:
        raise UserError("--dataset: the checkpoint does not say which dataset it was trained on; name one")
    keywords = [label for label in model.labels if label not in NON_KEYWORDS]
    extra = len(keywords) != len(model.labels)
    path = Path(dataset)
    if model.kind == "audio" and path.is_dir() and not (path / "testing_list.txt").exists():
        folders = word_folders(path)
        known = [w for w in folders if w in model.labels]
        if not known:
            raise UserError(f"{path}: none of its word folders ({', '.join(folders[:6]) or 'none'}) "
                            f"is a word this model knows ({', '.join(keywords[:12])})")
        files = [(wav, model.labels.index(w)) for w in known for wav in sorted((path / w).glob("*.wav"))]
        x = torch.from_numpy(decode_clips([f for f, _ in files]))
        y = torch.tensor([label for _, label in files])
        name, skipped = str(path), [w for w in folders if w not in model.labels]
    else:
        train_args = meta.get("train_args", {})
        task = "35" if not extra else "12"
        words = keywords if extra else None
        splits = load_dataset(dataset, data_dir, task=task, words=words,
                              seed=int(train_args.get("train_config", {}).get("seed", 0)))
        if splits.labels != model.labels:
            raise UserError(f"{dataset}: its labels ({', '.join(splits.labels[:6])}…) differ from the model's")
        x, y = getattr(splits, split)
        name, skipped = splits.name, []
    probs = predict(model, x)
    result = report(y, probs.argmax(1), model.labels)
    return {"dataset": name, "split": split if not skipped and name != str(path) else "all",
            "labels": model.labels, "skipped": skipped, **result}
