"""The training loop. It sees tensors and callables only; where the data came from is not its business.

Every epoch ends with a validation pass; the best epoch is kept as `model.pt`, and `last.pt` holds
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
from typing import Callable

import torch
from torch import nn

from . import distributed
from .checkpoint import atomic_save, save_model
from .datasets import Splits
from .errors import UserError
from .evaluate import predict, report
from .model import Classifier

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


class Interrupted(Exception):
    """Training stopped on SIGINT/SIGTERM after saving a resumable checkpoint."""

    def __init__(self, run_dir: Path, signum: int) -> None:
        super().__init__(f"stopped by {signal.Signals(signum).name}; progress saved in {run_dir / 'last.pt'}")
        self.run_dir = run_dir


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
    state = {"epoch": 0, "step": 0, "history": [], "best_val": -1.0, "train_seconds": 0.0,
             "epoch_rng": generator.get_state(), "sums": [0.0, 0, 0]}
    if resume:
        state = _restore(run_dir / "last.pt", model, optimizer, schedule, generator)
    info = {**(run_info or {}), "train_config": asdict(config), "world_size": distributed.world_size()}

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
                        x, y = x.to(device), y.to(device)
                        # (members, batch, classes): each member of an ensemble learns from its own
                        # loss, as if trained alone; a single net is an ensemble of one.
                        logits = trainer(x, augment_features=augment_features, per_member=True)
                        loss = loss_fn(logits.flatten(0, 1), y.repeat(len(logits)))
                        optimizer.zero_grad(set_to_none=True)
                        loss.backward()
                        optimizer.step()
                        sums = state["sums"]
                        sums[0] += loss.item() * len(y)
                        votes = logits.softmax(-1).mean(0) @ model.pool  # (batch, labels)
                        sums[1] += int((votes.argmax(1) == label_of[y]).sum())
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


def _class_weights(weights: dict[str, float], labels: list[str], device: torch.device) -> torch.Tensor | None:
    unknown = sorted(set(weights) - set(labels))
    if unknown:
        raise UserError(f"class weight for {', '.join(unknown)}: not a label of this dataset ({', '.join(labels[:6])}…)")
    return torch.tensor([float(weights.get(label, 1.0)) for label in labels], device=device) if weights else None


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
