"""`torchrun -m kws train`: two CPU processes (gloo) train one model, as one process would."""

import json
import os
import signal
import subprocess
import sys

import torch

from .conftest import REPO, kws, signal_after_first_epoch

TORCHRUN = ("-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "kws")


def test_two_processes_train_one_model(small_corpus, tmp_path):
    # (unsmoothed targets and no spliced keywords: with either, five epochs leave this small model near
    # the bar, which then tells nothing about the two processes)
    args = ["train", "--dataset", str(small_corpus), "--words", "yes,no,stop", "--epochs", "5", "--seed", "0",
            "--recipe", "speech-commands", "--members", "1", "--label-smoothing", "0", "--spliced-words", "0",
            "--calibration-minutes", "0"]
    single = kws(*args, "--out", tmp_path / "single")
    assert single.returncode == 0, single.stderr
    assert "training on the CPU (" in single.stderr  # (where it trains, said before it does)
    r = subprocess.run([sys.executable, *TORCHRUN, *args, "--out", str(tmp_path / "ddp")],
                       capture_output=True, text=True, cwd=REPO, timeout=600,
                       env={**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"})
    assert r.returncode == 0, r.stdout + r.stderr
    run = tmp_path / "ddp"
    # One writer: one checkpoint, one report, one line of results.
    assert sorted(p.name for p in run.iterdir()) == ["confusion.png", "curves.png", "last.pt", "metrics.json", "model.pt"]
    assert r.stdout.count("test accuracy") == 1 and "2 processes" in r.stderr
    ddp, one = (json.loads((tmp_path / n / "metrics.json").read_text()) for n in ("ddp", "single"))
    assert ddp["world_size"] == 2 and one["world_size"] == 1 and len(ddp["history"]) == 5
    # The same global batches and schedule: the two runs land close to each other.
    assert ddp["test_accuracy"] >= 0.8 and abs(ddp["test_accuracy"] - one["test_accuracy"]) <= 0.1, (ddp, one)
    check = kws("classify", "--model", run / "model.pt", sorted((small_corpus / "yes").glob("*.wav"))[0])
    assert check.returncode == 0, check.stderr


def test_ctrl_c_under_torchrun_stops_every_rank_and_saves(small_corpus, tmp_path):
    """torchrun hands SIGINT to both ranks; they must agree on one step to stop at (a rank that went on
    would wait forever in the next gradient all-reduce), and rank 0 alone saves the resumable state."""
    run = tmp_path / "ddp"
    args = ["train", "--dataset", small_corpus, "--words", "yes,no,stop", "--epochs", "3", "--seed", "0", "--out", run,
            "--recipe", "speech-commands", "--members", "1",
            "--calibration-minutes", "0"]
    status, rest = signal_after_first_epoch(args, signal.SIGINT, launcher=TORCHRUN)
    assert status != 0 and rest.count("Resume with: torchrun --standalone --nproc_per_node=2 -m kws train") == 1, rest
    saved = torch.load(run / "last.pt", weights_only=True)
    assert saved["epoch"] >= 1 and not (run / "metrics.json").exists()
