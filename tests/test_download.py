"""The whole download path against archives the tests build and serve from 127.0.0.1."""

import hashlib
import io
import tarfile

import numpy as np
import pytest
import soundfile as sf

from kws.datasets.speech_commands import SILENCE, UNKNOWN, load
from kws.download import COMPLETE_MARKER

from .conftest import kws

WORDS = ["yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go", "cat", "dog"]


def _wav_bytes(seconds: float, freq: float, rate: int = 16000) -> bytes:
    t = np.arange(int(seconds * rate)) / rate
    buf = io.BytesIO()
    sf.write(buf, 0.3 * np.sin(2 * np.pi * freq * t), rate, format="WAV", subtype="PCM_16")
    return buf.getvalue()


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def build_archive(path, speakers=10) -> dict:
    """A Speech Commands v0.02 archive in miniature: no top-level folder, lists, noise, a short clip."""
    val, test = [], []
    with tarfile.open(path, "w:gz") as tar:
        for w, word in enumerate(WORDS):
            for s in range(speakers):
                rel = f"{word}/{s:08x}_nohash_0.wav"
                seconds = 0.6 if (w, s) == (0, 0) else 1.0  # one short clip, to be zero-padded
                _add(tar, rel, _wav_bytes(seconds, 200 + 40 * w))
                (val if s == 8 else test if s == 9 else []).append(rel)
        _add(tar, "validation_list.txt", "".join(p + "\n" for p in val).encode())
        _add(tar, "testing_list.txt", "".join(p + "\n" for p in test).encode())
        rng = np.random.default_rng(0)
        buf = io.BytesIO()
        sf.write(buf, 0.2 * rng.standard_normal(16000 * 5), 16000, format="WAV", subtype="PCM_16")
        _add(tar, "_background_noise_/white_noise.wav", buf.getvalue())
        _add(tar, "_background_noise_/README.md", b"noise\n")
        _add(tar, "LICENSE", b"CC BY 4.0\n")
    return {"val": val, "test": test}


def sha256(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_download_verify_extract_and_load(tmp_path, http_server):
    www, base = http_server
    lists = build_archive(www / "speech_commands_v0.02.tar.gz")
    data = tmp_path / "data"
    r = kws("download", "speech-commands", "--data-dir", data, "--url", f"{base}/speech_commands_v0.02.tar.gz",
            "--sha256", sha256(www / "speech_commands_v0.02.tar.gz"))
    assert r.returncode == 0, r.stderr
    root = data / "speech_commands_v0.02"
    assert (root / COMPLETE_MARKER).is_file() and (root / "yes" / "00000000_nohash_0.wav").is_file()
    assert (data / "downloads" / "speech_commands_v0.02.tar.gz").is_file()

    # A second call finds the verified cache and does nothing.
    again = kws("download", "speech-commands", "--data-dir", data, "--url", f"{base}/missing.tar.gz",
                "--sha256", sha256(www / "speech_commands_v0.02.tar.gz"))
    assert again.returncode == 0, again.stderr

    splits = load(root, task="12", seed=0)
    assert splits.labels[:2] == [SILENCE, UNKNOWN] and splits.labels[2:] == WORDS[:10]
    for name, expected_known in (("train", 80), ("val", 10), ("test", 10)):
        x, y = getattr(splits, name)
        assert x.shape[1] == 16000 and x.dtype.name if hasattr(x.dtype, "name") else True
        known = int((y >= 2).sum())
        assert known == expected_known
        # _unknown_ comes from cat/dog, _silence_ from the noise: about 10% of the split each.
        assert int((y == 1).sum()) == int(np.ceil(known * 0.1))
        assert int((y == 0).sum()) == int(np.ceil(known * 0.1))
    # The validation list's clips are in validation and nowhere else.
    assert len(splits.val[1][splits.val[1] >= 2]) == len([p for p in lists["val"] if p.split("/")[0] in WORDS[:10]])
    # The 0.6-s clip was zero-padded to one second.
    short = splits.train[0][(splits.train[1] == 2)][0]
    assert short[int(0.6 * 16000) + 10:].abs().max() == 0 and short[:9000].abs().max() > 0
    # Silence clips are cut from the background noise: not all zero.
    assert splits.train[0][splits.train[1] == 0].abs().amax(1).max() > 0

    every = load(root, task="35")
    assert every.labels == sorted(WORDS) and SILENCE not in every.labels


def test_checksum_mismatch_removes_the_download(tmp_path, http_server):
    www, base = http_server
    build_archive(www / "sc.tar.gz", speakers=2)
    data = tmp_path / "data"
    r = kws("download", "speech-commands", "--data-dir", data, "--url", f"{base}/sc.tar.gz", "--sha256", "0" * 64)
    assert r.returncode == 1
    assert "checksum mismatch" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert not any((data / "downloads").glob("*")) if (data / "downloads").exists() else True
    assert not (data / "speech_commands_v0.02").exists()


@pytest.mark.parametrize("evil", ["../escape.txt", "/tmp/kws-absolute.txt", "link"])
def test_unsafe_archive_is_refused_with_nothing_extracted(tmp_path, http_server, evil):
    www, base = http_server
    archive = www / "evil.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        _add(tar, "yes/a_nohash_0.wav", _wav_bytes(1.0, 300))
        if evil == "link":
            info = tarfile.TarInfo("yes/link.wav")
            info.type, info.linkname = tarfile.SYMTYPE, "../../../etc/passwd"
            tar.addfile(info)
        else:
            _add(tar, evil, b"gotcha")
    data = tmp_path / "data"
    r = kws("download", "speech-commands", "--data-dir", data, "--url", f"{base}/evil.tar.gz", "--sha256", sha256(archive))
    assert r.returncode == 2, r.stderr
    assert "refusing to extract" in r.stderr and "Traceback" not in r.stderr
    assert not (data / "speech_commands_v0.02").exists() and not (data / "speech_commands_v0.02.partial").exists()
    assert not (tmp_path / "escape.txt").exists() and not (data / "escape.txt").exists()


def test_train_without_network_names_the_offline_alternative(tmp_path):
    r = kws("train", "--data-dir", tmp_path, env={"KWS_SPEECH_COMMANDS_URL": "http://127.0.0.1:9/sc.tar.gz"})
    assert r.returncode == 1
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "cannot download" in lines[0] and "--dataset synth" in lines[0]
