"""Offline speech from the libespeak-ng bundled in the `espeakng-loader` wheel, through ctypes.

No system install is needed: the wheel carries the library and its voice data. The library is
a process-wide singleton with global state, so one `Speaker` per process is enough.

espeak-ng reads voice variants from files in its data folder, which may be read-only inside
site-packages. So the library is pointed at a private mirror of that folder (links, or a copy where
links are not allowed) whose variant folder we can write: a `Voice` with a `timbre` becomes a new
variant file there, derived from its bundled variant.
"""

from __future__ import annotations

import atexit
import ctypes
import functools
import hashlib
import re
import shutil
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

# Values from espeak-ng's speak_lib.h.
_AUDIO_OUTPUT_SYNCHRONOUS = 0x02
_espeakCHARS_AUTO = 0
_espeakRATE, _espeakVOLUME, _espeakPITCH, _espeakRANGE = 1, 2, 3, 4
_espeakINITIALIZE_DONT_EXIT = 0x8000
_espeakPHONEMES_IPA = 0x02

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
    # Variant-file lines that reshape the bundled variant (see `Timbre`); "" keeps it as shipped.
    timbre: str = ""

    @property
    def name(self) -> str:
        variant = _derived_name(self.variant, self.timbre) if self.timbre else self.variant
        return f"{self.dialect}+{variant}" if variant else self.dialect


@dataclass(frozen=True)
class Timbre:
    """A vocal tract and a voice source that espeak-ng's bundled variants do not have.

    People differ from each other, and from a formant synthesiser, in where their formants sit (a
    longer tract lowers them all, an accent moves each vowel's own), how broad the formants are,
    how much breath is mixed into the voicing and how steady the pitch is. espeak-ng's variant
    files set exactly these, so a drawn `Timbre` is a new speaker rather than an augmentation.
    """

    formant_scale: tuple[float, ...] = (1.0,) * 9  # frequency factor for formants 0..8
    width_scale: float = 1.0  # bandwidth factor for every formant
    breath: tuple[int, ...] = ()  # aspiration noise per formant 1..8; () leaves the variant's
    flutter: int | None = None  # pitch wobble
    roughness: int | None = None
    voicing: int | None = None  # voiced-sound level, percent
    consonants: tuple[int, int] | None = None  # unvoiced and voiced consonant levels, percent
    klatt: int | None = None  # 1..4 swaps in one of the Klatt voice sources

    def lines(self, variant: str) -> str:
        """Variant-file lines that apply this timbre on top of the bundled `variant`."""
        if not takes_timbre(variant):
            raise ValueError(f"the espeak-ng variant {variant!r} is an effect voice that cannot take a timbre")
        base = _variant_formants(variant)
        out = []
        for k, scale in enumerate(self.formant_scale):
            given = base.get(k, [])
            freq, height, width, *offset = given + [100, 100, 100][len(given):]
            values = [k, round(freq * scale), height, round(width * self.width_scale), *offset]
            out.append("formant " + " ".join(str(int(v)) for v in values))
        if self.breath:
            out.append("breath " + " ".join(str(b) for b in self.breath))
        for key in ("flutter", "roughness", "voicing", "klatt"):
            if getattr(self, key) is not None:
                out.append(f"{key} {getattr(self, key)}")
        if self.consonants is not None:
            out.append("consonants {} {}".format(*self.consonants))
        return "\n".join(out) + "\n"


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
            if voice.timbre:
                _write_derived(voice.variant, voice.timbre)
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

    def phonemes(self, text: str, dialect: str = "en-us") -> str:
        """The IPA espeak-ng reads `text` as, clause by clause: what neural voices trained on its
        phonemes (Piper's) take as input. Punctuation is dropped."""
        lib = Speaker._lib
        with Speaker._lock:
            if lib.espeak_SetVoiceByName(dialect.encode()) != 0:
                raise EspeakError(f"espeak-ng has no voice {dialect!r}")
            cursor, clauses = ctypes.c_char_p(text.encode()), []
            while cursor.value:
                clause = lib.espeak_TextToPhonemes(ctypes.byref(cursor), _espeakCHARS_AUTO, _espeakPHONEMES_IPA)
                if clause is None:
                    break
                clauses.append(clause.decode())
        return " ".join(c for c in clauses if c)


def list_variants() -> list[str]:
    """Names of the voice variants (`+f3`, `+klatt2`, …) bundled with the library."""
    root = _bundled_data() / "voices" / "!v"
    return sorted(p.name for p in root.iterdir() if p.is_file() and " " not in p.name)


def _bundled_data() -> Path:
    import espeakng_loader

    return Path(espeakng_loader.get_data_path())


_FORMANT = re.compile(r"^\s*formant\s+(\d+)((?:\s+-?\d+)+)", re.MULTILINE)


@functools.lru_cache(maxsize=None)
def _variant_text(variant: str) -> str:
    """A bundled variant file, read once per process ("" is espeak-ng's default voice)."""
    return (_bundled_data() / "voices" / "!v" / variant).read_text(errors="replace") if variant \
        else "language variant\n"


def _variant_formants(variant: str) -> dict[int, list[int]]:
    """The `formant N freq height width [offset]` lines of a bundled variant, by N."""
    return {int(m[1]): [int(v) for v in m[2].split()] for m in _FORMANT.finditer(_variant_text(variant))}


def takes_timbre(variant: str) -> bool:
    """Whether a timbre can reshape this variant. Effect voices that put a formant far off (Lee's
    at 9% and 290%) crash espeak-ng now and then once reshaped, so they are spoken as shipped."""
    return all(50 <= values[0] <= 200 for values in _variant_formants(variant).values())


def _derived_name(variant: str, timbre: str) -> str:
    return "kws-" + hashlib.sha1(f"{variant}\n{timbre}".encode()).hexdigest()[:12]


_mirror: Path | None = None


def _write_derived(variant: str, timbre: str) -> None:
    """The bundled variant's file with the timbre's lines after it (later lines win in espeak-ng)."""
    path = _mirror / "voices" / "!v" / _derived_name(variant, timbre)
    if not path.exists():
        path.write_text(_variant_text(variant).rstrip("\n") + "\n" + timbre)


def _make_mirror() -> Path:
    """A data folder espeak-ng can read and we can add variants to; removed when the process ends."""
    src = _bundled_data()
    top = Path(tempfile.mkdtemp(prefix="kws-espeak-"))
    atexit.register(shutil.rmtree, top, ignore_errors=True)
    dst = top / "espeak-ng-data"
    try:
        _link_tree(src, dst)
    except OSError:  # no symlinks here (Windows without developer mode): copy the 19 MB instead
        shutil.rmtree(dst, ignore_errors=True)
        shutil.copytree(src, dst)
    return dst


def _link_tree(src: Path, dst: Path) -> None:
    """Links for everything but the folders on the way to `voices/!v`, which are real folders."""
    dst.mkdir()
    for entry in src.iterdir():
        if entry.name == "voices" or (src.name == "voices" and entry.name == "!v"):
            _link_tree(entry, dst / entry.name)
        else:
            (dst / entry.name).symlink_to(entry)


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
    lib.espeak_TextToPhonemes.restype = ctypes.c_char_p
    lib.espeak_TextToPhonemes.argtypes = [ctypes.POINTER(ctypes.c_char_p), ctypes.c_int, ctypes.c_int]
    lib.espeak_Synth.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int,
                                 ctypes.c_uint, ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p]
    return lib


def _initialise(lib: ctypes.CDLL) -> int:
    global _mirror
    _mirror = _make_mirror()
    rate = lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 0, str(_mirror).encode(), _espeakINITIALIZE_DONT_EXIT)
    if rate <= 0:
        raise EspeakError("could not initialise espeak-ng from the espeakng-loader data")
    return rate
