"""The acceptance check of issue #8: the quick start model must hear real people.

It runs the README's quick start training from an empty data folder (about five minutes on two
cores), which does not fit the test suite's time budget, so it runs only when asked:

    KWS_QUICKSTART=1 python -m pytest tests/test_quickstart.py

It is marked xfail(strict) while the target is not met (measured: 73.1% real, 91.9% synthetic):
it then reports XFAIL, and the day it passes it fails loudly so that the marker comes off.
"""

from __future__ import annotations

import json
import os

import pytest

from .conftest import kws


@pytest.mark.slow
@pytest.mark.skipif(os.environ.get("KWS_QUICKSTART") != "1", reason="about 5 minutes: set KWS_QUICKSTART=1")
@pytest.mark.xfail(strict=True, reason="#8 open: the quick start model scored 73.1% on the real clips, not 80%")
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
