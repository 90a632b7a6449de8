"""Datasets hand the trainer tensors. Each source is its own module; this package only names them."""

from __future__ import annotations

import itertools
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path

import torch


@dataclass
class EpochDraw:
    """Training rows that take turns: each epoch shows `per_epoch` of `rows`, drawn anew.

    A catch-all class such as `_unknown_` is a few hundred clips drawn from tens of thousands; a
    fixed draw shows the net the same few hundred every epoch, a fresh one shows it all of them
    over a run, at the same cost per epoch.
    """

    rows: torch.Tensor  # (n,) indices into the training split
    per_epoch: int


@dataclass
class Splits:
    """Train, validation and test tensors of raw inputs (int16 waveforms or uint8 pixels) and labels."""

    name: str
    kind: str  # "audio" or "image": which frontend reads the inputs
    labels: list[str]
    train: tuple[torch.Tensor, torch.Tensor]
    val: tuple[torch.Tensor, torch.Tensor]
    test: tuple[torch.Tensor, torch.Tensor]
    # Long background-noise recordings (float32, 16 kHz, concatenated) for augmentation.
    noise: torch.Tensor | None = None
    info: dict = field(default_factory=dict)
    # Finer targets for the training split, when the dataset has them: each class is a label or
    # "label/part" (`_unknown_/bed`), and the training targets index these; validation and test
    # targets always index `labels`, since a model is judged by what it answers. None: the labels.
    classes: list[str] | None = None
    # Rows of the training split that each epoch draws from anew; None: every row, every epoch.
    draw: EpochDraw | None = None
    # Joined sources (`join`): their names, and for each split the source of every row.
    sources: list[str] | None = None
    source_of: dict[str, torch.Tensor] | None = None
    # How evenly an epoch's rows come from the sources: 0 as they fall (each row once), 1 the same
    # share from each; between, a source of n rows gets a share in proportion to n ** (1 - balance).
    balance: float = 0.0

    def epoch_size(self) -> int:
        n = len(self.train[1])
        return n if self.draw is None else n - len(self.draw.rows) + self.draw.per_epoch

    def epoch_order(self, generator: torch.Generator) -> torch.Tensor:
        """The training rows one epoch shows, shuffled: a pure function of `generator`'s state."""
        if self.draw is None:
            rows = torch.arange(len(self.train[1]))
        else:
            kept = torch.ones(len(self.train[1]), dtype=torch.bool)
            kept[self.draw.rows] = False
            drawn = self.draw.rows[torch.randperm(len(self.draw.rows), generator=generator)[:self.draw.per_epoch]]
            rows = torch.cat([kept.nonzero().flatten(), drawn])
        if self.balance and self.source_of is not None:
            rows = self._balanced(rows, generator)
        return rows[torch.randperm(len(rows), generator=generator)]

    def _balanced(self, rows: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """As many rows as given, each source's share set by `balance`: a small source's rows are
        shown more than once an epoch, a large one's in part (a fresh part each epoch)."""
        of = self.source_of["train"][rows]
        groups = [rows[of == s] for s in range(len(self.sources))]
        weights = torch.tensor([float(len(g)) ** (1 - self.balance) if len(g) else 0.0 for g in groups])
        quota = (weights / weights.sum() * len(rows)).floor().long()
        quota[int(weights.argmax())] += len(rows) - int(quota.sum())  # (the rounding's remainder)
        picked = []
        for group, k in zip(groups, quota.tolist()):
            repeats = -(-k // len(group)) if len(group) else 0
            order = torch.cat([group[torch.randperm(len(group), generator=generator)] for _ in range(repeats)])
            picked.append(order[:k])
        return torch.cat(picked)

    def is_synthetic(self) -> bool:
        """Whether these splits are one corpus `kws synth` built, which teaches its own other words."""
        from ..recipes import built_by_synth

        return built_by_synth(self.info.get("root"))

    def keyword_rows(self) -> torch.Tensor:
        """(n,) bool: which training rows are keywords, not `_silence_` or any `_unknown_` class."""
        from .speech_commands import NON_KEYWORDS

        names = self.classes or self.labels
        return torch.tensor([name.split("/")[0] not in NON_KEYWORDS for name in names], dtype=torch.bool)[self.train[1]]

    def labels_in_sources(self) -> torch.Tensor | None:
        """(sources, labels) bool: which labels each joined source has training rows of (a finer class
        counts for its label, `_unknown_/bed` for `_unknown_`); None for one source."""
        if self.source_of is None:
            return None
        names = self.classes or self.labels
        label_of_class = torch.tensor([self.labels.index(name.split("/")[0]) for name in names], dtype=torch.long)
        present = torch.zeros(len(self.sources), len(self.labels), dtype=torch.bool)
        present[self.source_of["train"], label_of_class[self.train[1]]] = True
        return present

    def keywords_only_synthetic(self) -> list[str]:
        """Joined sources, some of them recordings: the keywords whose training clips all come from
        corpora `kws synth` built, in label order; [] for one source or none recorded."""
        from ..recipes import built_by_synth
        from .speech_commands import NON_KEYWORDS

        present = self.labels_in_sources()
        roots = [info.get("root") for info in self.info.get("sources", [])]
        if present is None or len(roots) != len(present):  # (splits put together by hand: no roots)
            return []
        synthetic = torch.tensor([built_by_synth(root) for root in roots])
        if synthetic.all():
            return []
        recorded = present[~synthetic].any(0)
        return [word for i, word in enumerate(self.labels)
                if word not in NON_KEYWORDS and present[:, i].any() and not recorded[i]]

    def with_unknown_rows(self, clips: torch.Tensor, rows: torch.Tensor, kind: str) -> "Splits":
        """These splits with `clips` added to training as `_unknown_` (where other words are classes,
        as a class of their own, `_unknown_/KIND`), each in the source of the training row in `rows`
        it was made from; `info[KIND]` counts them."""
        from .speech_commands import UNKNOWN

        x, y = self.train
        classes = self.classes
        if classes is None or UNKNOWN in classes:
            target = (classes or self.labels).index(UNKNOWN)
        else:
            fine = f"{UNKNOWN}/{kind}"
            classes = classes if fine in classes else [*classes, fine]
            target = classes.index(fine)
        source_of = self.source_of and {**self.source_of, "train": torch.cat([self.source_of["train"],
                                                                              self.source_of["train"][rows]])}
        return replace(self, train=(torch.cat([x, clips]), torch.cat([y, torch.full((len(rows),), target)])),
                       classes=classes, source_of=source_of, info={**self.info, kind: len(rows)})

    def summary(self) -> str:
        sizes = [f"{n} {len(getattr(self, n)[1]):,}" for n in ("train", "val", "test")]
        if self.draw is not None:
            sizes[0] = f"train {self.epoch_size():,} an epoch (of {len(self.train[1]):,})"
        finer = f" ({len(self.classes)} in training)" if self.classes else ""
        return f"{self.name}: {len(self.labels)} classes{finer}, {', '.join(sizes)}"


def load_dataset(name: str, data_dir: Path, *, task: str = "12", words: list[str] | None = None,
                 seed: int = 0, per_word: int | None = None, unknown_words: bool = False,
                 unknown_each_epoch: bool = False, balance: float = 0.0, missing_ok: bool = False,
                 near_misses: int = 0, train_unknown_percent: float | None = None, progress: bool = True) -> Splits:
    """Resolve `--dataset`: a known name (downloaded or generated on first use), a folder, or
    several of these joined with `+` (`join`, with `balance`).
    `unknown_words`: `_unknown_` training clips keep their own word as a class (`Splits.classes`);
    `unknown_each_epoch`: every epoch draws its `_unknown_` clips anew (`Splits.draw`);
    `train_unknown_percent`: the training split's `_unknown_` clips, in percent of its keyword clips;
    `missing_ok`: a source may lack some of the keywords (as each of several sources may);
    `near_misses`: for `words` on the synthetic corpus, that many near misses of each (`own_words`)."""
    from ..errors import KwsError, UserError

    parts = [part for part in name.split("+") if part]
    if len(parts) > 1:
        options = {"task": task, "words": words, "seed": seed, "per_word": per_word, "unknown_words": unknown_words,
                   "unknown_each_epoch": unknown_each_epoch, "near_misses": near_misses,
                   "train_unknown_percent": train_unknown_percent, "progress": progress}
        from .speech_commands import KEYWORDS

        order = list(words) if words else list(KEYWORDS) if task == "12" else None
        return join([load_dataset(part, data_dir, missing_ok=True, **options) for part in parts], order, balance)
    unknown = {"unknown_words": unknown_words, "unknown_each_epoch": unknown_each_epoch, "missing_ok": missing_ok,
               "train_unknown_percent": train_unknown_percent}
    if name == "speech-commands":
        from . import speech_commands

        try:
            root = speech_commands.download(data_dir, progress=progress)
        except KwsError as e:
            if isinstance(e, UserError):
                raise
            raise KwsError(f"{e}. Without network, train offline on the synthetic corpus: "
                           "kws train --dataset synth") from None
        return speech_commands.load(root, task, words, seed, name="speech-commands", **unknown)
    if name == "synth":
        from . import synth

        config = synth.SynthConfig(**({"per_word": per_word} if per_word else {}))
        root = build_synth(synth.default_root(data_dir, config), config, progress)
        return _synth_corpus(root, "synth", task, words, seed, near_misses, progress, unknown)
    if name in ("mnist", "digits"):
        from . import images

        return images.load(name, data_dir, seed=seed, progress=progress)
    path = Path(name)
    if path.is_dir():
        from ..recipes import built_by_synth
        from . import speech_commands

        if built_by_synth(path):
            return _synth_corpus(path, None, task, words, seed, near_misses, progress, unknown)
        return speech_commands.load(path, task, words, seed, **unknown)
    raise UserError(f"--dataset {name}: not speech-commands, synth, mnist, digits, nor a folder")


def join(parts: list[Splits], order: list[str] | None = None, balance: float = 0.0) -> Splits:
    """Several sources as one dataset: words of the same name are one label, the labels are their
    union (`order` first, for the keywords), and every source keeps its own splits, so a source's
    test clips are only ever tested on. `Splits.source_of` says where each row came from."""
    from ..errors import UserError
    from .speech_commands import NON_KEYWORDS, SILENCE

    if len({p.kind for p in parts}) > 1:
        raise UserError(f"--dataset: cannot join audio and images ({', '.join(p.name for p in parts)})")
    names = [p.name for p in parts]
    if len(set(names)) < len(names):
        raise UserError(f"--dataset: a source is named twice ({'+'.join(names)})")
    found = {label for p in parts for label in p.labels}
    keywords = [w for w in (order or sorted(found)) if w in found and w not in NON_KEYWORDS]
    labels = [label for label in NON_KEYWORDS if label in found] + keywords
    if order and len(keywords) < len([w for w in order if w not in NON_KEYWORDS]):
        absent = [w for w in order if w not in found]
        raise UserError(f"--dataset {'+'.join(names)}: no source has the word(s) {', '.join(absent)}")
    classes = None
    if any(p.classes for p in parts):  # (the unknown words of every source, each a class)
        fine = sorted({c for p in parts for c in (p.classes or []) if c not in p.labels})
        classes = [label for label in labels if label == SILENCE] + fine + keywords

    def joined(split: str) -> tuple[torch.Tensor, torch.Tensor]:
        targets = classes if (classes and split == "train") else labels
        xs, ys = [], []
        for p in parts:
            x, y = getattr(p, split)
            own = p.classes if (p.classes and split == "train") else p.labels
            remap = torch.tensor([targets.index(c) for c in own], dtype=torch.long)
            xs.append(x)
            ys.append(remap[y] if len(y) else y)
        return torch.cat(xs), torch.cat(ys)

    splits = {split: joined(split) for split in ("train", "val", "test")}
    source_of = {split: torch.cat([torch.full((len(getattr(p, split)[1]),), i, dtype=torch.long)
                                   for i, p in enumerate(parts)]) for split in ("train", "val", "test")}
    offsets = [0, *itertools.accumulate(len(p.train[1]) for p in parts)]
    draws = [(p.draw, offset) for p, offset in zip(parts, offsets) if p.draw is not None]
    draw = EpochDraw(torch.cat([d.rows + offset for d, offset in draws]), sum(d.per_epoch for d, _ in draws)) \
        if draws else None
    noises = [p.noise for p in parts if p.noise is not None]
    return Splits("+".join(names), parts[0].kind, labels, splits["train"], splits["val"], splits["test"],
                  noise=torch.cat(noises) if noises else None, info={"sources": [p.info for p in parts]},
                  classes=classes, draw=draw, sources=names, source_of=source_of, balance=balance)


def _synth_corpus(root: Path, name: str | None, task: str, words: list[str] | None, seed: int, near_misses: int,
                  progress: bool, unknown: dict) -> Splits:
    """A synthetic corpus, with any `words` it lacks (and their near misses) built first."""
    from . import speech_commands, synth

    near: dict[str, list[str]] = {}
    built = root
    if not (root / synth.NEGATIVES).is_file():  # (not a corpus of links already)
        config = synth.config_of(root)
        if words:
            built, words, near = own_words(root, config, words, near_misses, seed, progress)
        elif task == "35" and config.in_part():  # every word a keyword: each said by every voice
            built = own_words(root, config, list(config.words), 0, seed, progress)[0]
    splits = speech_commands.load(built, task, words, seed, name=name or root.name, **unknown)
    if near:
        splits.info["near_misses"] = near
    return splits


def own_words(corpus: Path, config, words: list[str], near_misses: int = 0, seed: int = 0,
              progress: bool = True) -> tuple[Path, list[str], dict[str, list[str]]]:
    """The synthetic corpus for `words`, any words or short phrases: those it lacks are built, and
    each keyword gets `near_misses` near misses (`confusable.confusables`) taught as `_unknown_`.
    Returns the corpus (itself, or one of links: `synth.with_words`), the words as its folders
    name them, and each one's near misses."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from ..voices.confusable import confusables
    from ..voices.espeak import Speaker
    from . import synth

    corpus = corpus.resolve()  # (one word cache per corpus, however it is reached)
    speaker = Speaker()
    words = list(dict.fromkeys(synth.check_word(w, speaker) for w in words))
    near = {w: confusables(w, near_misses, avoid=tuple(x for x in words if x != w), seed=seed, speaker=speaker)
            for w in words} if near_misses else {}
    negatives = list(dict.fromkeys(n for w in words for n in near.get(w, []) if n not in words))
    if not negatives and all(synth.in_full(corpus, config, w) for w in words):
        return corpus, words, near
    with Progress(TextColumn("Synthesising {task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), disable=not progress, transient=True) as bar:
        task = bar.add_task("new words", total=None)
        synth.build_words(corpus, config, [*words, *negatives],
                          lambda done, total: bar.update(task, completed=done, total=total))
    return synth.with_words(corpus, config, words, negatives), words, near


def build_synth(root: Path, config, progress: bool = True) -> Path:
    """Generate the espeak-ng corpus with a progress bar (no-op when it is already complete)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from ..download import is_complete
    from ..voices import pico
    from . import synth

    if is_complete(root):
        return root
    if not config.pico and not pico.available():
        print('note: SVOX Pico is not installed, so the corpus is espeak-ng voices only; pip install "kws[pico]" '
              "adds voices modelled on real people", file=sys.stderr)
    with Progress(TextColumn("Synthesising {task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), disable=not progress, transient=True) as bar:
        task = bar.add_task(str(root), total=len(config.words) * (config.per_word + config.pico))
        return synth.ensure(root, config, lambda done, total: bar.update(task, completed=done))
