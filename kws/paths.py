"""Where kws keeps downloads and training runs, so every command agrees without being told."""

from __future__ import annotations

import os
from pathlib import Path


def data_dir(override: Path | None = None) -> Path:
    """Downloads and generated corpora: `--data-dir`, else `$KWS_DATA_DIR`, else `./data`."""
    return Path(override or os.environ.get("KWS_DATA_DIR") or "data")


def runs_dir() -> Path:
    """Training runs: `$KWS_RUNS_DIR`, else `./runs`."""
    return Path(os.environ.get("KWS_RUNS_DIR") or "runs")


def latest_checkpoint() -> Path | None:
    """The `model.pt` written most recently under the runs directory, if any."""
    found = [p for p in runs_dir().glob("*/model.pt") if p.is_file()]
    return max(found, key=lambda p: p.stat().st_mtime) if found else None
