"""The microphone: sounddevice (PortAudio) in, the streaming detector out.

Opens the input at 16 kHz when the device allows it, else at the device's own rate with a
streaming resampler in between. Every failure a user can meet (no PortAudio, no input device, a
device that refuses) is turned into one clear line.
"""

from __future__ import annotations

import queue
import signal
import threading
import time
from typing import Callable

import numpy as np

from .audio import SAMPLE_RATE
from .errors import UserError


def sounddevice():
    try:
        import sounddevice as sd
    except OSError:
        raise UserError("the PortAudio library is missing: install it (Debian/Ubuntu: apt-get install libportaudio2; "
                        "macOS: brew install portaudio)") from None
    return sd


def input_devices() -> list[tuple[int, str, int, float]]:
    """(index, name, input channels, default rate) for every device that can record."""
    sd = sounddevice()
    return [(i, d["name"], d["max_input_channels"], d["default_samplerate"])
            for i, d in enumerate(sd.query_devices()) if d["max_input_channels"] > 0]


def _device_list() -> str:
    found = input_devices()
    return "; ".join(f"{i}: {name}" for i, name, _, _ in found) or "none"


def resolve_device(device: str | None) -> int | str | None:
    if device is None:
        if not input_devices():
            raise UserError("no audio input device found (is a microphone connected?)")
        return None
    if device.isdigit():
        index = int(device)
        if index not in [i for i, *_ in input_devices()]:
            raise UserError(f"--device {device}: no such input device (inputs: {_device_list()})")
        return index
    matches = [i for i, name, *_ in input_devices() if device.lower() in name.lower()]
    if not matches:
        raise UserError(f"--device {device!r}: no input device by that name (inputs: {_device_list()})")
    return matches[0]


def stream_microphone(device: int | str | None, on_audio: Callable[[np.ndarray], bool],
                      duration: float | None = None, block_ms: float = 50.0) -> float:
    """Call `on_audio(chunk)` with 16 kHz float32 mono chunks until it returns False, the duration
    passes or Ctrl-C; returns the seconds of audio processed."""
    sd = sounddevice()
    chunks: queue.Queue[np.ndarray] = queue.Queue()

    def callback(indata, frames, _time, _status) -> None:
        chunks.put(indata[:, 0].astype(np.float32) / 32768.0)

    rate = SAMPLE_RATE
    try:
        sd.check_input_settings(device=device, samplerate=SAMPLE_RATE, channels=1, dtype="int16")
    except Exception:
        rate = int(sd.query_devices(device, "input")["default_samplerate"])
    resampler = None
    if rate != SAMPLE_RATE:
        import soxr

        resampler = soxr.ResampleStream(rate, SAMPLE_RATE, 1, dtype="float32")
    try:
        stream = sd.InputStream(device=device, samplerate=rate, channels=1, dtype="int16",
                                blocksize=int(rate * block_ms / 1000), callback=callback)
    except Exception as e:
        raise UserError(f"cannot open the input device ({str(e).splitlines()[0]}); inputs: {_device_list()}") from None
    seen = 0
    # Ctrl-C sets a flag that the loop checks, instead of raising KeyboardInterrupt wherever the main
    # thread happens to be, and the stream is aborted rather than stopped: interrupted the old way,
    # a listener on a loaded machine once never exited while its device went on delivering audio
    # (the exact cause was not pinned down).
    stop = threading.Event()
    handled = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGINT, lambda _signum, _frame: stop.set()) if handled else None
    try:
        stream.start()
        start = time.monotonic()
        while not stop.is_set() and (duration is None or seen < duration * SAMPLE_RATE):
            try:
                chunk = chunks.get(timeout=0.25)
            except queue.Empty:
                if time.monotonic() - start > 5 and seen == 0:
                    raise UserError("the input device delivers no audio") from None
                continue
            if resampler is not None:
                chunk = resampler.resample_chunk(chunk)
            if duration is not None:
                chunk = chunk[: int(duration * SAMPLE_RATE) - seen]
            seen += len(chunk)
            if not on_audio(chunk):
                break
    finally:
        stream.abort()  # drop what is still buffered rather than wait for it (stop can wait on the device)
        stream.close()
        if handled:
            signal.signal(signal.SIGINT, previous)
    return seen / SAMPLE_RATE
