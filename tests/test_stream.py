"""The streaming detector on a long recording with known word positions, and `kws listen` for real."""

import json
import os
import subprocess

import numpy as np
import pytest
import soundfile as sf

from kws.checkpoint import load_model
from kws.stream import DetectorConfig, StreamingDetector, detect_array

from .conftest import WORDS, kws



def _check(detections, truth, noise_from):
    assert [d.label for d in detections] == [w for w, _ in truth], (detections, truth)
    for d, (_, t) in zip(detections, truth):
        assert abs(d.time - t) <= 0.25, (d, t)
    assert all(d.time < noise_from for d in detections)


def test_detector_finds_words_in_order_once_each(trained_run, recording):
    model, _ = load_model(trained_run / "model.pt")
    audio, truth, noise_from = recording
    _check(detect_array(model, audio), truth, noise_from)


def test_ring_buffer_holds_the_last_second_in_order(trained_run):
    model, _ = load_model(trained_run / "model.pt")
    detector = StreamingDetector(model, DetectorConfig())
    ramp = np.arange(40000, dtype=np.float32)
    for start in range(0, len(ramp), 999):
        detector.feed(ramp[start:start + 999])
    assert np.array_equal(detector.last_second, ramp[-16000:])


def test_chunked_feeding_gives_the_same_detections(trained_run, recording):
    model, _ = load_model(trained_run / "model.pt")
    audio, truth, noise_from = recording
    detector = StreamingDetector(model, DetectorConfig())
    found = []
    for start in range(0, len(audio), 777):  # odd chunk sizes, as a sound card delivers them
        found += detector.feed(audio[start:start + 777])
    batched = detect_array(model, audio)
    assert batched, "the fixture model should find at least one word"
    assert [(d.label, round(d.time, 3)) for d in found] == [(d.label, round(d.time, 3)) for d in batched]
    assert len({(d.label, round(d.time)) for d in found}) == len(found)  # no duplicates
    assert all(d.time < noise_from for d in found)


def test_detect_command_prints_json_lines(trained_run, recording, tmp_path):
    audio, truth, _ = recording
    sf.write(tmp_path / "long.wav", audio, 16000)
    r = kws("detect", "--model", trained_run / "model.pt", "--json", "--threshold", "0.7", tmp_path / "long.wav")
    assert r.returncode == 0, r.stderr
    rows = [json.loads(line) for line in r.stdout.splitlines()]
    model, _ = load_model(trained_run / "model.pt")
    expected = detect_array(model, sf.read(tmp_path / "long.wav", dtype="float32")[0])
    assert [(row["label"], row["time"]) for row in rows] == [(d.label, round(d.time, 3)) for d in expected]
    assert rows and set(rows[0]) == {"file", "time", "label", "score"}


def _portaudio() -> bool:
    try:
        import sounddevice  # noqa: F401
    except OSError:
        return False
    return True


needs_portaudio = pytest.mark.skipif(not _portaudio(), reason="PortAudio (libportaudio2) is not installed")


def _alsa_env(tmp_path, raw_file=None) -> dict:
    conf = tmp_path / "asoundrc"
    if raw_file is None:  # a configuration with no capture device at all
        conf.write_text("pcm.!default {\n type plug\n slave.pcm \"nothing\"\n}\n")
    else:
        conf.write_text(
            "pcm.!default {\n"
            "  type file\n"
            "  slave.pcm \"null\"\n"
            "  file \"/dev/null\"\n"
            f"  infile \"{raw_file}\"\n"
            "  format \"raw\"\n"
            "}\n")
    system = "/usr/share/alsa/alsa.conf"
    env = {"ALSA_CONFIG_PATH": f"{system}:{conf}" if os.path.exists(system) else str(conf)}
    return env


@needs_portaudio
def test_listen_through_portaudio_reads_the_words(trained_run, recording, tmp_path):
    audio, truth, _ = recording
    raw = tmp_path / "mic.raw"
    raw.write_bytes((np.clip(audio, -1, 1) * 32767).astype("<i2").tobytes())
    seconds = len(audio) / 16000
    r = kws("listen", "--model", trained_run / "model.pt", "--json", "--threshold", "0.7", "--duration", f"{seconds:.2f}",
            env=_alsa_env(tmp_path, raw), timeout=120)
    assert r.returncode == 0, r.stderr
    rows = [json.loads(line) for line in r.stdout.splitlines()]
    # The audio that went through ALSA and PortAudio gives what the engine finds in the file itself.
    model, _ = load_model(trained_run / "model.pt")
    expected = detect_array(model, (np.clip(audio, -1, 1) * 32767).astype(np.int16) / 32768.0)
    assert expected and [row["label"] for row in rows] == [d.label for d in expected], r.stdout + r.stderr
    for row, d in zip(rows, expected):
        assert abs(row["time"] - d.time) <= 0.25
    assert "listened" in r.stderr
    assert r.stderr.splitlines()[0] == "listening with threshold 0.7 (as asked)"


@needs_portaudio
def test_detect_and_listen_use_the_threshold_calibrated_in_training(trained_run, recording, tmp_path):
    audio, _, _ = recording
    model, meta = load_model(trained_run / "model.pt")
    calibration = meta["calibration"]  # set by `kws train` on a stream of the validation split
    assert calibration["target_fa_per_hour"] == 1.0 and calibration["split"] == "val"
    assert calibration["threshold"] in [p["threshold"] for p in calibration["curve"]]
    within = [p["threshold"] for p in calibration["curve"] if p["fa_per_hour"] <= 1.0]
    # the lowest threshold that meets the target, or the highest of the sweep when none does
    assert calibration["threshold"] == (min(within) if within else max(p["threshold"] for p in calibration["curve"]))
    pcm = (np.clip(audio, -1, 1) * 32767).astype(np.int16)
    sf.write(tmp_path / "long.wav", pcm, 16000, subtype="PCM_16")
    expected = detect_array(model, pcm / 32768.0, DetectorConfig(threshold=calibration["threshold"]))
    r = kws("detect", "--model", trained_run / "model.pt", "--json", tmp_path / "long.wav")
    assert r.returncode == 0, r.stderr
    assert [json.loads(line)["label"] for line in r.stdout.splitlines()] == [d.label for d in expected]
    raw = tmp_path / "mic.raw"
    raw.write_bytes(pcm.astype("<i2").tobytes())
    r = kws("listen", "--model", trained_run / "model.pt", "--json", "--duration", f"{len(audio) / 16000:.2f}",
            env=_alsa_env(tmp_path, raw), timeout=120)
    assert r.returncode == 0, r.stderr
    first = r.stderr.splitlines()[0]
    assert first.startswith(f"listening with threshold {calibration['threshold']:g} (calibrated: recall"), first
    assert calibration["synthetic"] and "in synthetic voices; real speakers are found less often" in first
    assert "a higher --threshold fires less" in first
    assert [json.loads(line)["label"] for line in r.stdout.splitlines()] == [d.label for d in expected]


@needs_portaudio
def test_list_devices_shows_the_capture_device(tmp_path):
    raw = tmp_path / "mic.raw"
    raw.write_bytes(b"\0\0" * 16000)
    r = kws("listen", "--list-devices", env=_alsa_env(tmp_path, raw))
    assert r.returncode == 0, r.stderr
    assert "default" in r.stdout


@needs_portaudio
def test_unknown_device_is_one_clear_line(trained_run, tmp_path):
    raw = tmp_path / "mic.raw"
    raw.write_bytes(b"\0\0" * 16000)
    r = kws("listen", "--model", trained_run / "model.pt", "--device", "no-such-microphone", "--duration", "1",
            env=_alsa_env(tmp_path, raw))
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "no input device by that name" in lines[0] and "Traceback" not in r.stderr


@needs_portaudio
def test_ctrl_c_ends_listening_with_a_summary(trained_run, recording, tmp_path):
    audio, _, _ = recording
    raw = tmp_path / "mic.raw"
    raw.write_bytes((np.clip(audio, -1, 1) * 32767).astype("<i2").tobytes())
    import select
    import sys
    proc = subprocess.Popen([sys.executable, "-m", "kws", "listen", "--model", str(trained_run / "model.pt"), "--json",
                             "--threshold", "0.7"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, **_alsa_env(tmp_path, raw)})
    # Ctrl-C once it is listening: after its first detection (the file plugin delivers the
    # recording faster than real time), not at a fixed delay that a loaded machine may not reach.
    ready, _, _ = select.select([proc.stdout], [], [], 120)
    first = proc.stdout.readline() if ready else ""
    proc.send_signal(2)  # SIGINT, as Ctrl-C sends
    out, err = proc.communicate(timeout=60)
    assert first, f"no detection within 120 s: {err}"
    assert proc.returncode == 0, err
    assert "listened" in err and "Traceback" not in err
    assert all(json.loads(line)["label"] in WORDS for line in (first + out).splitlines())
