"""Whatever is on the user's disk, and whenever the plug is pulled: a right answer or one clear line."""

import io
import json
import os
import resource
import signal
import subprocess
import sys
import tarfile
import threading
import http.server

import numpy as np
import pytest
import soundfile as sf
import torch

from kws.download import COMPLETE_MARKER

from .conftest import kws, signal_after_first_epoch, surety
from .test_download import _add, _wav_bytes, build_archive, sha256


@pytest.fixture(scope="module")
def yes_clip(small_corpus, trained_run):
    """The held-out "yes" (float32, 16 kHz) that the fixture model is surest of, at its own rate and
    after the 8 kHz round trip (which drops the "s" above 4 kHz): the format test checks decoding,
    not how well a small model hears band-limited speech. (The surest, not one above a fixed
    probability: the recipe's label smoothing trains the model to answer short of certainty,
    and how many clips clear a given bar varies from build to build.)"""
    from kws.checkpoint import load_model

    model, _ = load_model(trained_run / "model.pt")
    names = [p for p in (small_corpus / "testing_list.txt").read_text().split() if p.startswith("yes/")]
    surest, best = None, 0.0
    for name in names:
        clip, _ = sf.read(small_corpus / name, dtype="float32")
        clip = 0.5 * clip / np.abs(clip).max()
        sure = min(surety(model, c, "yes") for c in (clip, _resample(_resample(clip, 8000), 16000, 8000)))
        if sure > best:
            surest, best = clip, sure
    if surest is None:
        pytest.fail("the fixture model recognises no held-out 'yes' at both rates")
    return surest


def _resample(clip: np.ndarray, rate: int, from_rate: int = 16000) -> np.ndarray:
    import soxr

    return soxr.resample(clip, from_rate, rate).astype(np.float32)


# ------------------------------------------------------------------------------------------- audio

GOOD = {  # name: (rate, channels, format, subtype)
    "u8.wav": (16000, 1, "WAV", "PCM_U8"),
    "s24.wav": (16000, 1, "WAV", "PCM_24"),
    "f32.wav": (16000, 1, "WAV", "FLOAT"),
    "clip.flac": (16000, 1, "FLAC", "PCM_16"),
    "clip.ogg": (16000, 1, "OGG", "VORBIS"),
    "8k.wav": (8000, 1, "WAV", "PCM_16"),
    "44k.wav": (44100, 1, "WAV", "PCM_16"),
    "48k.wav": (48000, 1, "WAV", "PCM_16"),
    "stereo.wav": (16000, 2, "WAV", "PCM_16"),
    "surround.wav": (48000, 6, "WAV", "FLOAT"),
}


def _write_good(tmp_path, clip):
    paths = {}
    for name, (rate, channels, fmt, subtype) in GOOD.items():
        audio = _resample(clip, rate) if rate != 16000 else clip
        if channels > 1:  # the word on every channel, at different gains, as a real mixer gives it
            audio = np.stack([audio * (0.4 + 0.1 * c) for c in range(channels)], axis=1)
        path = tmp_path / name
        sf.write(path, audio, rate, format=fmt, subtype=subtype)
        paths[name] = path
    return paths


def _write_bad(tmp_path, clip):
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "empty.wav").write_bytes(b"")
    sf.write(bad / "zero-samples.wav", np.zeros(0, np.float32), 16000)
    (bad / "random.wav").write_bytes(np.random.default_rng(0).bytes(5000))
    (bad / "a-folder.wav").mkdir()
    nan = clip.copy()
    nan[100] = np.nan
    sf.write(bad / "nan.wav", nan, 16000, subtype="FLOAT")
    inf = clip.copy()
    inf[200] = np.inf
    sf.write(bad / "inf.wav", inf, 16000, subtype="FLOAT")
    header_only = io.BytesIO()
    sf.write(header_only, clip, 16000, format="WAV", subtype="PCM_16")
    (bad / "header-only.wav").write_bytes(header_only.getvalue()[:44])
    return [bad / "missing.wav", *sorted(p for p in bad.iterdir())]


def test_every_format_gives_the_answer_and_every_bad_file_one_line(trained_run, yes_clip, tmp_path):
    good = _write_good(tmp_path, yes_clip)
    truncated = tmp_path / "truncated.wav"  # the header promises a second; two thirds arrived
    sf.write(truncated, yes_clip, 16000, subtype="PCM_16")
    truncated.write_bytes(truncated.read_bytes()[:44 + 2 * 11000])
    silence = tmp_path / "silence.wav"
    sf.write(silence, np.zeros(32000, np.float32), 16000)
    bad = _write_bad(tmp_path, yes_clip)
    files = [*good.values(), truncated, *bad, silence]
    r = kws("classify", "--model", trained_run / "model.pt", "--json", *files)
    assert r.returncode == 2, r.stderr
    answers = {os.path.basename(o["file"]): o["label"] for o in json.loads(r.stdout)}
    assert set(answers) == {*good, "truncated.wav", "silence.wav"}, answers
    assert all(answers[name] == "yes" for name in good), answers
    assert answers["truncated.wav"] in ("yes", "_unknown_", "_silence_", "no", "stop")
    assert answers["silence.wav"] == "_silence_"
    lines = r.stderr.strip().splitlines()
    assert len(lines) == len(bad) and "Traceback" not in r.stderr
    for path, line in zip(bad, lines):
        assert line.startswith(f"kws: error: {path}:"), (path, line)
    # The same files through the streaming engine: the bad ones reported, the rest scanned.
    r = kws("detect", "--model", trained_run / "model.pt", *good.values(), *bad)
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == len(bad)
    assert "Traceback" not in r.stderr


def test_a_bad_file_alone_exits_2_with_one_line(trained_run, tmp_path):
    path = tmp_path / "noise.wav"
    path.write_bytes(b"RIFF....WAVEfmt " + bytes(100))
    for command in ("classify", "detect"):
        r = kws(command, "--model", trained_run / "model.pt", path)
        assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, r.stderr
        assert "not a readable audio file" in r.stderr


def _peak_rss_kb(*args: str) -> tuple[subprocess.CompletedProcess, int]:
    """Run `kws ARGS` under a tiny parent that reports the child's peak resident memory."""
    probe = ("import resource, subprocess, sys; r = subprocess.run(sys.argv[1:], capture_output=True, text=True); "
             "sys.stdout.write(r.stdout); sys.stderr.write(r.stderr); "
             "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr); sys.exit(r.returncode)")
    r = subprocess.run([sys.executable, "-c", probe, sys.executable, "-m", "kws", *map(str, args)],
                       capture_output=True, text=True, timeout=600)
    *rest, peak = r.stderr.strip().splitlines()
    return subprocess.CompletedProcess(r.args, r.returncode, r.stdout, "\n".join(rest)), int(peak)


def _long_recording(path, minutes: float, clip: np.ndarray, at: float) -> None:
    rng = np.random.default_rng(1)
    with sf.SoundFile(path, "w", 16000, 1, subtype="PCM_16") as f:
        for start in range(0, int(minutes * 60), 60):
            block = (0.003 * rng.standard_normal(16000 * 60)).astype(np.float32)
            if start <= at < start + 60:
                i = int((at - start) * 16000)
                block[i:i + len(clip)] += clip
            f.write(block)


@pytest.mark.slow
def test_a_half_hour_recording_in_bounded_memory(trained_run, yes_clip, tmp_path):
    short, hour = tmp_path / "minute.wav", tmp_path / "half-hour.wav"
    _long_recording(short, 1, yes_clip, at=30.0)
    _long_recording(hour, 30, yes_clip, at=930.0)
    base = {}
    for command in ("detect", "classify"):
        r, base[command] = _peak_rss_kb(command, "--model", trained_run / "model.pt", "--json", short)
        assert r.returncode == 0, r.stderr
    r, peak = _peak_rss_kb("detect", "--model", trained_run / "model.pt", "--json", hour)
    assert r.returncode == 0, r.stderr
    found = [json.loads(line) for line in r.stdout.splitlines()]
    assert [d["label"] for d in found] == ["yes"] and 930 <= found[0]["time"] <= 931.5, found
    # The whole half hour as float32 would be 115 MB; decoding it in blocks keeps the peak where a minute's is.
    assert peak - base["detect"] < 60_000, (peak, base)
    r, peak = _peak_rss_kb("classify", "--model", trained_run / "model.pt", "--json", hour)
    assert r.returncode == 0, r.stderr
    result = json.loads(r.stdout)[0]
    assert result["label"] == "yes", result
    assert peak - base["classify"] < 60_000, (peak, base)


# ------------------------------------------------------------------------------------- checkpoints

class _RunsCode:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_a_checkpoint_that_would_run_code_is_refused(trained_run, tmp_path, yes_clip):
    sf.write(tmp_path / "yes.wav", yes_clip, 16000)
    data = torch.load(trained_run / "model.pt", weights_only=True)
    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.pt"
    torch.save({**data, "extra": _RunsCode(marker)}, evil)
    for command in (["classify", "--model", evil, tmp_path / "yes.wav"], ["explain", "--model", evil, tmp_path / "yes.wav"],
                    ["evaluate", "--model", evil]):
        r = kws(*command)
        assert r.returncode == 2, r.stderr
        assert "refused" in r.stderr and "could run code" in r.stderr and "system" in r.stderr
        assert len(r.stderr.strip().splitlines()) == 1
    assert not marker.exists()
    torch.load(evil, weights_only=False)  # only an unsafe load runs it: the test's own check
    assert marker.exists()


@pytest.mark.parametrize("damage, message", [
    ("version", "checkpoint format 99 from kws 9.9"),
    ("shapes", "the weights do not fit the model"),
    ("labels", "labels but the network has"),
    ("truncated", "not a kws checkpoint"),
    ("not-kws", "not a kws checkpoint"),
    ("training-state", "training state for `kws train --resume`, not a model; use the model.pt beside it"),
])
def test_a_checkpoint_that_does_not_fit_says_what_is_wrong(trained_run, tmp_path, yes_clip, damage, message):
    sf.write(tmp_path / "yes.wav", yes_clip, 16000)
    data = torch.load(trained_run / "model.pt", weights_only=True)
    path = tmp_path / "model.pt"
    if damage == "version":
        data.update(format=99, kws_version="9.9")
    elif damage == "shapes":
        key = next(k for k in data["state_dict"] if k.endswith("weight") and "net" in k)
        data["state_dict"][key] = torch.zeros(3, 3)
    elif damage == "labels":
        data["labels"] = data["labels"] + ["banana"]
    elif damage == "not-kws":
        data = {"weights": torch.zeros(3)}
    elif damage == "training-state":  # last.pt: weights, optimiser and generator states to resume from
        data = torch.load(trained_run / "last.pt", weights_only=True)
    torch.save(data, path)
    if damage == "truncated":
        path.write_bytes(path.read_bytes()[:1000])
    r = kws("classify", "--model", path, tmp_path / "yes.wav")
    assert r.returncode == 2, r.stderr
    assert message in r.stderr and len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr


# ---------------------------------------------------------------------------------------- training

def test_resume_after_kill_9_reaches_the_same_weights(small_corpus, tmp_path):
    args = ["train", "--dataset", small_corpus, "--words", "yes,no", "--epochs", "3", "--seed", "5",
            "--recipe", "speech-commands", "--members", "1",
            "--calibration-minutes", "0"]
    full = kws(*args, "--out", tmp_path / "full")
    assert full.returncode == 0, full.stderr
    status, _ = signal_after_first_epoch([*args, "--out", tmp_path / "part"], signal.SIGKILL)  # the power cord
    assert status == -signal.SIGKILL
    # Whatever the kill interrupted, model.pt and last.pt are whole files from a finished write.
    assert torch.load(tmp_path / "part" / "model.pt", weights_only=True)["epoch"] >= 1
    epoch_done = torch.load(tmp_path / "part" / "last.pt", weights_only=True)["epoch"]
    assert 1 <= epoch_done < 3 and not list((tmp_path / "part").glob("*.tmp*"))
    resumed = kws(*args, "--out", tmp_path / "part", "--resume")
    assert resumed.returncode == 0, resumed.stderr
    a = torch.load(tmp_path / "full" / "last.pt", weights_only=True)["model"]
    b = torch.load(tmp_path / "part" / "last.pt", weights_only=True)["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert json.loads((tmp_path / "part" / "metrics.json").read_text())["epochs"] == 3


def test_ctrl_c_saves_and_says_how_to_resume(small_corpus, tmp_path):
    args = ["train", "--dataset", small_corpus, "--words", "yes,no", "--epochs", "3", "--out", str(tmp_path / "run"),
            "--recipe", "speech-commands", "--members", "1",
            "--calibration-minutes", "0"]
    status, rest = signal_after_first_epoch(args, signal.SIGINT)
    assert status == 130
    assert "--resume" in rest and "Traceback" not in rest
    state = torch.load(tmp_path / "run" / "last.pt", weights_only=True)
    assert state["epoch"] >= 1


# --------------------------------------------------------------------------------------- downloads

class _FlakyHandler(http.server.BaseHTTPRequestHandler):
    """Serves one file; the first request is cut off half-way, as a dropped connection does."""

    payload = b""
    cut = True

    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", str(len(self.payload)))
        self.end_headers()
        if type(self).cut:
            type(self).cut = False
            self.wfile.write(self.payload[:len(self.payload) // 2])
            self.wfile.flush()
            self.close_connection = True
            return
        self.wfile.write(self.payload)

    def log_message(self, *args):
        pass


def test_an_interrupted_download_leaves_nothing_and_the_next_call_completes(tmp_path):
    archive = tmp_path / "sc.tar.gz"
    build_archive(archive, speakers=3)
    _FlakyHandler.payload, _FlakyHandler.cut = archive.read_bytes(), True
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _FlakyHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/sc.tar.gz"
    data = tmp_path / "data"
    try:
        r = kws("download", "speech-commands", "--data-dir", data, "--url", url, "--sha256", sha256(archive))
        assert r.returncode == 1 and "cannot download" in r.stderr, r.stderr
        assert len(r.stderr.strip().splitlines()) == 1
        assert not (data / "downloads" / "sc.tar.gz").exists() and not (data / "speech_commands_v0.02").exists()
        r = kws("download", "speech-commands", "--data-dir", data, "--url", url, "--sha256", sha256(archive))
        assert r.returncode == 0, r.stderr
        assert (data / "speech_commands_v0.02" / COMPLETE_MARKER).is_file()
    finally:
        server.shutdown()
        server.server_close()


def test_a_device_file_in_an_archive_is_refused(tmp_path, http_server):
    www, base = http_server
    archive = www / "dev.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        _add(tar, "yes/a_nohash_0.wav", _wav_bytes(1.0, 300))
        info = tarfile.TarInfo("yes/null")
        info.type, info.devmajor, info.devminor = tarfile.CHRTYPE, 1, 3
        tar.addfile(info)
    data = tmp_path / "data"
    r = kws("download", "speech-commands", "--data-dir", data, "--url", f"{base}/dev.tar.gz", "--sha256", sha256(archive))
    assert r.returncode == 2 and "device" in r.stderr, r.stderr
    assert not (data / "speech_commands_v0.02").exists() and not (data / "speech_commands_v0.02.partial").exists()


def _small_file_limit():
    """In the child: files may not grow past 1 MB, and writing past that fails (EFBIG) rather than
    killing the process: the same path through the code as a full disk."""
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 20, 1 << 20))


def test_running_out_of_space_mid_extraction_is_not_mistaken_for_done(tmp_path, http_server):
    www, base = http_server
    archive = www / "big.tar.gz"
    build_archive(archive, speakers=2)
    with tarfile.open(www / "big.tar", "w") as tar:
        with tarfile.open(archive) as small:
            for member in small.getmembers():
                tar.addfile(member, small.extractfile(member))
        _add(tar, "_background_noise_/long_noise.wav", _wav_bytes(60.0, 50))  # 1.9 MB: past the limit
    import gzip

    archive.write_bytes(gzip.compress((www / "big.tar").read_bytes()))
    args = ["download", "speech-commands", "--data-dir", tmp_path / "data", "--url", f"{base}/big.tar.gz",
            "--sha256", sha256(archive)]
    r = subprocess.run([sys.executable, "-m", "kws", *map(str, args)], capture_output=True, text=True,
                       preexec_fn=_small_file_limit, timeout=120)
    assert r.returncode == 1 and "File too large" in r.stderr and "Traceback" not in r.stderr, r.stderr
    root = tmp_path / "data" / "speech_commands_v0.02"
    assert not (root / COMPLETE_MARKER).exists() and not root.with_name(root.name + ".partial").exists()
    r = kws(*args)  # room again: the verified archive is reused and extraction finishes
    assert r.returncode == 0, r.stderr
    assert (root / COMPLETE_MARKER).is_file() and (root / "_background_noise_" / "long_noise.wav").stat().st_size > 1 << 20
