"""Training: `run` turns a dataset and a `Recipe` into a run folder; `fit` is the loop inside it.

The loop sees tensors and callables only; where the data came from is not its business. Every
epoch ends with a validation pass; the best epoch is kept as `model.pt`, and `last.pt` holds
everything needed to continue (weights, optimiser, random-generator states, position in the
epoch), so `--resume` after a crash or Ctrl-C lands on the same weights an uninterrupted run gets.
"""

from __future__ import annotations

import json
import math
import signal
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import torch
from torch import nn

from . import distributed
from .checkpoint import atomic_save, save_model
from .datasets import Splits
from .errors import UserError
from .evaluate import predict, report
from .model import Classifier
from .recipes import RECIPES, Recipe

Transform = Callable[[torch.Tensor], torch.Tensor]


@dataclass
class TrainConfig:
    epochs: int = 20
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 0.0
    label_smoothing: float = 0.0
    seed: int = 0
    device: str = "auto"
    # A label's weight in the training loss (1 for labels not named): a catch-all class such as
    # `_unknown_` can be made less eager without changing what the splits hold.
    class_weights: dict[str, float] = field(default_factory=dict)
    # Joined sources: how far the labels a row's source lacks are lowered in its softmax
    # (`Recipe.absent_penalty`; 0 not at all, inf left out).
    absent_penalty: float = 0.0
    precision: str = "float32"  # `PRECISIONS`: the arithmetic of the net's training steps


# "bfloat16": the net's forward and backward passes under autocast (weights, optimiser, frontend,
# validation and every later use stay float32); "auto": bfloat16 where the processor computes it
# natively (a faster step), float32 elsewhere, where emulating it would be slower.
PRECISIONS = ("auto", "float32", "bfloat16")


def check_precision(precision: str) -> None:
    if precision not in PRECISIONS:
        raise UserError(f"--precision {precision}: choose {', '.join(PRECISIONS)}")


def autocast_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """The dtype the net's training steps run in (None: plain float32)."""
    check_precision(precision)
    if precision == "float32":
        return None
    if precision == "bfloat16":
        return torch.bfloat16
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else None
    native = [getattr(torch.cpu, name, lambda: False) for name in ("_is_avx512_bf16_supported", "_is_amx_tile_supported")]
    return torch.bfloat16 if device.type == "cpu" and any(check() for check in native) else None


def mixed(device: torch.device, dtype: torch.dtype | None) -> torch.autocast:
    """The context a training step's forward pass runs in: autocast to `dtype`, or off for None."""
    return torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None)


class Interrupted(Exception):
    """Training stopped on SIGINT/SIGTERM after saving a resumable checkpoint."""

    def __init__(self, run_dir: Path, signum: int) -> None:
        super().__init__(f"stopped by {signal.Signals(signum).name}; progress saved in {run_dir / 'last.pt'}")
        self.run_dir = run_dir


def run(dataset: str | Splits, recipe: Recipe, out: Path | None = None, *, data_dir: Path, task: str = "12",
        words: list[str] | None = None, seed: int = 0, device: str = "auto", resume: bool = False,
        log: Callable[[str], None] | None = None, progress: bool = True, withhold: Sequence[str] = ()) -> dict:
    """Train what `recipe` says on `dataset` (a `--dataset` string, or tensors already loaded) and
    write the run folder; returns the metrics (with `run_dir`), or {} on the ranks of a distributed
    run other than the first.

    The one place where a recipe becomes a frontend, an augmentation, a net and a loop, so the
    command line, the benchmarks and the tests all train the same way. `log` gets one line for the
    data, one for the recipe and one per epoch; `progress` shows the per-step bars. `withhold`:
    words no synthetic other word may be (a real word held out, to see how untaught words fare).
    """
    from datetime import datetime

    from .augment import AUGMENT_RECIPES, AugmentConfig, SpecAugment, WaveAugment
    from .datasets import load_dataset
    from .datasets.speech_commands import UNKNOWN
    from .features import LogMel, LogMelConfig, PixelScale
    from .model import new_classifier
    from .paths import runs_dir
    from .plots import confusion_png, curves_png

    if resume and out is None:
        raise UserError("--resume needs --out RUN_DIR, the run to continue")
    where = pick_device(device)  # (a wrong --device says so before the data loads, not after)
    distributed.setup(device)  # under torchrun: join the other ranks (a no-op otherwise)
    main = distributed.is_main()
    say = log if (log and main) else (lambda line: None)
    if isinstance(dataset, Splits):
        splits, dataset = dataset, dataset.name
    else:
        with distributed.main_first():  # rank 0 downloads or builds the data; the others then read it
            splits = load_dataset(dataset, data_dir, task=task, words=words, seed=seed, per_word=recipe.per_word,
                                  unknown_words=recipe.unknown_words, unknown_each_epoch=recipe.unknown_each_epoch,
                                  balance=recipe.source_balance, near_misses=recipe.near_misses if words else 0,
                                  train_unknown_percent=recipe.unknown_percent, progress=progress and main)
    splits = _with_other_words(splits, recipe, data_dir, seed, withhold, progress and main)
    say(splits.summary() + (f" · {distributed.world_size()} processes" if distributed.active() else ""))
    say(recipe.line())
    say(device_line(where, autocast_dtype(recipe.precision, where)))
    for line in _other_words_lines(splits, recipe):
        say(line)
    run_dir = distributed.broadcast(out or runs_dir() / f"{Path(dataset).name}-{recipe.preset}-{datetime.now():%Y%m%d-%H%M%S}")
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    augment = features_augment = None
    if splits.kind == "audio":
        masks = {"time_masks": 2, "freq_masks": 2} if recipe.spec_augment else {}
        aug = AugmentConfig(**{**AUGMENT_RECIPES[recipe.augment], **dict(recipe.augment_set), **masks})
        augment = WaveAugment(aug, splits.noise, generator)
        spec = SpecAugment(aug, generator)
        features_augment = spec if spec.active else None
        frontend = LogMel(LogMelConfig(norm=recipe.norm, **dict(recipe.frontend_set)))
    else:
        frontend = PixelScale()
    net = new_classifier(frontend, splits.labels, recipe.preset, recipe.members, classes=splits.classes,
                         time_pool=recipe.time_pool)
    config = TrainConfig(epochs=recipe.epochs, batch_size=recipe.batch_size, lr=recipe.lr, seed=seed, device=device,
                         class_weights={UNKNOWN: recipe.unknown_weight} if recipe.unknown_weight != 1.0 else {},
                         absent_penalty=recipe.absent_penalty, precision=recipe.precision,
                         label_smoothing=recipe.label_smoothing)

    def show(row: dict) -> None:
        say(f"epoch {row['epoch']:>3}/{recipe.epochs}  loss {row['train_loss']:.3f}  acc {row['train_accuracy']:.3f}"
            f"  val_loss {row['val_loss']:.3f}  val_acc {row['val_accuracy']:.3f}")

    info = {"dataset": dataset, "task": task, "words": ",".join(words) if words else None,
            "recipe": recipe.as_dict()}
    finished = False
    try:
        metrics = fit(net, splits, config, run_dir, generator=generator, augment=augment,
                      augment_features=features_augment, resume=resume, run_info=info, on_epoch=show,
                      progress=progress)
        finished = True
    finally:
        distributed.cleanup(finished)
    if not main:
        return {}
    if recipe.calibration_minutes and splits.kind == "audio":
        calibration = _calibrate(run_dir, splits, recipe, seed, say)
        if calibration:
            metrics["calibration"] = {k: v for k, v in calibration.items() if k != "curve"}
            (run_dir / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    curves_png(metrics["history"], run_dir / "curves.png", f"{Path(dataset).name} · {recipe.name} · {recipe.preset}")
    confusion_png(metrics["test_report"]["confusion"], splits.labels, run_dir / "confusion.png",
                  f"Test set · accuracy {metrics['test_accuracy']:.3f}")
    return {**metrics, "run_dir": str(run_dir)}


def _with_other_words(splits: Splits, recipe: Recipe, data_dir: Path, seed: int, withhold: Sequence[str],
                      progress: bool) -> Splits:
    """The splits with the `_unknown_` rows the recipe makes beside the dataset's own other words:
    keywords reversed, keywords spliced, the offline corpus's other words. A recipe field changed
    by a flag for a dataset without `_unknown_` is refused (on every rank alike)."""
    from .datasets import build_synth, synth
    from .datasets.others import add_others
    from .datasets.reversed import add_reversed
    from .datasets.spliced import add_spliced
    from .datasets.speech_commands import UNKNOWN

    if UNKNOWN not in splits.labels:
        named = RECIPES.get(recipe.name, recipe)
        for f in ("unknown_weight", "unknown_percent", "unknown_words", "unknown_each_epoch", "reversed_words",
                  "spliced_words", "synthetic_others"):
            if getattr(recipe, f) != getattr(named, f):
                raise UserError(f"--{f.replace('_', '-')}: {splits.name} has no {UNKNOWN} class")
        return splits
    if splits.kind != "audio":
        return splits
    if recipe.reversed_words:
        splits = add_reversed(splits, recipe.reversed_words, seed)
    if recipe.spliced_words:
        splits = add_spliced(splits, recipe.spliced_words, seed)
    if recipe.synthetic_others:
        config = synth.SynthConfig(per_word=recipe.per_word, others_share=1.0)  # (these words are what it teaches)
        with distributed.main_first():  # (rank 0 builds the corpus)
            splits = add_others(splits, recipe.synthetic_others,
                                lambda: build_synth(synth.default_root(data_dir, config), config, progress), withhold)
    return splits


def _other_words_lines(splits: Splits, recipe: Recipe) -> list[str]:
    """What training says about the words it teaches: the other words (what it teaches, or should),
    and keywords that only the synthetic corpus says."""
    lines = [hint for hint in (other_words_hint(splits, recipe), synthetic_only_hint(splits)) if hint]
    for kind, made in (("reversed", "reversed"), ("spliced", "spliced into other words")):
        if splits.info.get(kind):
            lines.append(f"keywords {made} and taught as _unknown_: {splits.info[kind]:,} rows")
    if splits.info.get("synthetic_others"):
        o = splits.info["synthetic_others"]
        lines.append(f"synthetic other words taught as _unknown_: {o['per_epoch']:,} an epoch of {o['clips']:,} "
                     f"clips of {o['words']} words")
    for word, misses in splits.info.get("near_misses", {}).items():
        lines.append(f"{word}: near misses taught as _unknown_: {', '.join(misses)}")
    return lines


# Below this many other words, a real corpus leaves most words it never taught taken for keywords
# (docs/real-speech-commands.md).
FEW_OTHER_WORDS = 10


def other_words_hint(splits: Splits, recipe: Recipe) -> str | None:
    """A line for a corpus of real speech that teaches few other words as `_unknown_`: the model
    will answer a keyword for most words it never heard, and the flag that helps is not obvious."""
    others = splits.info.get("other_words") or []
    if (splits.kind != "audio" or not others or len(others) >= FEW_OTHER_WORDS or recipe.synthetic_others
            or splits.is_synthetic()):
        return None
    return (f"only {len(others)} other word{'s' if len(others) > 1 else ''} ({', '.join(others)}) taught as "
            "_unknown_: words it never heard will mostly be taken for keywords; --synthetic-others 0.5 "
            "--unknown-weight 0.5 also teaches the offline corpus's other words")


def synthetic_only_hint(splits: Splits) -> str | None:
    """A line for joined sources when some keywords have no recordings, only synthetic clips: such a
    word is heard less well when a person says it (docs/real-speech-commands.md), and the remedy is
    recordings of it."""
    words = splits.keywords_only_synthetic()
    if not words:
        return None
    return (f"keywords with synthetic clips only: {', '.join(words)}. A model finds such a word less often "
            "when a person says it; recordings of it by several people (a folder of word-named subfolders, joined "
            "with +) teach it")


def _calibrate(run_dir: Path, splits: Splits, recipe: Recipe, seed: int, say: Callable[[str], None]) -> dict | None:
    """Set the best model's streaming threshold on the validation split (`wakeword.calibrate`) and
    save it, with its curve, in `model.pt`."""
    from .checkpoint import add_to, load_model
    from .wakeword import calibrate, calibration_line

    best, _ = load_model(run_dir / "model.pt")
    calibration = calibrate(best, splits, recipe.target_fa_per_hour, recipe.calibration_minutes, seed)
    if calibration:
        add_to(run_dir / "model.pt", calibration=calibration)
        say(f"streaming threshold {calibration['threshold']:g}: {calibration_line(calibration)}")
    return calibration


def device_line(device: torch.device, dtype: torch.dtype | None) -> str:
    """Where the training steps run and in what precision (`auto` resolved), as training prints it."""
    where = torch.cuda.get_device_name(device) if device.type == "cuda" else f"the CPU ({torch.get_num_threads()} threads)"
    return f"training on {where} in {str(dtype or torch.float32).removeprefix('torch.')}"


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise UserError("--device cuda: no CUDA GPU is available here (use --device cpu)")
    if name not in ("cpu", "cuda"):
        raise UserError(f"--device {name}: use auto, cpu or cuda")
    return torch.device(name)


def fit(model: Classifier, splits: Splits, config: TrainConfig, run_dir: Path, *,
        generator: torch.Generator, augment: Transform | None = None,
        augment_features: Transform | None = None, resume: bool = False,
        run_info: dict | None = None, on_epoch: Callable[[dict], None] | None = None,
        progress: bool = True) -> dict:
    """Train `model` on `splits`; write `model.pt`, `last.pt` and `metrics.json` into `run_dir`."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    device = distributed.local_device(pick_device(config.device))
    main = distributed.is_main()  # only rank 0 writes; in one process that is us
    run_dir.mkdir(parents=True, exist_ok=True)
    model.to(device)
    trainer = distributed.wrap(model, device)  # DistributedDataParallel under torchrun, else the model
    x_train, y_train = splits.train
    steps_per_epoch = math.ceil(splits.epoch_size() / config.batch_size)
    total_steps = steps_per_epoch * config.epochs
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    schedule = torch.optim.lr_scheduler.LambdaLR(  # cosine decay, a pure function of the step
        optimizer, lambda step: 0.5 * (1 + math.cos(math.pi * min(step, total_steps) / total_steps)))
    # The training targets index the net's outputs: `splits.classes` where the dataset has finer ones.
    if (splits.classes or splits.labels) != (model.classes or model.labels):
        raise ValueError("the model's outputs are not the training targets' classes")
    label_of = model.label_of  # (on `device` with the model)
    weights = _class_weights(config.class_weights, splits.labels, device)
    loss_fn = nn.CrossEntropyLoss(weight=None if weights is None else weights[label_of],
                                  label_smoothing=config.label_smoothing)
    mask = _source_mask(splits, label_of, config.absent_penalty) if config.absent_penalty else None
    dtype = autocast_dtype(config.precision, device)
    state = {"epoch": 0, "step": 0, "history": [], "best_val": -1.0, "train_seconds": 0.0,
             "epoch_rng": generator.get_state(), "sums": [0.0, 0, 0]}
    if resume:
        state = _restore(run_dir / "last.pt", model, optimizer, schedule, generator)
    info = {**(run_info or {}), "train_config": asdict(config), "world_size": distributed.world_size(),
            "autocast": str(dtype).removeprefix("torch.") if dtype else None}

    stop = {"signal": 0}
    handlers = {s: signal.signal(s, lambda signum, _f: stop.update(signal=signum))
                for s in (signal.SIGINT, signal.SIGTERM)}

    def save_last() -> None:
        if not main:
            return
        atomic_save({**state, "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                     "schedule": schedule.state_dict(), "rng": generator.get_state(), "info": info},
                    run_dir / "last.pt")

    columns = [TextColumn("[bold]epoch {task.fields[epoch]}"), BarColumn(), MofNCompleteColumn(),
               TextColumn("loss {task.fields[loss]:.3f} acc {task.fields[acc]:.3f}"), TimeElapsedColumn()]
    try:
        with Progress(*columns, disable=not (progress and main), transient=True) as bar:
            while state["epoch"] < config.epochs:
                epoch_start = time.perf_counter()
                if state["step"] == 0:
                    state["epoch_rng"] = generator.get_state()
                    state["sums"] = [0.0, 0, 0]
                    rng_now = None
                else:  # resuming mid-epoch: rebuild the same permutation, then carry on
                    rng_now = generator.get_state()
                    generator.set_state(state["epoch_rng"])
                order = splits.epoch_order(generator)  # (the dataset's: some rows may take turns)
                if rng_now is not None:
                    generator.set_state(rng_now)
                task = bar.add_task("train", total=steps_per_epoch, completed=state["step"],
                                    epoch=f"{state['epoch'] + 1}/{config.epochs}", loss=0.0, acc=0.0)
                model.train()
                while state["step"] < steps_per_epoch:
                    idx = order[state["step"] * config.batch_size:(state["step"] + 1) * config.batch_size]
                    idx = distributed.shard(idx)  # under torchrun: this rank's share of the batch
                    if len(idx):
                        x, y = x_train[idx], y_train[idx]
                        if augment is not None:
                            x = augment(x)
                        penalty = None if mask is None else mask[splits.source_of["train"][idx]]  # each row's source's
                        loss, right = _step(model, trainer, optimizer, loss_fn, x.to(device), y.to(device),
                                            dtype, augment_features, penalty)
                        sums = state["sums"]
                        sums[0] += loss * len(y)
                        sums[1] += right
                        sums[2] += len(y)
                    schedule.step()
                    state["step"] += 1
                    sums = state["sums"]
                    bar.update(task, advance=1, loss=sums[0] / max(sums[2], 1), acc=sums[1] / max(sums[2], 1))
                    if distributed.any_across(bool(stop["signal"])):  # every rank stops at the same step
                        state["train_seconds"] += time.perf_counter() - epoch_start
                        save_last()
                        raise Interrupted(run_dir, stop["signal"] or signal.SIGTERM)
                bar.remove_task(task)
                val = _score(model, splits.val, device)  # (unweighted: the plain cross-entropy)
                sums = distributed.sum_across(state["sums"])  # the whole batch's figures, not one rank's
                row = {"epoch": state["epoch"] + 1, "train_loss": sums[0] / sums[2], "train_accuracy": sums[1] / sums[2],
                       "val_loss": val[0], "val_accuracy": val[1], "lr": schedule.get_last_lr()[0]}
                state["history"].append(row)
                state["train_seconds"] += time.perf_counter() - epoch_start
                state["epoch"] += 1
                state["step"] = 0
                if val[1] > state["best_val"]:
                    state["best_val"] = val[1]
                    if main:
                        save_model(model, run_dir / "model.pt", epoch=state["epoch"], val_accuracy=val[1],
                                   dataset=splits.name, train_args=_plain(info))
                save_last()
                if on_epoch and main:
                    on_epoch(row)
                if distributed.any_across(bool(stop["signal"])):
                    raise Interrupted(run_dir, stop["signal"] or signal.SIGTERM)
    finally:
        for s, h in handlers.items():
            signal.signal(s, h)

    if not main:  # the other ranks are done; rank 0 scores the test set and writes the report
        return {}
    from .checkpoint import load_model

    best, _ = load_model(run_dir / "model.pt")
    best.to(device)
    probs = predict(best, splits.test[0], device=device)
    test = report(splits.test[1], probs.argmax(1), splits.labels)
    best_row = max(state["history"], key=lambda r: r["val_accuracy"])
    metrics = {"test_accuracy": test["accuracy"], "val_accuracy": best_row["val_accuracy"],
               "best_epoch": best_row["epoch"], "labels": splits.labels, "dataset": splits.name,
               "epochs": config.epochs, "train_seconds": round(state["train_seconds"], 2),
               "samples": {n: len(getattr(splits, n)[1]) for n in ("train", "val", "test")},
               "history": state["history"], "test_report": test, **_plain(info)}
    (run_dir / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    return metrics


def _step(model: Classifier, trainer: nn.Module, optimizer: torch.optim.Optimizer, loss_fn: nn.Module,
          x: torch.Tensor, y: torch.Tensor, dtype: torch.dtype | None, augment_features: Transform | None,
          penalty: torch.Tensor | None) -> tuple[float, int]:
    """One optimiser step on a batch: its mean loss, and how many rows the members' vote got right."""
    # (members, batch, classes): each member of an ensemble learns from its own loss, as if trained
    # alone; a single net is an ensemble of one.
    with mixed(x.device, dtype):
        logits = trainer(x, augment_features=augment_features, per_member=True)
    logits = logits.float()  # (the loss and the running figures in float32)
    if penalty is not None:
        logits = logits + penalty
    loss = loss_fn(logits.flatten(0, 1), y.repeat(len(logits)))
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    votes = logits.softmax(-1).mean(0) @ model.pool  # (batch, labels)
    return loss.item(), int((votes.argmax(1) == model.label_of[y]).sum())


def _class_weights(weights: dict[str, float], labels: list[str], device: torch.device) -> torch.Tensor | None:
    unknown = sorted(set(weights) - set(labels))
    if unknown:
        raise UserError(f"class weight for {', '.join(unknown)}: not a label of this dataset ({', '.join(labels[:6])}…)")
    return torch.tensor([float(weights.get(label, 1.0)) for label in labels], device=device) if weights else None


def _source_mask(splits: Splits, label_of: torch.Tensor, penalty: float) -> torch.Tensor | None:
    """(sources, classes): -`penalty` where a class's label has no training rows in a source, else 0.

    Added to the logits of a source's rows, it lowers in their softmax the labels that source never
    has (`inf` leaves them out): real recordings without any "go" then teach little or nothing
    about "go", where otherwise every real clip teaches that "go" is never heard in a real
    recording. (Labels, not finer classes: a source's `_unknown_` words stand for every word that
    is not a keyword.) `label_of`: the label of each class, the model's own.
    """
    present = splits.labels_in_sources()
    if present is None:
        return None
    present = present.to(label_of.device)
    return torch.zeros(len(present), len(label_of), device=label_of.device).masked_fill(~present[:, label_of], -penalty)


@torch.no_grad()
def _score(model: Classifier, split: tuple[torch.Tensor, torch.Tensor], device: torch.device) -> tuple[float, float]:
    x, y = split
    if len(y) == 0:
        return float("nan"), 0.0
    probs = predict(model, x, device=device)
    loss = float(nn.functional.nll_loss(torch.log(probs.clamp_min(1e-12)), y))
    return loss, float((probs.argmax(1) == y).float().mean())


def _restore(path: Path, model: nn.Module, optimizer, schedule, generator: torch.Generator) -> dict:
    if not path.exists():
        raise UserError(f"--resume: nothing to resume in {path.parent} (no last.pt)")
    data = read_last(path)
    try:
        model.load_state_dict(data.pop("model"))
    except RuntimeError:
        raise UserError(f"{path}: the saved run does not match these options (model, task or dataset differ)") from None
    optimizer.load_state_dict(data.pop("optimizer"))
    schedule.load_state_dict(data.pop("schedule"))
    generator.set_state(data.pop("rng"))
    data.pop("info", None)
    return data


def read_last(path: Path) -> dict:
    import pickle

    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError) as e:
        raise UserError(f"{path}: cannot resume from it ({type(e).__name__})") from None


def _plain(info: dict) -> dict:
    """Only JSON-safe values go into checkpoints and metrics."""
    return json.loads(json.dumps(info, default=str))
