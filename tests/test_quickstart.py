"""The acceptance check of issue #8: the quick start model must hear real people.

It runs the README's quick start training from an empty data folder (about four minutes on two
cores, the corpus included), which does not fit the test suite's time budget beside the rest, so it
runs only when asked:

    KWS_QUICKSTART=1 python -m pytest tests/test_quickstart.py

Measured: 84.6% on the real clips and 95.7% on unseen synthetic voices for the README's quick
start model, and 84.6% and 95.6% when this test ran it again on a fresh build of the corpus; the
previous session's run of this test scored 79.8% and 94.6%. The recipe stands just past the two
targets, not far past them (one run moves by about ±4.5 points on the 104 real clips), so the test
may fail on a given build or machine; it is the check of the quick start as a newcomer runs it,
its own seed, and of issue #8.
"""

from __future__ import annotations

import json
import os

import pytest

from .conftest import kws


@pytest.mark.slow
@pytest.mark.skipif(os.environ.get("KWS_QUICKSTART") != "1", reason="about 4 minutes: set KWS_QUICKSTART=1")
def test_quick_start_model_hears_real_people(tmp_path, speech_dir):
    run = tmp_path / "run"
    r = kws("train", "--dataset", "synth", "--data-dir", tmp_path / "data", "--out", run, timeout=1200)
    assert r.returncode == 0, r.stderr
    synthetic = json.loads((run / "metrics.json").read_text())["test_accuracy"]
    r = kws("evaluate", "--model", run / "model.pt", "--dataset", speech_dir, "--json")
    assert r.returncode == 0, r.stderr
    real = json.loads(r.stdout)
    assert real["count"] >= 100  # every real clip of the ten keywords
    assert real["accuracy"] >= 0.80 and synthetic >= 0.95, (real["accuracy"], synthetic)
