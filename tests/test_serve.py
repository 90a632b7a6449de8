"""`kws serve`: the HTTP API, the WebSocket stream against `kws detect`, and a real browser."""

import json
import os
import shutil
import socket
import subprocess
import sys
import time

import numpy as np
import pytest
import soundfile as sf
import soxr

from kws.checkpoint import load_model
from kws.stream import DetectorConfig, detect_array

from .conftest import WORDS, kws, shadowed

fastapi = pytest.importorskip("fastapi", reason="the web extra (pip install 'kws[web]') is not installed")
from fastapi.testclient import TestClient  # noqa: E402

from kws.serve import create_app  # noqa: E402


@pytest.fixture(scope="module")
def served(trained_run):
    model, meta = load_model(trained_run / "model.pt")
    config = DetectorConfig(threshold=0.7)
    app = create_app(model, meta, config, "threshold 0.7 (as asked)", "model.pt", max_upload_mb=0.05)
    with TestClient(app) as client:
        yield client, model, config


def _wav(tmp_path, audio, rate=16000, name="clip.wav"):
    sf.write(tmp_path / name, audio, rate, subtype="PCM_16")
    return tmp_path / name


def test_model_and_classify_answer_what_the_cli_prints(served, trained_run, recording, tmp_path):
    client, model, _ = served
    info = client.get("/api/model").json()
    assert info["labels"] == model.labels and info["threshold"] == 0.7
    assert info["recipe"]["name"] == "speech-commands"
    path = _wav(tmp_path, recording[0][16000:32000])
    got = client.post("/api/classify?name=clip.wav", content=path.read_bytes())
    assert got.status_code == 200
    printed = json.loads(kws("classify", "--json", "--model", trained_run / "model.pt", path).stdout)
    printed[0]["file"] = "clip.wav"
    assert got.json() == printed


def test_bad_uploads_get_a_clear_error_and_the_server_keeps_serving(served, recording, tmp_path):
    client, _, _ = served
    garbage = client.post("/api/classify", content=b"this is not audio at all" * 10)
    assert garbage.status_code == 400 and "not a readable audio file" in garbage.json()["error"]
    empty = client.post("/api/classify", content=b"")
    assert empty.status_code == 400 and "empty upload" in empty.json()["error"]
    big = client.post("/api/classify", content=_wav(tmp_path, recording[0][:48000]).read_bytes())  # 96 kB > 50 kB
    assert big.status_code == 413 and "0.05 MB" in big.json()["error"]
    fine = client.post("/api/classify", content=_wav(tmp_path, recording[0][:16000]).read_bytes())
    assert fine.status_code == 200 and fine.json()[0]["label"] in client.get("/api/model").json()["labels"]


def _stream(client, audio, rate, chunk_seconds=0.05):
    detections, hops = [], 0
    with client.websocket_connect("/ws") as ws:
        ws.send_text(json.dumps({"sample_rate": rate}))
        assert ws.receive_json()["type"] == "ready"
        step = int(rate * chunk_seconds)
        pictured, scored = 0, 0
        for start in range(0, len(audio), step):
            ws.send_bytes(audio[start:start + step].astype("<f4").tobytes())
            message = ws.receive_json()
            assert message["type"] == "hop"
            now = int(message["time"] * 16000) // 1600  # hops of 100 ms scored so far
            if now > scored:  # a new hop: its picture comes with it, else none
                assert message["image"]["height"] > 0 and message["image"]["width"] > 0
                pictured, last = pictured + 1, message
            else:
                assert "image" not in message
            scored = now
            detections += message["detections"]
            hops += 1
        assert pictured >= hops // 2 - 1
        assert len(last["top"]) == 5 and last["top"][0]["probability"] >= last["top"][1]["probability"]
        ws.send_text(json.dumps({"end": True}))
        assert ws.receive_json()["type"] == "end"
    return detections, hops


def test_the_socket_gives_the_detections_of_kws_detect(served, recording):
    client, model, config = served
    audio = recording[0]
    expected = [d.as_json() for d in detect_array(model, audio, config)]
    assert [d["label"] for d in expected] == WORDS  # the recording is heard; now the socket must agree
    got, hops = _stream(client, audio, 16000)
    assert got == expected and hops > 100
    # At the browser's usual 48 kHz the server resamples: the same words at about the same times.
    got48, _ = _stream(client, soxr.resample(audio, 16000, 48000).astype(np.float32), 48000)
    assert [d["label"] for d in got48] == WORDS
    assert all(abs(a["time"] - b["time"]) <= 0.15 for a, b in zip(got48, expected))


@pytest.mark.parametrize("first, then, message", [
    ("hello", None, "first message must be JSON"),
    (json.dumps({"sample_rate": 10}), None, "sample_rate must be"),
    (json.dumps({"sample_rate": 16000}), b"\x00\x01\x02", "multiple of 4"),
    (json.dumps({"sample_rate": 16000}), np.array([np.nan], "<f4").tobytes(), "NaN"),
    (json.dumps({"sample_rate": 16000}), "stop please", "binary float32"),
])
def test_a_client_sending_garbage_is_told_and_the_others_go_on(served, recording, first, then, message):
    client, _, _ = served
    with client.websocket_connect("/ws") as bad, client.websocket_connect("/ws") as good:
        good.send_text(json.dumps({"sample_rate": 16000}))
        assert good.receive_json()["type"] == "ready"
        bad.send_text(first)
        if then is not None:
            assert bad.receive_json()["type"] == "ready"
            bad.send_bytes(then) if isinstance(then, bytes) else bad.send_text(then)
        answer = bad.receive_json()
        assert answer["type"] == "error" and message in answer["message"]
        good.send_bytes(recording[0][:8000].astype("<f4").tobytes())
        assert good.receive_json()["type"] == "hop"


def test_a_client_leaving_mid_stream_leaves_the_server_serving(served, recording):
    client, _, _ = served
    with client.websocket_connect("/ws") as ws:
        ws.send_text(json.dumps({"sample_rate": 16000}))
        ws.receive_json()
        ws.send_bytes(recording[0][:800].astype("<f4").tobytes())
    assert client.get("/api/model").status_code == 200
    got, _ = _stream(client, recording[0][:16000], 16000)
    assert got == []


def test_serve_errors_are_one_line(trained_run, tmp_path):
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen()
    port = busy.getsockname()[1]
    r = kws("serve", "--model", trained_run / "model.pt", "--port", str(port))
    busy.close()
    assert r.returncode == 2 and "cannot listen on 127.0.0.1" in r.stderr and "Traceback" not in r.stderr
    onnx = tmp_path / "model.onnx"
    onnx.write_bytes(b"")
    r = kws("serve", "--model", onnx)
    assert r.returncode == 2 and "needs a model.pt" in r.stderr


def test_without_the_web_extra_serve_says_how_to_get_it(trained_run, tmp_path):
    (tmp_path / "fastapi.py").write_text("raise ImportError('no fastapi here', name='fastapi')\n")
    r = kws("serve", "--model", trained_run / "model.pt", env=shadowed(tmp_path))
    assert r.returncode == 2 and "pip install 'kws[web]'" in r.stderr and "Traceback" not in r.stderr, r.stderr


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(CHROMIUM is None, reason="no chromium: apt-get install chromium (.ci/run installs it)")
def test_a_real_browser_hears_the_words_and_shows_the_image(trained_run, recording, tmp_path):
    playwright = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    audio = recording[0]
    words = tmp_path / "words.wav"  # the fake microphone; chromium plays it in a loop
    sf.write(words, (np.clip(audio, -1, 1) * 32767).astype(np.int16), 16000, subtype="PCM_16")
    port = _free_port()
    server = subprocess.Popen([sys.executable, "-m", "kws", "serve", "--model", str(trained_run / "model.pt"),
                               "--port", str(port), "--threshold", "0.7"], stderr=subprocess.PIPE, text=True,
                              env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        assert f"open http://127.0.0.1:{port}/" in server.stderr.readline()
        with playwright.sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=[
                "--no-sandbox", "--disable-gpu", "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
                f"--use-file-for-fake-audio-capture={words}", "--autoplay-policy=no-user-gesture-required",
                "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"])
            page = browser.new_page()
            for _ in range(50):  # uvicorn binds a moment after the line is printed
                try:
                    page.goto(f"http://127.0.0.1:{port}/")
                    break
                except playwright.Error:
                    time.sleep(0.2)
            page.click("#start")
            page.wait_for_selector("#detections li[data-label='stop']", timeout=60_000)
            heard = page.eval_on_selector_all("#detections li", "items => items.map(i => i.dataset.label)")
            assert set(heard) <= set(WORDS) and {"yes", "stop"} <= set(heard), heard
            assert "threshold 0.7" in page.inner_text("#model")
            shot = tmp_path / "page.png"
            page.locator("#spectrogram").screenshot(path=str(shot))
            browser.close()
        from PIL import Image

        pixels = np.asarray(Image.open(shot).convert("L"), dtype=np.float32)
        assert pixels.std() > 10 and pixels.max() > 100  # an image was drawn, not a black box
    finally:
        server.terminate()
        server.wait(timeout=10)
