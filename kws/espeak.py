"""Offline speech from the libespeak-ng bundled in the `espeakng-loader` wheel, through ctypes.

No system install is needed: the wheel carries the library and its voice data. The library is
a process-wide singleton with global state, so one `Speaker` per process is enough.
"""

from __future__ import annotations

import ctypes
import threading
from dataclasses import dataclass

import numpy as np

# Values from espeak-ng's speak_lib.h.
_AUDIO_OUTPUT_SYNCHRONOUS = 0x02
_espeakCHARS_AUTO = 0
_espeakRATE, _espeakVOLUME, _espeakPITCH, _espeakRANGE = 1, 2, 3, 4
_espeakINITIALIZE_DONT_EXIT = 0x8000

#: The English dialects espeak-ng ships (en-Shaw is a spelling, not an accent).
ENGLISH_DIALECTS = (
    "en-us", "en", "en-gb-x-rp", "en-gb-scotland", "en-gb-x-gbclan",
    "en-gb-x-gbcwmd", "en-029", "en-us-nyc",
)

_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p)


@dataclass(frozen=True)
class Voice:
    """One way of saying a word: accent, voice variant and prosody."""

    dialect: str = "en-us"
    variant: str = ""
    rate: int = 175  # words per minute
    pitch: int = 50  # 0..100
    pitch_range: int = 50  # 0..100, intonation swing

    @property
    def name(self) -> str:
        return f"{self.dialect}+{self.variant}" if self.variant else self.dialect


class EspeakError(RuntimeError):
    pass


class Speaker:
    """Synthesises text to float32 mono samples at `sample_rate` (espeak's own 22,050 Hz)."""

    _lock = threading.Lock()
    _lib: ctypes.CDLL | None = None
    sample_rate: int = 22050

    def __init__(self) -> None:
        with Speaker._lock:
            if Speaker._lib is None:
                Speaker._lib = _load()
                Speaker.sample_rate = _initialise(Speaker._lib)
        self._chunks: list[np.ndarray] = []
        self._callback = _CALLBACK(self._collect)  # kept alive while we may be called back

    def _collect(self, wav, n, _events) -> int:
        if n > 0 and wav:
            self._chunks.append(np.ctypeslib.as_array(wav, shape=(n,)).copy())
        return 0

    def say(self, text: str, voice: Voice) -> np.ndarray:
        lib = Speaker._lib
        with Speaker._lock:
            if lib.espeak_SetVoiceByName(voice.name.encode()) != 0:
                raise EspeakError(f"espeak-ng has no voice {voice.name!r}")
            for param, value in ((_espeakRATE, voice.rate), (_espeakPITCH, voice.pitch),
                                 (_espeakRANGE, voice.pitch_range), (_espeakVOLUME, 100)):
                lib.espeak_SetParameter(param, int(value), 0)
            lib.espeak_SetSynthCallback(self._callback)
            self._chunks = []
            data = text.encode() + b"\0"
            err = lib.espeak_Synth(data, len(data), 0, 0, 0, _espeakCHARS_AUTO, None, None)
            if err != 0:
                raise EspeakError(f"espeak-ng failed to speak {text!r} (error {err})")
            lib.espeak_Synchronize()
            chunks, self._chunks = self._chunks, []
        if not chunks:
            return np.zeros(0, np.float32)
        return (np.concatenate(chunks).astype(np.float32) / 32768.0)


def list_variants() -> list[str]:
    """Names of the voice variants (`+f3`, `+klatt2`, …) bundled with the library."""
    import espeakng_loader
    from pathlib import Path

    root = Path(espeakng_loader.get_data_path()) / "voices" / "!v"
    return sorted(p.name for p in root.iterdir() if p.is_file() and " " not in p.name)


def _load() -> ctypes.CDLL:
    try:
        import espeakng_loader
    except ImportError as e:  # pragma: no cover - it is a hard dependency
        raise EspeakError("the espeakng-loader package is missing: pip install espeakng-loader") from e
    lib = ctypes.CDLL(espeakng_loader.get_library_path())
    lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
    lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
    lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
    lib.espeak_SetSynthCallback.argtypes = [_CALLBACK]
    lib.espeak_Synth.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int,
                                 ctypes.c_uint, ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p]
    return lib


def _initialise(lib: ctypes.CDLL) -> int:
    import espeakng_loader

    path = espeakng_loader.get_data_path().encode()
    rate = lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 0, path, _espeakINITIALIZE_DONT_EXIT)
    if rate <= 0:
        raise EspeakError("could not initialise espeak-ng from the espeakng-loader data")
    return rate
