"""Start-up stays light: help needs no torch; classify needs torch but not librosa or matplotlib."""

import json
import subprocess
import sys

from .conftest import REPO

PROBE = """
import json, runpy, sys
sys.argv = ["kws", *sys.argv[1:]]
try:
    runpy.run_module("kws", run_name="__main__")
except SystemExit:
    pass
print(json.dumps(sorted(m for m in ("torch", "librosa", "matplotlib", "numba", "sklearn") if m in sys.modules)))
"""


def _heavy_modules(*args) -> list[str]:
    r = subprocess.run([sys.executable, "-c", PROBE, *map(str, args)], capture_output=True, text=True, cwd=REPO,
                       timeout=120)
    return json.loads(r.stdout.strip().splitlines()[-1])


def test_help_imports_nothing_heavy():
    assert _heavy_modules("--help") == []
    assert _heavy_modules("train", "--help") == []


def test_classify_imports_only_torch(trained_run, small_corpus):
    clip = sorted((small_corpus / "yes").glob("*.wav"))[0]
    assert _heavy_modules("classify", "--model", trained_run / "model.pt", clip) == ["torch"]
