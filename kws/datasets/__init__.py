"""Datasets hand the trainer tensors. Each source is its own module; this package only names them."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path

import torch


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

    def summary(self) -> str:
        sizes = ", ".join(f"{n} {len(getattr(self, n)[1]):,}" for n in ("train", "val", "test"))
        finer = f" ({len(self.classes)} in training)" if self.classes else ""
        return f"{self.name}: {len(self.labels)} classes{finer}, {sizes}"


def load_dataset(name: str, data_dir: Path, *, task: str = "12", words: list[str] | None = None,
                 seed: int = 0, per_word: int | None = None, unknown_words: bool = False,
                 progress: bool = True) -> Splits:
    """Resolve `--dataset`: a known name (downloaded or generated on first use) or a folder.
    `unknown_words`: `_unknown_` training clips keep their own word as a class (`Splits.classes`)."""
    from ..errors import KwsError, UserError

    if name == "speech-commands":
        from . import speech_commands

        try:
            root = speech_commands.download(data_dir, progress=progress)
        except KwsError as e:
            if isinstance(e, UserError):
                raise
            raise KwsError(f"{e}. Without network, train offline on the synthetic corpus: "
                           "kws train --dataset synth") from None
        return speech_commands.load(root, task, words, seed, name="speech-commands", unknown_words=unknown_words)
    if name == "synth":
        from . import speech_commands, synth

        config = synth.SynthConfig(**({"per_word": per_word} if per_word else {}))
        root = build_synth(synth.default_root(data_dir, config), config, progress)
        return speech_commands.load(root, task, words, seed, name="synth", unknown_words=unknown_words)
    if name in ("mnist", "digits"):
        from . import images

        return images.load(name, data_dir, seed=seed, progress=progress)
    path = Path(name)
    if path.is_dir():
        from . import speech_commands

        return speech_commands.load(path, task, words, seed, unknown_words=unknown_words)
    raise UserError(f"--dataset {name}: not speech-commands, synth, mnist, digits, nor a folder")


def build_synth(root: Path, config, progress: bool = True) -> Path:
    """Generate the espeak-ng corpus with a progress bar (no-op when it is already complete)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from .. import pico
    from ..download import is_complete
    from . import synth

    if is_complete(root):
        return root
    if not config.pico and not pico.available():
        print('note: SVOX Pico is not installed, so the corpus is espeak-ng voices only; pip install "kws[pico]" '
              "adds voices modelled on real people (README: Hearing real people)", file=sys.stderr)
    with Progress(TextColumn("Synthesising {task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), disable=not progress, transient=True) as bar:
        task = bar.add_task(str(root), total=len(config.words) * (config.per_word + config.pico))
        return synth.ensure(root, config, lambda done, total: bar.update(task, completed=done))
