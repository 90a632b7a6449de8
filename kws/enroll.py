"""Your voice: a few recordings of one word adapt a trained model to it (`kws enroll`).

The book's next step after training (the transfer recognizer of tfjs speech-commands): record a
handful of examples, retrain, listen. Here the whole net is fine-tuned for a fixed number of steps
on batches that mix the examples, augmented as the recipe augments training clips and laid over
the room's own background, with clips the model trained on, so that the words it knew stay known.
A word new to the model becomes a new label; a word it was taught as `_unknown_` (its own class
under the `synth` recipe) is promoted to a label, keeping what that class learnt; a keyword it
has is sharpened with the user's voice.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch import nn

from .audio import SAMPLE_RATE, load_audio, write_wav
from .errors import UserError
from .model import Classifier, Ensemble

SILENT_DB = -70.0  # a take whose peak is below this (dBFS) recorded nothing
QUIET_DB = -45.0  # the loudest 20 ms below this: too quiet to learn from
CLIPPED_SHARE = 0.01  # samples at full scale above this share: the input clipped (a few are common)
LONGEST_FILE = 10.0  # seconds: an example file is one word, not a recording session
BACKGROUND = "_background_noise_"  # where the room's sound is kept beside the examples


@dataclass(frozen=True)
class EnrollConfig:
    steps: int = 150  # fine-tuning steps: about half a minute on two cores for two nets
    batch_size: int = 64
    share: float = 0.25  # of every batch, the user's examples; the rest are clips it trained on
    lr_scale: float = 0.3  # of the recipe's learning rate, cosine-decayed
    seed: int = 0


def check_take(audio: np.ndarray, name: str) -> np.ndarray:
    """The 1-s window around the word in `audio` (float32, 16 kHz) as int16, or a one-line error
    saying why it cannot be learnt from: silent, clipped, too quiet, or a word longer than the window."""
    peak = float(np.abs(audio).max()) if len(audio) else 0.0
    if peak < 10 ** (SILENT_DB / 20):
        raise UserError(f"{name}: silent (nothing was recorded: is the microphone muted?)")
    if np.mean(np.abs(audio) >= 0.99) > CLIPPED_SHARE:
        raise UserError(f"{name}: clipped (too loud for the input: move back or lower the input gain)")
    frame = SAMPLE_RATE // 50
    frames = audio[: len(audio) // frame * frame].reshape(-1, frame) if len(audio) >= frame else audio[None]
    rms = np.sqrt(np.mean(frames.astype(np.float64) ** 2, axis=1))
    loudest = 20 * np.log10(float(rms.max()) + 1e-12)
    if loudest < QUIET_DB:
        raise UserError(f"{name}: too quiet (loudest {loudest:.0f} dBFS; speak up, come closer or raise the gain)")
    active = np.flatnonzero(rms > rms.max() * 10 ** (-25 / 20))
    seconds = (active[-1] - active[0] + 1) * frame / SAMPLE_RATE
    if seconds > 1.0:
        raise UserError(f"{name}: the word lasts {seconds:.1f} s, longer than the model's 1-s window; say it briskly")
    centre = (active[0] + active[-1] + 1) * frame // 2
    start = int(np.clip(centre - SAMPLE_RATE // 2, 0, max(0, len(audio) - SAMPLE_RATE)))
    window = np.zeros(SAMPLE_RATE, np.float32)
    cut = audio[start:start + SAMPLE_RATE]
    window[:len(cut)] = cut
    return np.round(np.clip(window, -1, 1) * 32767).astype(np.int16)


def read_folder(folder: Path) -> tuple[list[np.ndarray], np.ndarray]:
    """The examples in `folder` (each WAV one take of the word) and the room's background from its
    `_background_noise_/` (empty if none): what `record` saves, so an enrolment can be redone."""
    if not folder.is_dir():
        raise UserError(f"--from-dir {folder}: no such folder")
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in (".wav", ".flac", ".ogg") and p.is_file())
    if not files:
        raise UserError(f"--from-dir {folder}: no .wav files in it (one take of the word each)")
    takes = []
    for path in files:
        audio = load_audio(path)
        if len(audio) > LONGEST_FILE * SAMPLE_RATE:
            raise UserError(f"{path}: {len(audio) / SAMPLE_RATE:.0f} s long; give one take of the word per file")
        takes.append(check_take(audio, str(path)))
    rooms = [load_audio(p) for p in sorted((folder / BACKGROUND).glob("*.wav"))]
    return takes, np.concatenate(rooms) if rooms else np.zeros(0, np.float32)


def record(word: str, count: int, folder: Path, device: int | str | None, seconds: float = 1.5,
           background_seconds: float = 10.0, say: Callable[[str], None] = print) -> tuple[list[np.ndarray], np.ndarray]:
    """`count` takes of `word` from the microphone, each after a prompt and with a level meter, then
    the room's background, all from one open input stream. Each take is written into `folder` as
    soon as it is taken, so Ctrl-C (which raises `Stopped`) keeps what was recorded; a bad take
    is a one-line error, after the good ones are saved."""
    from rich.console import Console
    from rich.live import Live

    from .listen import stream_microphone

    folder.mkdir(parents=True, exist_ok=True)
    takes: list[np.ndarray] = []
    parts: list[np.ndarray] = []
    room: list[np.ndarray] = []
    console = Console(stderr=True)
    live = Live("", console=console, transient=True, refresh_per_second=20) if console.is_terminal else None

    def prompt() -> str:
        k = len(takes) + 1
        return f"{k}/{count}: say {word!r}" if k <= count else f"now stay quiet: {background_seconds:g} s of the room"

    def on_audio(chunk: np.ndarray) -> bool:
        parts.append(chunk)
        if live is not None:
            level = 20 * np.log10(float(np.sqrt(np.mean(chunk ** 2))) + 1e-9) if len(chunk) else -180.0
            bars = int(np.clip((level + 60) / 2, 0, 30))
            live.update(f"{prompt()}  {'█' * bars}{'·' * (30 - bars)} {level:4.0f} dB")
        wanted = (seconds if len(takes) < count else background_seconds) * SAMPLE_RATE
        if sum(len(p) for p in parts) < wanted:
            return True
        audio = np.concatenate(parts)[:int(wanted)]
        parts.clear()
        if len(takes) == count:
            room.append(audio)
            return False
        takes.append(check_take(audio, f"take {len(takes) + 1}"))
        write_wav(folder / f"{len(takes):02d}.wav", takes[-1].astype(np.float32) / 32768)
        say(prompt())
        return True

    say(prompt())
    if live is not None:
        live.start()
    try:
        stream_microphone(device, on_audio)
    finally:
        if live is not None:
            live.stop()
    if not room:
        raise Stopped(folder, len(takes))
    (folder / BACKGROUND).mkdir(exist_ok=True)
    write_wav(folder / BACKGROUND / "room.wav", room[0])
    return takes, room[0]


class Stopped(Exception):
    """Ctrl-C while recording: the takes so far are in `folder`."""

    def __init__(self, folder: Path, kept: int) -> None:
        super().__init__(f"stopped: {kept} take(s) kept in {folder}")
        self.folder = folder


def with_word(model: Classifier, word: str) -> tuple[Classifier, str]:
    """`model` with `word` among its labels, and how it got there: "sharpened" (it was a keyword),
    "promoted" (its own `_unknown_/word` class becomes the label) or "new" (a new output)."""
    from .datasets.speech_commands import UNKNOWN

    if word in model.labels:
        return model, "sharpened"
    labels = [*model.labels, word]
    if model.classes and f"{UNKNOWN}/{word}" in model.classes:
        classes = [word if c == f"{UNKNOWN}/{word}" else c for c in model.classes]
        return Classifier(model.frontend, model.net, labels, classes), "promoted"
    members = model.net.members if isinstance(model.net, Ensemble) else [model.net]
    for member in members:
        last = member.head[-1]
        grown = nn.Linear(last.in_features, last.out_features + 1)
        with torch.no_grad():
            grown.weight[:-1], grown.bias[:-1] = last.weight, last.bias
        member.head[-1] = grown
        member.config.n_classes += 1
    if isinstance(model.net, Ensemble):
        model.net.config.n_classes += 1
    return Classifier(model.frontend, model.net, labels, [*model.classes, word] if model.classes else None), "new"


def check_model(model: Classifier) -> None:
    """Before any take is recorded: a model that cannot learn a word from takes is refused."""
    if model.kind != "audio":
        raise UserError("kws enroll teaches words to audio models; this one reads images")


def adapt(model: Classifier, meta: dict, word: str, takes: list[np.ndarray], room: np.ndarray, data_dir: Path,
          config: EnrollConfig = EnrollConfig(), log: Callable[[str], None] = print,
          earlier: dict[str, list[np.ndarray]] | None = None) -> tuple[Classifier, dict]:
    """Fine-tune `model` to hear `word` in `takes`; returns the new model and what changed (with
    `calibration`, its streaming threshold set again, when the model had one).

    `earlier`: the takes of words enrolled before (`earlier_takes`), shown again beside the new
    ones, or the clips it trained on, which hold none of them, would wash them out."""
    from .augment import AUGMENT_RECIPES, AugmentConfig, SpecAugment, WaveAugment
    from .datasets import load_dataset
    from .datasets.speech_commands import UNKNOWN
    from .evaluate import predict
    from .recipes import RECIPES, Recipe

    check_model(model)
    args = meta.get("train_args", {})
    known = {f.name for f in fields(Recipe)}
    recipe = Recipe(**{k: v for k, v in args["recipe"].items() if k in known}) if "recipe" in args \
        else RECIPES["speech-commands"]
    dataset = args.get("dataset") or meta.get("dataset")
    if not dataset:
        raise UserError("the checkpoint does not say what it was trained on, so its words cannot be kept")
    start = time.perf_counter()
    log(f"loading what it trained on ({dataset}) to keep its words")
    words = str(args["words"]).split(",") if args.get("words") else None  # (as it trained, before any enrolment)
    # Each `_unknown_` clip with its own word (the same clips are drawn either way), so that clips
    # of a word that is now a label are taught as that label, not as `_unknown_`.
    seed = int(args.get("train_config", {}).get("seed", 0))
    splits = load_dataset(dataset, data_dir, task=args.get("task", "12"), words=words,
                          seed=seed, per_word=recipe.per_word,
                          unknown_words=True, near_misses=recipe.near_misses if args.get("words") else 0,
                          progress=False)
    before = _known_accuracy(model, splits)
    new, how = with_word(model, word)
    outputs = new.classes or new.labels
    def output(c: str) -> int:
        """A training class as one of the new model's outputs: a word behind `_unknown_` that is now
        a label (promoted by this enrolment or an earlier one) is that label's."""
        word_behind = c.split("/", 1)[1] if c.startswith(UNKNOWN + "/") else None
        if word_behind in new.labels:
            return outputs.index(word_behind)
        return outputs.index(c if c in outputs else UNKNOWN if word_behind else c)

    remap = torch.tensor([output(c) for c in splits.classes or splits.labels])
    replay_x, replay_y = splits.train[0], remap[splits.train[1]]
    mine_x = torch.from_numpy(np.stack(takes))
    mine_y = torch.full((len(takes),), outputs.index(word), dtype=torch.long)
    before_x = [torch.from_numpy(np.stack(t)) for w, t in (earlier or {}).items() if t and w != word]
    before_y = [torch.full((len(t),), outputs.index(w), dtype=torch.long)
                for w, t in (earlier or {}).items() if t and w != word]
    if before_x:  # (half of the takes' share each: the new word's and the earlier ones')
        before_x, before_y = torch.cat(before_x), torch.cat(before_y)

    generator = torch.Generator().manual_seed(config.seed)
    torch.manual_seed(config.seed)
    noises = [t for t in (splits.noise, torch.from_numpy(room.astype(np.float32)) if len(room) else None)
              if t is not None]
    aug = AugmentConfig(**{**AUGMENT_RECIPES[recipe.augment], **dict(recipe.augment_set),
                           **({"time_masks": 2, "freq_masks": 2} if recipe.spec_augment else {})})
    augment = WaveAugment(aug, torch.cat(noises) if noises else None, generator)
    spec = SpecAugment(aug, generator)
    optimizer = torch.optim.Adam(new.parameters(), lr=(recipe.lr or 1e-3) * config.lr_scale)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: 0.5 * (1 + math.cos(math.pi * s / config.steps)))
    loss_fn = nn.CrossEntropyLoss()
    n_mine = max(1, round(config.batch_size * config.share))
    new.train()
    for _ in range(config.steps):
        n_new = n_mine if not len(before_x) else (n_mine + 1) // 2
        a = torch.randint(len(mine_y), (n_new,), generator=generator)
        b = torch.randint(len(replay_y), (config.batch_size - n_mine,), generator=generator)
        c = torch.randint(max(1, len(before_y)), (n_mine - n_new,), generator=generator)
        x = [mine_x[a], replay_x[b]] + ([before_x[c]] if len(before_x) else [])
        y = [mine_y[a], replay_y[b]] + ([before_y[c]] if len(before_y) else [])
        x, y = augment(torch.cat(x)), torch.cat(y)
        logits = new(x, augment_features=spec if spec.active else None, per_member=True)
        loss = loss_fn(logits.flatten(0, 1), y.repeat(len(logits)))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
    new.eval()
    heard = int((predict(new, mine_x).argmax(1) == new.labels.index(word)).sum())
    if heard < math.ceil(len(takes) / 2):
        raise UserError(f"could not learn {word!r} from these takes ({heard} of {len(takes)} heard as it "
                        "afterwards): record clearer takes, in a quieter room, or more of them")
    result = {"word": word, "how": how, "examples": len(takes), "heard": heard, "dataset": splits.name,
              "known_before": before, "known_after": _known_accuracy(new, splits)}
    if meta.get("calibration"):
        # The threshold was set for the net before it adapted, and the adapted one fires more often
        # at it (docs/own-words.md): set it again as training did, same stream, same target.
        from .wakeword import calibrate

        was = meta["calibration"]
        log(f"setting the streaming threshold again ({was['minutes']:g} min of validation stream)")
        calibration = calibrate(new, splits, was["target_fa_per_hour"], was["minutes"], seed)
        if calibration:
            result.update(threshold_before=was["threshold"], threshold_after=calibration["threshold"],
                          calibration=calibration)
    return new, {**result, "seconds": round(time.perf_counter() - start, 1)}


def earlier_takes(meta: dict) -> dict[str, list[np.ndarray]]:
    """The takes of the words enrolled into a model before, from the folders saved beside it."""
    out: dict[str, list[np.ndarray]] = {}
    for entry in meta.get("enrolled", []):
        folder = Path(entry.get("folder", ""))
        if folder.is_dir():
            out.setdefault(entry["word"], []).extend(read_folder(folder)[0])
    return out


def _known_accuracy(model: Classifier, splits) -> float:
    """Accuracy on the validation clips of the labels the model trained on, `_unknown_` left out,
    since a promoted word's clips were `_unknown_` then. Validation, not test: a user decides by it
    whether to keep an enrolment, and the test clips are for a final figure."""
    from .datasets.speech_commands import UNKNOWN
    from .evaluate import predict

    x, y = splits.val
    keep = torch.tensor([splits.labels[i] != UNKNOWN for i in y.tolist()], dtype=torch.bool)
    if not keep.any():
        return float("nan")
    said = [model.labels[i] for i in predict(model, x[keep]).argmax(1).tolist()]
    truth = [splits.labels[i] for i in y[keep].tolist()]
    return float(np.mean([s == t for s, t in zip(said, truth)]))
