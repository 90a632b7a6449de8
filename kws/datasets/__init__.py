"""Datasets hand the trainer tensors. Each source is its own module; this package only names them."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
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

    def epoch_size(self) -> int:
        n = len(self.train[1])
        return n if self.draw is None else n - len(self.draw.rows) + self.draw.per_epoch

    def epoch_order(self, generator: torch.Generator) -> torch.Tensor:
        """The training rows one epoch shows, shuffled: a pure function of `generator`'s state."""
        if self.draw is None:
            return torch.randperm(len(self.train[1]), generator=generator)
        kept = torch.ones(len(self.train[1]), dtype=torch.bool)
        kept[self.draw.rows] = False
        drawn = self.draw.rows[torch.randperm(len(self.draw.rows), generator=generator)[:self.draw.per_epoch]]
        rows = torch.cat([kept.nonzero().flatten(), drawn])
        return rows[torch.randperm(len(rows), generator=generator)]

    def summary(self) -> str:
        sizes = [f"{n} {len(getattr(self, n)[1]):,}" for n in ("train", "val", "test")]
        if self.draw is not None:
            sizes[0] = f"train {self.epoch_size():,} an epoch (of {len(self.train[1]):,})"
        finer = f" ({len(self.classes)} in training)" if self.classes else ""
        return f"{self.name}: {len(self.labels)} classes{finer}, {', '.join(sizes)}"


def load_dataset(name: str, data_dir: Path, *, task: str = "12", words: list[str] | None = None,
                 seed: int = 0, per_word: int | None = None, unknown_words: bool = False,
                 unknown_each_epoch: bool = False, progress: bool = True) -> Splits:
    """Resolve `--dataset`: a known name (downloaded or generated on first use) or a folder.
    `unknown_words`: `_unknown_` training clips keep their own word as a class (`Splits.classes`);
    `unknown_each_epoch`: every epoch draws its `_unknown_` clips anew (`Splits.draw`)."""
    from ..errors import KwsError, UserError

    unknown = {"unknown_words": unknown_words, "unknown_each_epoch": unknown_each_epoch}
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
        from . import speech_commands, synth

        config = synth.SynthConfig(**({"per_word": per_word} if per_word else {}))
        root = build_synth(synth.default_root(data_dir, config), config, progress)
        return speech_commands.load(root, task, words, seed, name="synth", **unknown)
    if name in ("mnist", "digits"):
        from . import images

        return images.load(name, data_dir, seed=seed, progress=progress)
    path = Path(name)
    if path.is_dir():
        from . import speech_commands

        return speech_commands.load(path, task, words, seed, **unknown)
    raise UserError(f"--dataset {name}: not speech-commands, synth, mnist, digits, nor a folder")


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
