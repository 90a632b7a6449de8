"""Property tests: whatever length, rate, channel count or sample type, the loader and the frontend
give the expected shape and finite values, and never crash."""

import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kws.audio import SAMPLE_RATE, load_audio
from kws.features import LogMel, LogMelConfig

SUBTYPES = ["PCM_U8", "PCM_16", "PCM_24", "PCM_32", "FLOAT", "DOUBLE"]
RATES = [4000, 8000, 11025, 16000, 22050, 32000, 44100, 48000, 96000]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(frames=st.integers(1, 30000), rate=st.sampled_from(RATES), channels=st.integers(1, 8),
       subtype=st.sampled_from(SUBTYPES), loudness=st.sampled_from([0.0, 1e-6, 0.3, 1.0]), seed=st.integers(0, 9))
def test_loader_gives_mono_16k_finite_audio(frames, rate, channels, subtype, loudness, seed):
    data = np.random.default_rng(seed).uniform(-1, 1, (frames, channels)) * loudness
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "x.wav"
        sf.write(path, data, rate, subtype=subtype)
        audio = load_audio(path)
    assert audio.dtype == np.float32 and audio.ndim == 1
    expected = frames * SAMPLE_RATE / rate
    assert abs(len(audio) - expected) <= 2, (len(audio), expected)
    # (resampling full-scale noise may overshoot a little: ringing, not a fault)
    assert np.isfinite(audio).all() and np.abs(audio).max(initial=0) <= 3.0


@settings(max_examples=60, deadline=None)
@given(batch=st.integers(1, 3), length=st.integers(1, 40000), kind=st.sampled_from(["float", "int16"]),
       scale=st.sampled_from([0.0, 1e-9, 1e-3, 1.0, 1e3]), norm=st.sampled_from(["utterance", "channel", "none"]),
       seed=st.integers(0, 9))
def test_frontend_gives_the_image_shape_and_finite_values(batch, length, kind, scale, norm, seed):
    frontend = LogMel(LogMelConfig(norm=norm))
    rng = np.random.default_rng(seed)
    wav = rng.standard_normal((batch, max(length, frontend.config.n_fft)))
    if kind == "int16":
        x = torch.from_numpy(np.clip(wav * 3000 * scale, -32768, 32767).astype(np.int16))
    else:
        x = torch.from_numpy((wav * scale).astype(np.float32))
    with torch.no_grad():
        image = frontend(x)
    frames = 1 + (x.shape[1] - frontend.config.n_fft) // frontend.config.hop_length
    assert image.shape == (batch, 1, frontend.config.n_mels, frames)
    assert torch.isfinite(image).all()
    if length == frontend.config.clip_samples:
        assert image.shape[-2:] == frontend.image_shape
