"""The benchmark's sections run (tiny sizes, `--smoke`): what they measure is quoted in docs/, not tested."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from .conftest import REPO, SHARED


def test_peak_peers_and_int8_sections_run_in_smoke_mode(trained_run, tmp_path):
    if not (SHARED / "mnist").is_dir():
        pytest.skip(f"MNIST not found under {SHARED}")
    out = tmp_path / "results.json"
    r = subprocess.run([sys.executable, str(REPO / "benchmarks" / "run.py"), "--smoke", "--only", "peak", "--only",
                        "peers", "--only", "int8", "--model", str(trained_run / "model.pt"), "--data", str(SHARED),
                        "--out", str(out)], capture_output=True, text=True, timeout=600, cwd=REPO)
    assert r.returncode == 0, r.stderr
    results = json.loads(out.read_text())
    peak = results["peak"]
    assert peak["matmul_gflops"] > 0
    for side in ("mnist", "log_mel"):
        assert 0 < peak[side]["fraction_of_peak"] and peak[side]["training_flops_per_sample"] > 0
        assert abs(sum(peak[side]["step_share"].values()) - 1) < 0.01
    peers = results["peers"]
    if "skipped" in peers:  # without the optional bench extra (Keras, TensorFlow)
        assert "bench" in peers["skipped"]
    else:
        assert peers["mnist"]["kws_seconds_per_epoch"] > 0 and peers["mnist"]["keras_seconds_per_epoch"] > 0
    int8 = results["int8"]
    assert int8["size_kb"]["int8"] < int8["size_kb"]["float32"]
    assert int8["int8_agrees_with_pytorch"] >= 0.9
    assert int8["one_thread_per_hop"]["onnx_int8"]["p50_ms"] > 0
