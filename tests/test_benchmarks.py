"""The benchmark's sections run (tiny sizes, `--smoke`): what they measure is quoted in docs/, not tested."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from kws.datasets.speech_commands import speaker_of
from kws.train import autocast_dtype

from .conftest import REPO, SHARED


def test_training_peak_peers_and_int8_sections_run_in_smoke_mode(trained_run, tmp_path):
    if not (SHARED / "mnist").is_dir():
        pytest.skip(f"MNIST not found under {SHARED}")
    out = tmp_path / "results.json"
    sections = [arg for name in ("training", "peak", "peers", "int8") for arg in ("--only", name)]
    r = subprocess.run([sys.executable, str(REPO / "benchmarks" / "run.py"), "--smoke", *sections,
                        "--model", str(trained_run / "model.pt"), "--data", str(SHARED), "--out", str(out)],
                       capture_output=True, text=True, timeout=600, cwd=REPO)
    assert r.returncode == 0, r.stderr
    results = json.loads(out.read_text())
    assert results["training"]["cpu"]["chapter4"]["samples_per_s"] > 0
    peak = results["peak"]
    assert peak["matmul_gflops"] > 0
    native = autocast_dtype("auto", torch.device("cpu")) is not None  # the bfloat16 product only where it is native
    assert (peak.get("matmul_gflops_bfloat16", 0) > 0) == native
    for side in ("mnist", "log_mel"):
        assert 0 < peak[side]["fraction_of_peak"] and peak[side]["training_flops_per_sample"] > 0
        assert abs(sum(peak[side]["step_share"].values()) - 1) < 0.01
    peers = results["peers"]
    if "skipped" in peers:  # without the optional bench extra (Keras, TensorFlow)
        assert "bench" in peers["skipped"]
    else:
        for precision in ("float32", "bfloat16") if peers["native_bfloat16"] else ("float32",):
            row = peers["mnist"][precision]
            assert row["kws_seconds_per_epoch"] > 0 and row["keras_seconds_per_epoch"] > 0
            assert len(row["kws_test_accuracy_by_seed"]) == len(row["keras_test_accuracy_by_seed"]) == peers["seeds"]
        assert peers["mnist"]["defaults"]["keras_over_kws_time"] > 0
    int8 = results["int8"]
    assert int8["size_kb"]["int8"] < int8["size_kb"]["float32"]
    assert int8["int8_agrees_with_pytorch"] >= 0.9
    assert int8["one_thread_per_hop"]["onnx_int8"]["p50_ms"] > 0


def test_training_flops_count_every_member_and_sample():
    """`run.training_flops`, which the quick start's arithmetic ratio rests on: the chapter-4 net on a
    digit is the hand count of test_model (per image, times the training passes), and two voting
    nets on a log-mel image cost twice one."""
    sys.path.insert(0, str(REPO / "benchmarks"))
    from run import training_flops

    from kws.features import LogMel, PixelScale
    from kws.model import TRAINING_PASSES, new_classifier

    by_hand = 756_928  # multiply-adds, counted layer by layer in test_model
    digits = new_classifier(PixelScale(), [str(i) for i in range(10)])
    assert training_flops(digits, 100) == 100 * TRAINING_PASSES * 2 * by_hand
    one, two = (training_flops(new_classifier(LogMel(), ["a", "b"], members=m), 7) for m in (1, 2))
    assert two == 2 * one > 0


def test_per_keyword_thresholds_are_the_best_choice_within_the_budget():
    """`keyword_thresholds.best_per_keyword` against every combination, on small made-up tables of
    (found, false accepts) per threshold: more found never at more than the budget."""
    import itertools
    import random

    sys.path.insert(0, str(REPO / "benchmarks"))
    from keyword_thresholds import best_per_keyword

    rng = random.Random(0)
    for _ in range(30):
        table = {}
        for k in ("a", "b", "c"):
            found = sorted(rng.randrange(10) for _ in range(5))[::-1]  # lower thresholds find more…
            false = sorted(rng.randrange(4) for _ in range(5))[::-1]  # …and fire more
            table[k] = list(zip(found, false))
        for budget in range(4):
            choice = best_per_keyword(table, budget)
            within = [sum(table[k][i][0] for k, i in zip(table, pick)) for pick in itertools.product(range(5), repeat=3)
                      if sum(table[k][i][1] for k, i in zip(table, pick)) <= budget]
            if not within:  # nothing fits: the highest thresholds
                assert choice == dict.fromkeys(table, 4)
                continue
            assert sum(table[k][i][1] for k, i in choice.items()) <= budget
            assert sum(table[k][i][0] for k, i in choice.items()) == max(within)


def test_speaker_folds_split_training_and_validation_by_speaker_and_keep_the_test_list(tmp_path):
    """`recipe_sweep.fold`: N views whose validation lists together hold every training and
    validation clip once, each speaker's clips in one fold, and the source's own test list."""
    sys.path.insert(0, str(REPO / "benchmarks"))
    from recipe_sweep import fold

    from kws.datasets.speech_commands import split_lists

    source, clips = listed_corpus(tmp_path, 20, val=("spk00",), test=("spk01", "spk02"))
    test = split_lists(source)["test"]
    assert sorted(test) == sorted(r for r in clips if speaker_of(r) in ("spk01", "spk02"))
    seen: list[str] = []
    for k in range(4):
        view = fold(str(source), f"{k}/4", tmp_path / "data")
        lists = split_lists(Path(view))
        assert sorted(lists["test"]) == sorted(test)
        assert not set(lists["val"]) & set(lists["train"])
        assert sorted(lists["val"] + lists["train"]) == sorted(set(clips) - set(test))
        speakers = {speaker_of(r) for r in lists["val"]}
        assert all(speaker_of(r) not in speakers for r in lists["train"])
        seen += lists["val"]
    assert sorted(seen) == sorted(set(clips) - set(test))
    assert fold(str(source), None, tmp_path / "data") == str(source)


def test_train_share_keeps_whole_speakers_nested_shares_and_the_split_lists(tmp_path):
    """`recipe_sweep.train_share`: the validation and test clips all kept, the training clips of
    whole speakers only, a smaller share's speakers among a larger one's, about the share asked."""
    sys.path.insert(0, str(REPO / "benchmarks"))
    from recipe_sweep import train_share

    from kws.datasets.speech_commands import split_lists

    source, _ = listed_corpus(tmp_path, 200, val=("spk000",), test=("spk001",))
    (source / "_background_noise_").mkdir()
    full = split_lists(source)
    trainers = {speaker_of(r) for r in full["train"]}
    speakers = {}
    for share in (0.25, 0.5):
        view = Path(train_share(str(source), share, tmp_path / "data"))
        lists = split_lists(view)
        assert (lists["val"], lists["test"]) == (full["val"], full["test"])
        assert set(lists["train"]) < set(full["train"])
        speakers[share] = {speaker_of(r) for r in lists["train"]}
        assert all(r in lists["train"] for r in full["train"] if speaker_of(r) in speakers[share])
        assert abs(len(speakers[share]) / len(trainers) - share) < 0.1
        assert (view / "_background_noise_").is_dir()
    assert speakers[0.25] < speakers[0.5]
    assert train_share(str(source), 1.0, tmp_path / "data") == str(source)


def test_a_word_held_out_keeps_only_the_training_clips_asked_for(tmp_path):
    """`recipe_sweep.without`: the held-out word's folder gone, or with `keep` only that many of
    its training clips (never a validation or test clip); the other words' folders whole."""
    sys.path.insert(0, str(REPO / "benchmarks"))
    from recipe_sweep import without

    source, _ = listed_corpus(tmp_path, 20, val=("spk00",), test=("spk01",))
    lists_at = lambda folder: sorted(f"{folder.name}/{clip.name}" for clip in folder.iterdir())  # noqa: E731
    gone = Path(without(str(source), ["no"], tmp_path / "data"))
    assert not (gone / "no").exists() and lists_at(gone / "yes") == lists_at(source / "yes")
    kept = Path(without(str(source), ["no"], tmp_path / "data", keep=5))
    clips = lists_at(kept / "no")
    assert len(clips) == 5 and not {speaker_of(r) for r in clips} & {"spk00", "spk01"}
    assert lists_at(kept / "yes") == lists_at(source / "yes")
    assert Path(without(str(source), ["no"], tmp_path / "data", keep=5)) == kept  # the same view again
    first, own = without(str(source), ["no"], tmp_path / "data", keep=5, apart=True).split("+")
    assert Path(first) == gone and lists_at(Path(own) / "no") == clips and not (Path(own) / "yes").exists()
    _, one = without(str(source), ["no"], tmp_path / "data", keep=2, apart=True, few=True).split("+")
    assert len({speaker_of(r) for r in lists_at(Path(one) / "no")}) == 1  # one speaker's two takes


def listed_corpus(tmp_path: Path, speakers: int, val: tuple[str, ...], test: tuple[str, ...]) -> tuple[Path, list[str]]:
    """A corpus of empty clips in Speech Commands' layout: two words, two clips a speaker, and the
    named speakers' clips in its validation and test lists."""
    source = tmp_path / "corpus"
    width = len(str(speakers - 1))
    clips = [f"{word}/spk{s:0{width}d}_nohash_{i}.wav" for word in ("yes", "no") for s in range(speakers) for i in range(2)]
    for rel in clips:
        (source / rel).parent.mkdir(parents=True, exist_ok=True)
        (source / rel).write_bytes(b"")
    for name, chosen in (("validation_list.txt", val), ("testing_list.txt", test)):
        (source / name).write_text("".join(f"{r}\n" for r in clips if speaker_of(r) in chosen))
    return source, clips
