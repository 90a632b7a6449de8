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
    words the model knows; the others are listed as skipped and, for a model with `_unknown_`,
    scored by how many of their clips it rejects (`rejection`).
    """
    from pathlib import Path

    from .datasets.speech_commands import UNKNOWN, decode_clips, has_split_lists, word_folders
    from .errors import UserError

    if not dataset:
        raise UserError("--dataset: the checkpoint does not say which dataset it was trained on; name one")
    path = Path(dataset)
    whole = model.kind == "audio" and path.is_dir() and not has_split_lists(path)
    splits = None
    if whole:
        folders = word_folders(path)
        known = [w for w in folders if w in model.labels]
        if not known:
            raise UserError(f"{path}: none of its word folders ({', '.join(folders[:6]) or 'none'}) "
                            f"is a word this model knows ({', '.join(model.labels[:12])})")
        files = [(wav, model.labels.index(w)) for w in known for wav in sorted((path / w).glob("*.wav"))]
        x = torch.from_numpy(decode_clips([f for f, _ in files]))
        y = torch.tensor([label for _, label in files])
        name, skipped = str(path), [w for w in folders if w not in model.labels]
    else:
        splits, x, y = model_split(model, meta, dataset, data_dir, split)
        name, skipped = splits.name, []
    probs = predict(model, x)
    result = report(y, probs.argmax(1), model.labels)
    out = {"dataset": name, "split": "all" if whole else split, "labels": model.labels, "skipped": skipped, **result}
    if whole and skipped and UNKNOWN in model.labels:
        out["unknown_words"] = rejection(model, {w: sorted((path / w).glob("*.wav")) for w in skipped})
    if splits is not None and splits.sources:  # joined sources: each one's own figure too
        of, right = splits.source_of[split], probs.argmax(1) == y
        out["per_source"] = {source: {"accuracy": float(right[of == i].float().mean()) if (of == i).any() else 0.0,
                                      "count": int((of == i).sum())} for i, source in enumerate(splits.sources)}
    return out


def model_split(model: Classifier, meta: dict, dataset: str, data_dir, split: str):
    """A dataset's split loaded for `model`: (splits, inputs, targets among the model's labels).
    The dataset may lack some of the model's keywords (a source with seven of ten, say); drawn with
    the training seed, so `_unknown_` and `_silence_` rows are those the run was judged on."""
    from .datasets import load_dataset
    from .datasets.speech_commands import NON_KEYWORDS
    from .errors import UserError

    keywords = [label for label in model.labels if label not in NON_KEYWORDS]
    extra = len(keywords) != len(model.labels)
    args = meta.get("train_args", {})
    seed = int(args.get("train_config", {}).get("seed", 0))
    near = int(args.get("recipe", {}).get("near_misses", 0)) if args.get("words") else 0  # (as it trained)
    splits = load_dataset(dataset, data_dir, task="12" if extra else "35", words=keywords if extra else None,
                          missing_ok=True, seed=seed, near_misses=near)
    foreign = [label for label in splits.labels if label not in model.labels]
    if foreign:
        raise UserError(f"{dataset}: its labels {', '.join(foreign[:6])} are not the model's")
    x, y = getattr(splits, split)
    to_model = torch.tensor([model.labels.index(label) for label in splits.labels], dtype=torch.long)
    return splits, x, to_model[y] if len(y) else y


def rejection(model: Classifier, files: dict[str, list]) -> dict:
    """How a model answers clips of words it does not know, which should come out `_unknown_`:
    the share rejected (answered `_unknown_` or `_silence_`), and the keywords the rest were taken for."""
    from .datasets.speech_commands import NON_KEYWORDS, decode_clips

    paths = [f for clips in files.values() for f in clips]
    answers = predict(model, torch.from_numpy(decode_clips(paths))).argmax(1).tolist()
    said = [model.labels[a] for a in answers]
    per_word, start = {}, 0
    for word, clips in files.items():
        mine = said[start:start + len(clips)]
        start += len(clips)
        per_word[word] = {"count": len(mine), "rejected": sum(a in NON_KEYWORDS for a in mine) / max(1, len(mine))}
    taken: dict[str, int] = {}
    for answer in said:
        if answer not in NON_KEYWORDS:
            taken[answer] = taken.get(answer, 0) + 1
    return {"count": len(said), "rejected": sum(a in NON_KEYWORDS for a in said) / max(1, len(said)),
            "taken_for": dict(sorted(taken.items(), key=lambda kv: -kv[1])), "per_word": per_word}


def stream_on(model: Classifier, meta: dict, dataset: str | None, data_dir, split: str = "test",
              minutes: float = 20.0, seed: int = 0, recording=None, truth=None, config=None,
              rates: tuple[float, ...] = ()) -> dict:
    """Recall and false accepts per hour of the streaming engine: on a recording built from a
    split's clips over the dataset's noise (`wakeword.build_stream`), or on `recording` and its
    `truth`; one run of the model, every threshold of the sweep scored."""
    from . import wakeword
    from .audio import SAMPLE_RATE, load_audio
    from .stream import DetectorConfig

    config = config or DetectorConfig()
    if recording is not None:
        audio, events, name = load_audio(recording), wakeword.read_truth(truth), str(recording)
    else:
        x, y, noise, name = _clips_for_stream(model, meta, dataset, data_dir, split)
        audio, events = wakeword.build_stream(x, y, model.labels, noise, minutes, seed)
    points = wakeword.sweep(model, audio, events, config)
    return {"dataset": name, "split": None if recording is not None else split, "seed": seed,
            "minutes": round(len(audio) / SAMPLE_RATE / 60, 2),
            "keywords": sum(e.label in model.labels and e.label not in wakeword.NON_KEYWORDS for e in events),
            "other_words": sum(e.label not in model.labels or e.label in wakeword.NON_KEYWORDS for e in events),
            **wakeword.summary(points, config.threshold, tuple(sorted({*wakeword.RATES, *rates}))), "curve": points}


def _clips_for_stream(model: Classifier, meta: dict, dataset: str | None, data_dir, split: str):
    """1-s clips, their targets among the model's labels, and the noise to lay them over. A plain
    folder gives all its clips, the words the model does not know as `_unknown_`."""
    from pathlib import Path

    from .datasets.speech_commands import UNKNOWN, decode_clips, has_split_lists, load_noise, word_folders
    from .errors import UserError

    if model.kind != "audio":
        raise UserError("--stream: streaming needs an audio model")
    if not dataset:
        raise UserError("--dataset: the checkpoint does not say which dataset it was trained on; name one")
    path = Path(dataset)
    if path.is_dir() and not has_split_lists(path):
        unknown = model.labels.index(UNKNOWN) if UNKNOWN in model.labels else None
        files = [(wav, model.labels.index(w) if w in model.labels else unknown)
                 for w in word_folders(path) for wav in sorted((path / w).glob("*.wav"))]
        files = [(f, t) for f, t in files if t is not None]
        noise = load_noise(path)
        return (torch.from_numpy(decode_clips([f for f, _ in files])), torch.tensor([t for _, t in files]),
                torch.from_numpy(noise) if len(noise) else None, str(path))
    splits, x, y = model_split(model, meta, dataset, data_dir, split)
    return x, y, splits.noise, splits.name
