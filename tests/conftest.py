"""Shared fixtures: the real clips beside the repo, a small offline corpus, one trained model."""

from __future__ import annotations

import functools
import http.server
import os
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

# Under pytest-xdist each worker is given one core: a worker's torch (and every `kws` it starts)
# on one thread, so two workers on two cores do not fight over them.
if os.environ.get("PYTEST_XDIST_WORKER"):
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(name, "1")
    torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"
SPEECH = SHARED / "speech"


def kws(*args: str, env: dict | None = None, cwd: Path | None = None, timeout: float = 600,
        input: bytes | None = None) -> subprocess.CompletedProcess:
    """Run the real command line in a child process, as a user would."""
    full_env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
    return subprocess.run([sys.executable, "-m", "kws", *map(str, args)], capture_output=True, text=True,
                          env=full_env, cwd=cwd or REPO, timeout=timeout, input=input)


def shadowed(folder: Path) -> dict:
    """An environment in which the modules in `folder` come before any installed ones (a stand-in
    that fails to import, say), keeping whatever PYTHONPATH the installed ones may need."""
    return {"PYTHONPATH": os.pathsep.join([str(folder), *filter(None, [os.environ.get("PYTHONPATH")])])}


def signal_after_first_epoch(args: list, signum: int, launcher: tuple = ("-m", "kws")) -> tuple[int, str]:
    """Run `kws ARGS` (a 3-epoch training), send `signum` once epoch 1 is logged (so it lands in
    epoch 2), and return the exit status and the rest of stderr. `launcher` may put torchrun in front."""
    child = subprocess.Popen([sys.executable, *launcher, *map(str, args)], stderr=subprocess.PIPE, text=True,
                             env={**os.environ, "PYTHONUNBUFFERED": "1"}, cwd=REPO)
    for line in child.stderr:
        if line.startswith("epoch") and "1/3" in line:
            child.send_signal(signum)
            break
    rest = child.stderr.read()
    return child.wait(timeout=120), rest


@pytest.fixture(scope="session", autouse=True)
def clip_cache(tmp_path_factory) -> Path:
    """Decoded clips go to a cache folder of the test run's own, not the user's (child processes too)."""
    folder = tmp_path_factory.mktemp("clip-cache")
    os.environ["KWS_CACHE_DIR"] = str(folder)
    return folder


@pytest.fixture(scope="session")
def speech_dir() -> Path:
    if not SPEECH.is_dir():
        pytest.skip(f"real clips not found at {SPEECH}")
    return SPEECH


def built_once(tmp_path_factory, name: str, *command: str) -> Path:
    """The folder `kws COMMAND --out NAME` writes, built once per test session.

    Under pytest-xdist every worker asks for the session fixtures; the first to come builds the
    folder in the run's shared temporary root while holding a lock, the others wait and reuse it."""
    from filelock import FileLock

    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent  # (shared by the workers of one run)
    out, done = root / name, root / f"{name}.done"
    with FileLock(str(root / f"{name}.lock")):
        if not done.exists():
            r = kws(*command, "--out", out)
            assert r.returncode == 0, r.stderr
            done.touch()
    return out


@pytest.fixture(scope="session")
def small_corpus(tmp_path_factory) -> Path:
    """A small espeak-ng corpus in the Speech Commands layout, built once per test session.

    Spoken by espeak-ng's variants as shipped, every voice every word, no Pico: the tests that use
    it check plumbing and need a small model that is sure of its three words; test_voices covers
    the timbre and a corpus whose other words fewer voices say."""
    return built_once(tmp_path_factory, "synth", "synth", "--per-word", "400", "--seed", "1", "--timbre", "0",
                      "--pico", "0", "--others-share", "1")


FIXTURE_EPOCHS = 20  # `trained_run`'s training length: its best epoch comes before the end; more only costs the suite time


@pytest.fixture(scope="session")
def trained_run(small_corpus, tmp_path_factory) -> Path:
    """A short real training run on three keywords (+ silence and unknown), with the frontend and
    the two voting nets of the `synth` recipe, so every command below is tested on such a model.

    The `speech-commands` recipe (this corpus would get `synth`'s), without its time pool, its
    unknown words as classes or its spliced keywords: basic augmentation, the book's net over every
    time step, one `_unknown_` class, the model the explain pictures and the streaming tests were
    written against. (Grad-CAM itself is tested on a tone model its test trains: a word model's
    heat moved from build to build of this corpus.) `test_unknown_words.py` runs classify, export
    and the checkpoint checks on a model with unknown words as classes.
    Its streaming threshold is calibrated on 10 minutes of validation stream, not 60: the suite's time."""
    return built_once(tmp_path_factory, "yes-no-stop", "train", "--dataset", str(small_corpus), "--words",
                      "yes,no,stop", "--epochs", str(FIXTURE_EPOCHS), "--seed", "0", "--recipe", "speech-commands",
                      "--no-time-pool", "--no-unknown-words", "--spliced-words", "0", "--calibration-minutes", "10")


@pytest.fixture(scope="session")
def digits_run(tmp_path_factory) -> Path:
    """The chapter's network trained on scikit-learn's 8×8 digits (no download; seconds)."""
    return built_once(tmp_path_factory, "digits-run", "train", "--dataset", "digits", "--epochs", "15")


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def http_server(tmp_path):
    """Serve `tmp_path/www` on 127.0.0.1; yields (folder, base URL)."""
    root = tmp_path / "www"
    root.mkdir()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_QuietHandler, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


WORDS = ["yes", "no", "stop", "yes"]  # what `recording` says, in order


def surety(model, clip: np.ndarray, word: str) -> float:
    """How sure the model is that `clip` says `word`: its probability where it wins, else 0. The
    fixtures that need a clip the small model hears take the surest, not one above a fixed bar."""
    from kws.infer import classify_audio

    label, probability = classify_audio(model, clip).top(1)[0]
    return probability if label == word else 0.0


def _word_centre(clip: np.ndarray) -> float:
    loud = np.flatnonzero(np.abs(clip) > 0.1 * np.abs(clip).max())
    return (loud[0] + loud[-1]) / 2 / 16000


@pytest.fixture(scope="session")
def recording(small_corpus, trained_run):
    """2 s of room noise, then each word (spoken at a normal level) with 1.5 s of noise after it, then
    3 s of noise alone.

    The words are the held-out voices the model is surest of: what is tested here is the streaming
    engine (windows, smoothing, thresholds, suppression, timing), not how accurate the small
    fixture model is. (The surest, not those above a fixed probability: the recipe's label
    smoothing trains the model to answer short of certainty, and how many clips clear a given bar
    varies from build to build.)
    """
    from kws.checkpoint import load_model

    model, _ = load_model(trained_run / "model.pt")
    rng = np.random.default_rng(7)

    def level(path):
        clip, _ = sf.read(small_corpus / path, dtype="float32")
        return (0.3 * clip / np.abs(clip).max()).astype(np.float32)

    held_out = (small_corpus / "testing_list.txt").read_text().split()
    pool = {}
    for w in set(WORDS):
        ranked = sorted(((surety(model, level(p), w), p) for p in held_out if p.startswith(w + "/")), reverse=True)
        pool[w] = [p for s, p in ranked if s > 0][:WORDS.count(w)]
        assert len(pool[w]) == WORDS.count(w), f"the fixture model recognises too few held-out {w!r} clips"
    noise = lambda n: 0.003 * rng.standard_normal(n)  # about -50 dBFS: a quiet room
    parts, truth, t = [noise(32000)], [], 2.0
    for word in WORDS:
        clip = level(pool[word].pop(0))
        truth.append((word, t + _word_centre(clip)))
        parts += [clip + noise(len(clip)), noise(24000)]
        t += (len(clip) + 24000) / 16000
    noise_from = t
    parts.append(noise(48000))
    audio = np.concatenate(parts).astype(np.float32)
    return audio, truth, noise_from
