"""The decoded-clip cache: identical to reading the WAVs, rebuilt when a file changes, kept in a
per-user folder and never beside the data, so a read-only dataset trains."""

import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf
import torch

from kws.datasets.cache import cache_dir, cached_clips
from kws.datasets.speech_commands import decode_clips, load

from .conftest import REPO


def _corpus(root, rng):
    for word in ("yes", "no", "cat"):
        (root / word).mkdir(parents=True)
        for i in range(5):
            seconds = 0.7 if i == 0 else 1.0  # one short clip, padded
            sf.write(root / word / f"{i:08x}_nohash_0.wav", 0.3 * rng.uniform(-1, 1, int(16000 * seconds)), 16000,
                     subtype="PCM_16")
    (root / "validation_list.txt").write_text("yes/00000004_nohash_0.wav\nno/00000004_nohash_0.wav\n")
    (root / "testing_list.txt").write_text("yes/00000003_nohash_0.wav\nno/00000003_nohash_0.wav\n")


def test_cache_equals_decoding_and_follows_changes(tmp_path, monkeypatch):
    monkeypatch.setenv("KWS_CACHE_DIR", str(tmp_path / "cache"))
    root = tmp_path / "corpus"
    _corpus(root, np.random.default_rng(0))
    before = sorted(p.relative_to(root) for p in root.rglob("*"))
    first = load(root, task="35")
    caches = sorted(cache_dir().glob("*.int16"))
    assert len(caches) == 3  # one per split
    assert sorted(p.relative_to(root) for p in root.rglob("*")) == before  # nothing written beside the data
    again = load(root, task="35")
    for name in ("train", "val", "test"):
        assert torch.equal(getattr(first, name)[0], getattr(again, name)[0])
    # The cached array is what decoding the WAVs gives, row for row.
    paths = sorted(root.glob("*/*.wav"))
    direct = decode_clips(paths)
    cached = cached_clips(paths, 16000, decode_clips)  # builds
    reread = cached_clips(paths, 16000, lambda p, n: (_ for _ in ()).throw(AssertionError("decoded again")))
    assert isinstance(reread, np.memmap) and np.array_equal(direct, cached) and np.array_equal(direct, reread)
    # Change one clip: the next read decodes afresh, and the stale array is gone.
    changed = root / "yes" / "00000001_nohash_0.wav"
    sf.write(changed, np.zeros(16000), 16000, subtype="PCM_16")
    os.utime(changed, ns=(1, 1))
    fresh = cached_clips(paths, 16000, decode_clips)
    assert np.array_equal(fresh, decode_clips(paths)) and not np.array_equal(fresh, direct)
    assert fresh[paths.index(changed)].any() == False  # noqa: E712
    names = [p.name.split("-")[0] for p in cache_dir().glob("*.int16")]
    assert len(names) == len(set(names))  # one array per file list, never a stale one beside it


def test_a_truncated_cache_is_not_trusted(tmp_path, monkeypatch):
    monkeypatch.setenv("KWS_CACHE_DIR", str(tmp_path / "cache"))
    root = tmp_path / "corpus"
    _corpus(root, np.random.default_rng(1))
    paths = sorted(root.glob("*/*.wav"))
    cached_clips(paths, 16000, decode_clips)
    (array,) = cache_dir().glob("*.int16")
    array.write_bytes(array.read_bytes()[:1000])  # as a crash mid-copy would leave it
    assert np.array_equal(cached_clips(paths, 16000, decode_clips), decode_clips(paths))


def test_the_cache_folder_is_per_user_unless_named(monkeypatch):
    monkeypatch.delenv("KWS_CACHE_DIR", raising=False)
    assert cache_dir().parts[-2:] == ("kws", "clips") and cache_dir().is_absolute()
    monkeypatch.setenv("KWS_CACHE_DIR", "/somewhere/else")
    assert cache_dir() == type(cache_dir())("/somewhere/else")


def _read_only_mount_works() -> bool:
    if shutil.which("unshare") is None:
        return False
    probe = subprocess.run(["unshare", "-m", "sh", "-c", "mount --bind /tmp /tmp && mount -o remount,ro,bind /tmp /tmp"],
                           capture_output=True)
    return probe.returncode == 0


def test_a_read_only_dataset_trains_and_evaluates(tmp_path):
    """The corpus and the run's parent folder are mounted read-only (writing there fails even for
    root), as a dataset installed system-wide is: training and evaluating still work, the clips are
    cached in $KWS_CACHE_DIR, and with no writable cache folder at all they are decoded uncached."""
    if not _read_only_mount_works():
        pytest.skip("needs `unshare -m` and a bind mount (root in a mount namespace) to make a read-only folder")
    data = tmp_path / "ro"
    _corpus(data / "corpus", np.random.default_rng(2))
    cache, out = tmp_path / "cache", tmp_path / "runs"
    script = (f"mount --bind {data} {data} && mount -o remount,ro,bind {data} {data} && "
              f"! touch {data}/corpus/probe 2>/dev/null && "
              f"{sys.executable} -m kws train --dataset {data}/corpus --task 35 --epochs 1 --recipe speech-commands "
              f"--out {out}/a && "
              f"{sys.executable} -m kws evaluate --model {out}/a/model.pt --dataset {data}/corpus && "
              f"KWS_CACHE_DIR={data}/cache {sys.executable} -m kws train --dataset {data}/corpus --task 35 "
              f"--epochs 1 --recipe speech-commands --out {out}/b")
    r = subprocess.run(["unshare", "-m", "sh", "-c", script], capture_output=True, text=True, cwd=REPO, timeout=300,
                       env={**os.environ, "KWS_CACHE_DIR": str(cache), "PYTHONUNBUFFERED": "1"})
    assert r.returncode == 0, r.stdout + r.stderr
    assert "accuracy" in r.stdout and (out / "a" / "model.pt").is_file() and (out / "b" / "model.pt").is_file()
    assert len(list(cache.glob("*.int16"))) == 3  # train, val and test of the first run
    assert sorted(p.name for p in (data / "corpus").iterdir()) == ["cat", "no", "testing_list.txt",
                                                                    "validation_list.txt", "yes"]
