"""Turning a sound (or a picture) into the image the network reads.

The frontend is an `nn.Module` whose configuration and buffers (window, mel filterbank) travel
inside every checkpoint, so training, `classify`, `listen` and `export` run the very same
preprocessing and can never drift apart.
"""

from __future__ import annotations

import functools
from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch import nn


NORMS = ("utterance", "channel-mean", "channel", "none")  # see `LogMelConfig.norm`


@dataclass
class LogMelConfig:
    sample_rate: int = 16000
    n_fft: int = 512
    win_ms: float = 25.0
    hop_ms: float = 10.0
    n_mels: int = 40
    fmin: float = 20.0
    fmax: float = 8000.0
    floor: float = 1e-10  # absolute power floor, so digital silence stays finite
    dynamic_range_db: float = 80.0  # and a floor this far below the clip's peak: gain-invariant
    # "utterance": zero mean, unit variance over the whole image (level-invariant);
    # "channel": per-mel-band mean and variance over time (also cancels a fixed EQ/microphone);
    # "channel-mean": per-band mean over time, one variance for the whole image (cancels a fixed
    # EQ without lifting a near-silent band's noise to the loudness of speech);
    # "none": the raw log-mel.
    norm: str = "utterance"
    min_spread: float = 1.0  # channel-mean: the least spread (natural-log units, 4.3 dB) it divides by
    clip_samples: int = 16000  # one input window: 1 s
    # Keep only the first `lifter` cepstral coefficients of each frame (0 = keep all): the image
    # keeps its 40 bands but loses the pitch harmonics' fine ripple, leaving the spectral envelope
    # (the formants that make the word), which a synthetic voice and a person share more closely.
    lifter: int = 0
    # Per-channel energy normalisation (Wang et al. 2017) instead of the log: each band is divided
    # by its own slowly smoothed energy, a fixed (not learned) automatic gain control that flattens a
    # microphone's colouring and steady background noise. librosa.pcen's defaults.
    pcen: bool = False
    pcen_time_constant: float = 0.4  # seconds
    pcen_gain: float = 0.98
    pcen_bias: float = 2.0
    pcen_power: float = 0.5

    @property
    def win_length(self) -> int:
        return round(self.sample_rate * self.win_ms / 1000)

    @property
    def hop_length(self) -> int:
        return round(self.sample_rate * self.hop_ms / 1000)


class LogMel(nn.Module):
    """(batch, samples) waveform (float in [-1, 1] or int16 PCM) → (batch, 1, n_mels, frames) log-mel."""

    kind = "audio"

    def __init__(self, config: LogMelConfig | None = None, filterbank: bool = True) -> None:
        """`filterbank=False` leaves the mel filterbank empty for a checkpoint's copy to fill, which
        spares `classify` importing librosa (and numba) on every start."""
        super().__init__()
        self.config = config = config or LogMelConfig()
        if config.norm not in NORMS:
            raise ValueError(f"unknown normalisation {config.norm!r}")
        self.register_buffer("window", torch.hann_window(config.win_length), persistent=True)
        basis = _mel_basis(config) if filterbank else torch.zeros(config.n_mels, config.n_fft // 2 + 1)
        self.register_buffer("mel_basis", basis, persistent=True)
        if config.lifter:  # derived from the config alone, so not stored in checkpoints
            self.register_buffer("smooth", _cepstral_smoother(config.n_mels, config.lifter), persistent=False)

    @property
    def image_shape(self) -> tuple[int, int]:
        c = self.config
        return c.n_mels, 1 + (c.clip_samples - c.n_fft) // c.hop_length

    def mel_power(self, wav: torch.Tensor) -> torch.Tensor:
        """(batch, samples) → (batch, n_mels, frames) mel power, the quantity librosa computes."""
        c = self.config
        spec = torch.stft(wav, n_fft=c.n_fft, hop_length=c.hop_length, win_length=c.win_length,
                          window=self.window, center=False, return_complex=True)
        power = spec.real.square() + spec.imag.square()
        return torch.matmul(self.mel_basis, power)

    def forward(self, wav: torch.Tensor) -> torch.Tensor:
        if wav.dim() == 1:
            wav = wav.unsqueeze(0)
        if not wav.is_floating_point():  # int16 PCM, as datasets store it
            wav = wav.float() / 32768.0
        power = self.mel_power(wav.float())
        if self.config.pcen:  # relative to the clip's peak, so PCEN's eps is a level-free floor too
            image = self.pcen(power / power.amax(dim=(1, 2), keepdim=True).clamp_min(self.config.floor))
        else:
            peak = power.amax(dim=(1, 2), keepdim=True)
            floor = (peak * 10 ** (-self.config.dynamic_range_db / 10)).clamp_min(self.config.floor)
            image = torch.log(torch.maximum(power, floor))
        if self.config.lifter:
            image = torch.matmul(self.smooth, image)
        norm = self.config.norm
        if norm == "none":
            return image.unsqueeze(1)
        # utterance: the whole image's mean and spread; channel: each band's own; channel-mean: each
        # band's mean, the whole image's spread (std with correction=0: finite even for one frame).
        image = image - image.mean(dim=(1, 2) if norm == "utterance" else 2, keepdim=True)
        spread = image.std(dim=2 if norm == "channel" else (1, 2), keepdim=True, correction=0)
        if norm == "channel-mean":
            # A steady sound (a hum, a muted microphone) leaves almost nothing once the band means
            # are gone; the floor keeps it a flat image instead of blowing its last decimals up to
            # the contrast of speech (whose spread here is 3-4.5; steady noise's about 0.6).
            return (image / spread.clamp_min(self.config.min_spread)).unsqueeze(1)
        return (image / (spread + 1e-5)).unsqueeze(1)

    def pcen(self, power: torch.Tensor) -> torch.Tensor:
        """(batch, bands, frames) mel power → PCEN. The first-order smoother that librosa runs as an
        IIR filter is one matrix product over the frames here, so it batches, exports to ONNX and
        never loops in Python. It starts at the first frame's energy (librosa starts at 1, which
        makes the start depend on the recording level)."""
        c = self.config
        t = c.pcen_time_constant * c.sample_rate / c.hop_length
        b = ((1 + 4 * t * t) ** 0.5 - 1) / (2 * t * t)
        weight = torch.from_numpy(_pcen_smoother(power.shape[-1], b)).to(power)
        smooth = torch.matmul(power, weight)
        return (power / (1e-6 + smooth) ** c.pcen_gain + c.pcen_bias) ** c.pcen_power - c.pcen_bias ** c.pcen_power

    def describe(self) -> dict:
        return {"type": "logmel", "config": asdict(self.config)}


@dataclass
class PixelConfig:
    height: int = 28
    width: int = 28
    mean: float = 0.1307  # MNIST's pixel statistics, as in the usual recipe
    std: float = 0.3081


class PixelScale(nn.Module):
    """(batch, H, W) grey levels 0..255 → (batch, 1, H, W) standardised: the image side's frontend."""

    kind = "image"

    def __init__(self, config: PixelConfig | None = None) -> None:
        super().__init__()
        self.config = config or PixelConfig()

    @property
    def image_shape(self) -> tuple[int, int]:
        return self.config.height, self.config.width

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        if pixels.dim() == 2:
            pixels = pixels.unsqueeze(0)
        x = pixels.float() / 255.0
        return ((x - self.config.mean) / self.config.std).unsqueeze(1)

    def describe(self) -> dict:
        return {"type": "pixels", "config": asdict(self.config)}


def build_frontend(description: dict, weights_follow: bool = False) -> nn.Module:
    """Rebuild a frontend from what `describe()` wrote into a checkpoint. With `weights_follow`,
    buffers that the checkpoint's state_dict will overwrite are not computed."""
    kinds = {"logmel": (LogMel, LogMelConfig), "pixels": (PixelScale, PixelConfig)}
    if description.get("type") not in kinds:
        raise ValueError(f"unknown frontend type {description.get('type')!r}")
    module, config = kinds[description["type"]]
    if module is LogMel:
        return LogMel(LogMelConfig(**description["config"]), filterbank=not weights_follow)
    return module(config(**description["config"]))


def _mel_basis(c: LogMelConfig) -> torch.Tensor:
    import librosa

    fb = librosa.filters.mel(sr=c.sample_rate, n_fft=c.n_fft, n_mels=c.n_mels, fmin=c.fmin, fmax=c.fmax)
    return torch.from_numpy(fb).float()


@functools.lru_cache(maxsize=8)
def _pcen_smoother(frames: int, b: float) -> np.ndarray:
    """(frames, frames) weights of the first-order smoother M[j] = (1 - b) M[j-1] + b E[j], started at
    M[0] = E[0]; cached, as a stream asks for the same size every hop. NumPy, not torch, so that an
    export's tracing never leaves a traced tensor in the cache."""
    lag = np.arange(frames)[None, :] - np.arange(frames)[:, None]  # lag[k, j] = j - k: frame k behind j
    weight = np.where(lag >= 0, b * (1 - b) ** np.maximum(lag, 0), 0.0)
    weight[0] = (1 - b) ** np.arange(frames)  # the smoother starts at frame 0's own energy
    return weight.astype(np.float32)


def _cepstral_smoother(n: int, keep: int) -> torch.Tensor:
    """(n, n) projection onto the first `keep` orthonormal DCT-II basis vectors along the mel axis."""
    k = torch.arange(n, dtype=torch.float64).unsqueeze(1)
    dct = torch.cos(torch.pi / n * (torch.arange(n, dtype=torch.float64) + 0.5) * k) * (2.0 / n) ** 0.5
    dct[0] /= 2 ** 0.5
    kept = dct[:keep]
    return (kept.T @ kept).float()
