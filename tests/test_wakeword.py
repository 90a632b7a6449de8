"""Streaming measured as wake-word tools measure it: the built recording, the scorer, the command."""

import json

import numpy as np
import pytest
import soundfile as sf
import torch

from kws.errors import UserError
from kws.stream import Detection
from kws.augment import speech_rms
from kws.wakeword import Event, build_stream, read_truth, score, snr_band, write_truth

from .conftest import kws

LABELS = ["_silence_", "_unknown_", "yes", "no"]


def _clips(n: int = 12):
    """1-s clips, each a short tone burst in its middle, cycling through yes, no and _unknown_."""
    t = np.arange(16000) / 16000
    burst = ((t > 0.4) & (t < 0.6)) * np.sin(2 * np.pi * 440 * t)
    x = torch.from_numpy(np.round(12000 * np.stack([burst] * n)).astype(np.int16))
    y = torch.tensor([(2, 3, 1)[i % 3] for i in range(n)])
    return x, y


def test_the_built_stream_places_words_apart_over_noise_and_ends_in_noise_alone():
    x, y = _clips()
    noise = torch.randn(16000 * 20) * 0.05
    audio, events = build_stream(x, y, LABELS, noise, minutes=3, seed=4)
    assert len(audio) == 3 * 60 * 16000 and audio.dtype == np.float32 and np.abs(audio).max() <= 1.0
    assert len(events) > 20
    for a, b in zip(events, events[1:]):
        assert b.start - a.end >= 1.0  # at least a second between words: no overlap
    assert all(e.end <= 0.9 * 180 for e in events)  # the last tenth is noise alone
    assert all(abs((e.end - e.start) - 0.2) < 0.03 for e in events)  # the truth is where the word is
    keywords = sum(e.label in ("yes", "no") for e in events)
    assert 0.3 < keywords / len(events) < 0.7 and {e.label for e in events} == {"yes", "no", "_unknown_"}
    again, same = build_stream(x, y, LABELS, noise, minutes=3, seed=4)
    other, moved = build_stream(x, y, LABELS, noise, minutes=3, seed=5)
    assert np.array_equal(audio, again) and events == same and moved != events
    quiet = audio[int(0.92 * len(audio)):]
    assert 0 < np.sqrt(np.mean(quiet ** 2)) < 0.2  # noise, at a level of its own


def test_each_word_of_a_built_stream_says_how_far_above_the_noise_it_was_laid():
    x, y = _clips()
    audio, events = build_stream(x, y, LABELS, torch.randn(16000 * 20) * 0.05, minutes=2, seed=1)
    clip = x[0].float().numpy() / 32768
    level = float(speech_rms(torch.from_numpy(clip)[None])[0])
    misses = []
    for e in events:
        at = round(e.start * 16000) - 6400  # (the burst starts 0.4 s into its clip)
        window = audio[at:at + 16000].astype(np.float64)
        gain = window @ clip / (clip @ clip)  # the tone's share of the window; the noise is not a tone
        noise = np.sqrt(np.mean((window - gain * clip) ** 2))
        misses.append(abs(e.snr_db - 20 * np.log10(gain * level / noise)))
    assert max(misses) < 1.0 and np.mean(misses) < 0.25  # (the estimate itself is off by a little noise)
    assert min(e.snr_db for e in events) < 5 and max(e.snr_db for e in events) > 15


def test_truth_files_round_trip_and_bad_ones_are_refused(tmp_path):
    events = [Event("yes", 1.0, 1.4), Event("_unknown_", 3.0, 3.5, "bed"), Event("no", 5.0, 5.3, snr_db=7.5)]
    write_truth(events, tmp_path / "t.json")
    assert read_truth(tmp_path / "t.json") == events
    for bad, message in (("not json", "cannot read"), ('{"label": "yes"}', "JSON list"),
                         ('[{"label": "yes", "start": 2}]', "item 0"), ('[{"label": "yes", "start": 2, "end": 1}]',
                                                                        "ends before")):
        (tmp_path / "bad.json").write_text(bad)
        with pytest.raises(UserError, match=message):
            read_truth(tmp_path / "bad.json")


def test_the_scorer_counts_found_keywords_and_every_other_detection_as_a_false_accept():
    events = [Event("yes", 10.0, 10.5), Event("no", 20.0, 20.4), Event("_unknown_", 30.0, 30.5), Event("yes", 40, 40.5)]
    detections = [
        Detection(10.3, "yes", 0.9),  # found
        Detection(11.2, "yes", 0.9),  # the same word again: a false accept
        Detection(20.2, "yes", 0.9),  # the wrong word for "no": a false accept, and "no" is missed
        Detection(30.2, "no", 0.9),  # another word taken for a keyword
        Detection(55.0, "yes", 0.9),  # noise
        Detection(39.8, "yes", 0.9),  # within 0.25 s before the word: found
    ]
    result = score(detections, events, hours=0.5)
    assert (result["found"], result["keywords"], result["false_accepts"]) == (2, 3, 4)
    assert result["recall"] == pytest.approx(2 / 3) and result["fa_per_hour"] == pytest.approx(8.0)
    assert result["false_by_kind"] == {"wrong": 1, "other": 1, "noise": 1, "repeat": 1}
    late = score([Detection(41.6, "yes", 0.9)], events[3:], hours=1.0)  # more than 1 s after the end
    assert late["found"] == 0 and late["false_accepts"] == 1
    assert "recall_by_snr" not in result  # the truth does not say how loud the words were


def test_the_scorer_gives_recall_for_each_band_of_signal_to_noise_ratio():
    events = [Event("yes", 10.0, 10.5, snr_db=2.0), Event("no", 20.0, 20.4, snr_db=-1.0),
              Event("yes", 30.0, 30.5, snr_db=12.0), Event("no", 40.0, 40.4, snr_db=19.0),
              Event("_unknown_", 50.0, 50.5, snr_db=1.0)]
    detections = [Detection(10.3, "yes", 0.9), Detection(30.2, "yes", 0.9), Detection(40.2, "no", 0.9)]
    result = score(detections, events, hours=1.0)
    assert result["recall_by_snr"] == {"<5 dB": [1, 2], "5-10 dB": [0, 0], "10-15 dB": [1, 1], "15+ dB": [1, 1]}
    assert [snr_band(v) for v in (-3.0, 0.0, 4.99, 5.0, 14.9, 15.0, 40.0)] == [
        "<5 dB", "<5 dB", "<5 dB", "5-10 dB", "10-15 dB", "15+ dB", "15+ dB"]


def test_evaluate_stream_on_a_built_recording_and_on_the_same_recording_with_its_truth(trained_run, small_corpus,
                                                                                       tmp_path):
    model = trained_run / "model.pt"
    r = kws("evaluate", "--model", model, "--dataset", small_corpus, "--stream", "--minutes", "2", "--json",
            "-o", tmp_path / "curve.png")
    assert r.returncode == 0, r.stderr
    built = json.loads(r.stdout)
    assert built["minutes"] == 2 and built["keywords"] > 5 and len(built["curve"]) > 20
    from kws.checkpoint import load_model
    from kws.evaluate import _clips_for_stream

    net, meta = load_model(model)
    assert set(built["at_rates"]) == {"0.5", "1", "2", "5"}
    assert built["at_threshold"]["threshold"] == meta["calibration"]["threshold"]  # the one listen uses
    recalls = [p["recall"] for p in sorted(built["curve"], key=lambda p: p["threshold"])]
    assert recalls == sorted(recalls, reverse=True) and recalls[0] > 0.5  # a higher threshold never finds more
    bands = built["at_threshold"]["recall_by_snr"]
    assert sum(n for _, n in bands.values()) == built["keywords"]
    assert sum(found for found, _ in bands.values()) == built["at_threshold"]["found"]
    assert (tmp_path / "curve.png").read_bytes()[:4] == b"\x89PNG"
    # The same recording, written out with its truth, through --recording/--truth.
    x, y, noise, _ = _clips_for_stream(net, meta, str(small_corpus), tmp_path, "test")
    audio, events = build_stream(x, y, net.labels, noise, minutes=2, seed=0)
    sf.write(tmp_path / "rec.wav", audio, 16000, subtype="FLOAT")
    write_truth(events, tmp_path / "rec.json")
    r = kws("evaluate", "--model", model, "--recording", tmp_path / "rec.wav", "--truth", tmp_path / "rec.json",
            "--json", "--target-fa-per-hour", "30")
    assert r.returncode == 0, r.stderr
    given = json.loads(r.stdout)
    assert given["curve"] == built["curve"] and "30" in given["at_rates"]
    text = kws("evaluate", "--model", model, "--recording", tmp_path / "rec.wav", "--truth", tmp_path / "rec.json")
    assert "false accepts/hour" in text.stdout and "recall" in text.stdout and "above the noise" in text.stdout


def test_a_bad_truth_file_or_a_lone_recording_is_one_line_and_exit_2(trained_run, tmp_path):
    sf.write(tmp_path / "rec.wav", np.zeros(32000), 16000)
    (tmp_path / "truth.json").write_text('[{"label": "yes"}]')
    for args in (["--recording", tmp_path / "rec.wav", "--truth", tmp_path / "truth.json"],
                 ["--recording", tmp_path / "rec.wav"], ["--recording", tmp_path / "none.wav", "--truth",
                                                          tmp_path / "truth.json"]):
        r = kws("evaluate", "--model", trained_run / "model.pt", *args)
        lines = r.stderr.strip().splitlines()
        assert r.returncode == 2 and len(lines) == 1 and lines[0].startswith("kws: error:"), r.stderr
