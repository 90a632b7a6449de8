"""The decoded-clip cache: identical to reading the WAVs, and rebuilt when a file changes."""

import os

import numpy as np
import soundfile as sf
import torch

from kws.datasets.cache import CACHE_DIR, cached_clips
from kws.datasets.speech_commands import decode_clips, load


def _corpus(root, rng):
    for word in ("yes", "no", "cat"):
        (root / word).mkdir(parents=True)
        for i in range(5):
            seconds = 0.7 if i == 0 else 1.0  # one short clip, padded
            sf.write(root / word / f"{i:08x}_nohash_0.wav", 0.3 * rng.uniform(-1, 1, int(16000 * seconds)), 16000,
                     subtype="PCM_16")
    (root / "validation_list.txt").write_text("yes/00000004_nohash_0.wav\nno/00000004_nohash_0.wav\n")
    (root / "testing_list.txt").write_text("yes/00000003_nohash_0.wav\nno/00000003_nohash_0.wav\n")


def test_cache_equals_decoding_and_follows_changes(tmp_path):
    root = tmp_path / "corpus"
    _corpus(root, np.random.default_rng(0))
    first = load(root, task="35")
    caches = sorted((root / CACHE_DIR).glob("*.int16"))
    assert len(caches) == 3  # one per split
    again = load(root, task="35")
    for name in ("train", "val", "test"):
        assert torch.equal(getattr(first, name)[0], getattr(again, name)[0])
    # The cached array is what decoding the WAVs gives, row for row.
    paths = sorted(root.glob("*/*.wav"))
    direct = decode_clips(paths)
    cached = cached_clips(paths, 16000, root, decode_clips)  # builds
    reread = cached_clips(paths, 16000, root, lambda p, n: (_ for _ in ()).throw(AssertionError("decoded again")))
    assert isinstance(reread, np.memmap) and np.array_equal(direct, cached) and np.array_equal(direct, reread)
    # Change one clip: the next read decodes afresh, and the stale array is gone.
    changed = root / "yes" / "00000001_nohash_0.wav"
    sf.write(changed, np.zeros(16000), 16000, subtype="PCM_16")
    os.utime(changed, ns=(1, 1))
    fresh = cached_clips(paths, 16000, root, decode_clips)
    assert np.array_equal(fresh, decode_clips(paths)) and not np.array_equal(fresh, direct)
    assert fresh[paths.index(changed)].any() == False  # noqa: E712
    names = [p.name.split("-")[0] for p in (root / CACHE_DIR).glob("*.int16")]
    assert len(names) == len(set(names))  # one array per file list, never a stale one beside it


def test_a_truncated_cache_is_not_trusted(tmp_path):
    root = tmp_path / "corpus"
    _corpus(root, np.random.default_rng(1))
    paths = sorted(root.glob("*/*.wav"))
    cached_clips(paths, 16000, root, decode_clips)
    (array,) = (root / CACHE_DIR).glob("*.int16")
    array.write_bytes(array.read_bytes()[:1000])  # as a crash mid-copy would leave it
    assert np.array_equal(cached_clips(paths, 16000, root, decode_clips), decode_clips(paths))
