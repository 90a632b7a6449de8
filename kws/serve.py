"""`kws serve`: the streaming engine behind a local web page, with the image the network reads.

The browser records at its own rate and sends float32 PCM over a WebSocket; here it is resampled
to 16 kHz and fed to a `StreamingDetector` of its own per connection, the same engine and
threshold as `kws listen`. After each chunk the page gets back the log-mel image of the last
second (the model's own frontend, as the net sees it), the top words, the input level and any
detections. `POST /api/classify` answers what `kws classify --json` prints for a file.

Everything the page needs is in `kws/web/`, served from here: it works with no internet.
"""

# No `from __future__ import annotations`: FastAPI reads the endpoints' annotations, and those
# types are imported inside `create_app` (the web stack is an optional extra).
import asyncio
import base64
import json
import socket
import tempfile
from pathlib import Path

import numpy as np
import torch

from .audio import SAMPLE_RATE
from .errors import UserError
from .infer import classify_file
from .model import Classifier
from .stream import DetectorConfig, StreamingDetector

WEB = Path(__file__).parent / "web"
MAX_UPLOAD_MB = 10.0
RATES = (8000, 192000)  # sample rates a client may announce
MAX_CHUNK_SECONDS = 2.0  # one binary message holds at most this much audio
TOP = 5  # words shown as bars


def require_web() -> None:
    """One line instead of an ImportError when the optional web stack is not installed."""
    try:
        import fastapi  # noqa: F401
        import uvicorn  # noqa: F401
        import websockets  # noqa: F401
    except ImportError as e:
        raise UserError(f"kws serve needs the web extra ({e.name} is missing): pip install 'kws[web]'") from None


def model_info(model: Classifier, meta: dict, config: DetectorConfig, using: str, name: str) -> dict:
    recipe = meta.get("train_args", {}).get("recipe")
    return {"model": name, "labels": model.labels, "threshold": config.threshold, "threshold_reason": using,
            "recipe": recipe, "calibration": {k: v for k, v in (meta.get("calibration") or {}).items() if k != "curve"},
            "sample_rate": SAMPLE_RATE, "image": list(model.frontend.image_shape)}


def classify_upload(model: Classifier, body: bytes, name: str) -> list[dict]:
    """What `kws classify --json` prints for one file; a UserError names the upload, not a temp file."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "upload"
        path.write_bytes(body)
        try:
            result = classify_file(model, path)
        except UserError as e:
            raise UserError(str(e).replace(str(path), name)) from None
    result.file = name
    return [result.as_json(3)]


class Session:
    """One client's stream: resampler, detector, and what the page is sent after each chunk."""

    def __init__(self, model: Classifier, config: DetectorConfig, rate: int) -> None:
        import soxr

        self.detector = StreamingDetector(model, config)
        self.resampler = soxr.ResampleStream(rate, SAMPLE_RATE, 1, dtype="float32") if rate != SAMPLE_RATE else None
        self.rate = rate

    def feed(self, samples: np.ndarray) -> dict:
        level = float(np.sqrt(np.mean(samples ** 2))) if len(samples) else 0.0
        if self.resampler is not None:
            samples = self.resampler.resample_chunk(samples)
        scored = self.detector.samples - self.detector.pending
        detections = self.detector.feed(samples)
        fresh = self.detector.samples - self.detector.pending != scored  # a hop was scored: a new picture
        return {"type": "hop", "time": round(self.detector.samples / SAMPLE_RATE, 3),
                "level_db": round(20 * float(np.log10(level + 1e-9)), 1),
                "detections": [d.as_json() for d in detections], **(self.picture() if fresh else {})}

    def picture(self) -> dict:
        """The last second as the network reads it, as bytes (one per pixel, low band first), and the
        top words: sent only when the detector scored a hop, so the frontend runs once more per hop,
        not once more per chunk."""
        model = self.detector.model
        with torch.no_grad():
            image = model.frontend(torch.from_numpy(self.detector.last_second.copy()).unsqueeze(0))[0, 0]
        low, high = float(image.min()), float(image.max())
        pixels = ((image - low) / max(high - low, 1e-6) * 255).round().to(torch.uint8).numpy()
        top = []
        if self.detector.latest is not None:
            p, i = self.detector.latest.topk(min(TOP, len(model.labels)))
            top = [{"label": model.labels[int(j)], "probability": round(float(q), 4)} for q, j in zip(p, i)]
        return {"image": {"height": pixels.shape[0], "width": pixels.shape[1],
                          "pixels": base64.b64encode(pixels.tobytes()).decode()}, "top": top}


def parse_start(text: str) -> int:
    """The client's first message: {"sample_rate": R}."""
    try:
        rate = json.loads(text)["sample_rate"]
    except (ValueError, TypeError, KeyError):
        raise UserError('the first message must be JSON {"sample_rate": R}') from None
    if not isinstance(rate, (int, float)) or not RATES[0] <= rate <= RATES[1]:
        raise UserError(f"sample_rate must be a number from {RATES[0]} to {RATES[1]}")
    return int(rate)


def parse_end(text: str) -> None:
    try:
        if json.loads(text).get("end") is True:
            return
    except (ValueError, AttributeError):
        pass
    raise UserError('after the first message, send audio as binary float32, or JSON {"end": true}')


def parse_chunk(data: bytes, rate: int) -> np.ndarray:
    if len(data) % 4:
        raise UserError("audio messages are float32 samples: the length must be a multiple of 4 bytes")
    if len(data) > MAX_CHUNK_SECONDS * rate * 4:
        raise UserError(f"an audio message holds at most {MAX_CHUNK_SECONDS:g} s of audio")
    samples = np.frombuffer(data, dtype="<f4").astype(np.float32)
    if not np.isfinite(samples).all():
        raise UserError("the audio holds NaN or infinite samples")
    return np.clip(samples, -1.0, 1.0)


def create_app(model: Classifier, meta: dict, config: DetectorConfig, using: str, name: str,
               max_upload_mb: float = MAX_UPLOAD_MB):
    from fastapi import FastAPI, Request, WebSocket, WebSocketDisconnect
    from fastapi.responses import FileResponse, JSONResponse
    from fastapi.staticfiles import StaticFiles

    app = FastAPI(title="kws", docs_url=None, redoc_url=None)
    app.mount("/static", StaticFiles(directory=WEB), name="static")
    info = model_info(model, meta, config, using, name)
    limit = int(max_upload_mb * 1024 * 1024)

    def error(status: int, message: str) -> JSONResponse:
        return JSONResponse({"error": message}, status_code=status)

    @app.get("/")
    def index() -> FileResponse:
        return FileResponse(WEB / "index.html")

    @app.get("/api/model")
    def model_endpoint() -> dict:
        return info

    @app.post("/api/classify")
    async def classify(request: Request, name: str = "upload.wav"):
        too_big = f"the upload is larger than the limit of {max_upload_mb:g} MB"
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            return error(413, too_big)
        body = bytearray()
        async for part in request.stream():
            body += part
            if len(body) > limit:
                return error(413, too_big)
        if not body:
            return error(400, "empty upload: send a WAV file as the request body")
        try:
            return await asyncio.to_thread(classify_upload, model, bytes(body), name)
        except UserError as e:
            return error(400, str(e))

    @app.websocket("/ws")
    async def stream(ws: WebSocket) -> None:
        await ws.accept()
        try:
            session = Session(model, config, parse_start(await ws.receive_text()))
            await ws.send_json({"type": "ready", **info})
            while True:
                message = await ws.receive()
                if message["type"] == "websocket.disconnect":
                    return
                if message.get("text") is not None:  # {"end": true}: all was fed; say goodbye
                    parse_end(message["text"])
                    await ws.send_json({"type": "end", "time": round(session.detector.samples / SAMPLE_RATE, 3)})
                    await ws.close()
                    return
                samples = parse_chunk(message.get("bytes") or b"", session.rate)
                await ws.send_json(await asyncio.to_thread(session.feed, samples))
        except UserError as e:
            await ws.send_json({"type": "error", "message": str(e)})
            await ws.close(code=1003)
        except (WebSocketDisconnect, RuntimeError):
            return  # the client went away mid-stream: nothing to answer

    return app


def check_port(host: str, port: int) -> None:
    """A port in use, or an address this machine does not have, is one line before uvicorn starts."""
    try:
        with socket.create_server((host, port)):
            pass
    except OSError as e:
        raise UserError(f"cannot listen on {host}:{port} ({e.strerror or e}); pick another --port or --host") from None


def serve(app, host: str, port: int) -> None:
    import uvicorn

    uvicorn.run(app, host=host, port=port, log_level="warning")
