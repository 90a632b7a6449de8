"""Training-time augmentation: batched, on the device, driven by one torch.Generator.

`WaveAugment` works on raw int16 waveforms before the frontend: a time shift, and as its config
asks, a speed change, a microphone's colouring (EQ tilt, band limits), a synthetic room's reverb
and background noise. `SpecAugment` works on the log-mel image after it: a vocal-tract warp of the
mel axis and masked time and frequency stripes. Neither is part of the saved model: at inference
time audio goes straight through the frontend.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .audio import SAMPLE_RATE


@dataclass
class AugmentConfig:
    shift_ms: float = 100.0  # random time shift in ±shift_ms, zero-filled
    noise_prob: float = 0.8  # share of clips that get background noise mixed in
    noise_volume: float = 0.1  # largest noise gain (TF's background_volume)
    # > 0: the noise is set by signal-to-noise ratio instead, drawn from noise_snr_min_db to
    # noise_snr_db below the word's own loudness: a raw gain leaves quiet speakers buried and loud
    # ones clean, while a stream's words sit 0-20 dB over whatever noise is there.
    noise_snr_db: float = 0.0
    noise_snr_min_db: float = 0.0
    time_masks: int = 0  # SpecAugment: number of time stripes (0 = off)
    time_mask_frames: int = 10
    freq_masks: int = 0  # SpecAugment: number of frequency stripes (0 = off)
    freq_mask_bands: int = 5
    # Acoustic variety that a synthesiser lacks and a room and a microphone add (0 = off):
    speed: float = 0.0  # tape-speed change in ±speed (tempo and pitch together), e.g. 0.15
    eq_db: float = 0.0  # random spectral tilt of up to ±eq_db per octave around 1 kHz, e.g. 4
    band_limit: float = 0.0  # share of clips low-passed at a random 2.5-7 kHz and high-passed below 300 Hz
    reverb: float = 0.0  # share of clips convolved with a synthetic room (RT60 0.1-0.7 s)
    warp: float = 0.0  # vocal-tract-length warp of the mel axis by a factor in 1 ± warp, e.g. 0.12


# Named settings for a recipe's `augment` (`kws train --augment`). "acoustic" adds what a synthesiser
# lacks and a room and a microphone add: the `synth` recipe's, whose model must generalise to people.
AUGMENT_RECIPES = {
    "basic": {},
    "acoustic": {"speed": 0.15, "eq_db": 4.0, "band_limit": 0.5, "reverb": 0.5, "warp": 0.12},
}


def speech_rms(x: torch.Tensor, frame: int = SAMPLE_RATE // 100, floor_db: float = 30.0) -> torch.Tensor:
    """Each row's loudness while the word is said: the RMS from its first to its last 10-ms frame
    within `floor_db` of the loudest, so the silence around a short word does not make it quiet."""
    n, length = x.shape
    energy = x[:, : length // frame * frame].reshape(n, -1, frame).pow(2).mean(2)
    loud = energy > energy.amax(1, keepdim=True) * 10 ** (-floor_db / 10)
    index = torch.arange(energy.shape[1])
    first = torch.where(loud, index, energy.shape[1]).amin(1, keepdim=True)
    last = torch.where(loud, index, -1).amax(1, keepdim=True)
    inside = (index >= first) & (index <= last)
    return ((energy * inside).sum(1) / inside.sum(1).clamp_min(1)).sqrt()


class WaveAugment:
    """int16 (batch, samples) → float (batch, samples) in [-1, 1], shifted and noised."""

    def __init__(self, config: AugmentConfig, noise: torch.Tensor | None, generator: torch.Generator) -> None:
        self.config = config
        self.noise = noise if noise is not None and len(noise) > SAMPLE_RATE else None
        self.generator = generator

    def _uniform(self, n: int, low: float, high: float) -> torch.Tensor:
        return low + (high - low) * torch.rand(n, generator=self.generator)

    def __call__(self, wav: torch.Tensor) -> torch.Tensor:
        x = wav.float() / 32768.0 if not wav.is_floating_point() else wav.float()
        n, length = x.shape
        shift = round(SAMPLE_RATE * self.config.shift_ms / 1000)
        offsets = torch.randint(-shift, shift + 1, (n, 1), generator=self.generator) if shift > 0 else None
        c = self.config
        if c.speed > 0:
            x = self._speed(x, offsets)  # the shift rides along in the same resampling
        elif offsets is not None:
            idx = torch.arange(length).unsqueeze(0) - offsets
            valid = (idx >= 0) & (idx < length)
            x = torch.gather(x, 1, idx.clamp(0, length - 1)) * valid
        if c.eq_db > 0 or c.band_limit > 0:
            x = self._equalise(x)
        if c.reverb > 0:
            x = self._reverb(x)
        if self.noise is not None and c.noise_prob > 0:
            starts = torch.randint(0, len(self.noise) - length, (n, 1), generator=self.generator)
            cuts = self.noise.unfold(0, length, 1)[starts.squeeze(1)]  # rows of a strided view: no index array
            if c.noise_snr_db > 0:
                snr = self._uniform(n, c.noise_snr_min_db, c.noise_snr_db)
                noise_rms = cuts.pow(2).mean(1).sqrt().clamp_min(1e-6)
                level = speech_rms(x)
                # A silent row has no word to measure: it gets noise at the raw gain's ceiling.
                level = torch.where(level > 0, level, c.noise_volume * noise_rms)
                gain = level / noise_rms * 10 ** (-snr / 20)
            else:
                gain = self._uniform(n, 0.0, c.noise_volume)
            gain = gain * (torch.rand(n, generator=self.generator) < c.noise_prob)
            x = (x + gain.unsqueeze(1) * cuts).clamp(-1.0, 1.0)
        return x

    def _speed(self, x: torch.Tensor, offsets: torch.Tensor | None = None) -> torch.Tensor:
        """Play each clip faster or slower about its centre, then shift it by `offsets` samples
        (linear interpolation, zero outside): one resampling instead of a shift and a resampling,
        done by `grid_sample` (a fifth of the time of two gathers here, and a tenth of a step)."""
        n, length = x.shape
        factor = self._uniform(n, 1 - self.config.speed, 1 + self.config.speed).unsqueeze(1)
        centre = (length - 1) / 2
        pos = centre + (torch.arange(length, dtype=x.dtype).unsqueeze(0) - centre) * factor
        if offsets is not None:
            pos = pos - offsets
        grid = torch.stack([pos * (2 / (length - 1)) - 1, torch.zeros_like(pos)], -1).unsqueeze(1)
        out = nn.functional.grid_sample(x.view(n, 1, 1, length), grid, align_corners=True)
        return out.view(n, length)

    def _equalise(self, x: torch.Tensor) -> torch.Tensor:
        """A random microphone/room colouring: a spectral tilt and, for some clips, a band limit."""
        n, length = x.shape
        c = self.config
        spec = torch.fft.rfft(x, dim=1)
        freqs = torch.fft.rfftfreq(length, 1 / SAMPLE_RATE).unsqueeze(0)
        octaves = torch.log2(freqs.clamp_min(20.0) / 1000.0)
        gain_db = self._uniform(n, -c.eq_db, c.eq_db).unsqueeze(1) * octaves
        if c.band_limit > 0:
            on = (torch.rand(n, 1, generator=self.generator) < c.band_limit).float()
            low = self._uniform(n, 2500.0, 7000.0).unsqueeze(1)
            high = self._uniform(n, 50.0, 300.0).unsqueeze(1)
            lowpass = -40 * torch.relu(torch.log2(freqs.clamp_min(1.0) / low))  # 40 dB per octave above
            highpass = -24 * torch.relu(torch.log2(high / freqs.clamp_min(1.0)))  # 24 dB per octave below
            gain_db = gain_db + on * (lowpass + highpass).clamp_min(-80)
        out = torch.fft.irfft(spec * 10 ** (gain_db / 20), n=length, dim=1)
        peak = out.abs().amax(1, keepdim=True).clamp_min(1e-6)
        return out * torch.clamp(x.abs().amax(1, keepdim=True) / peak, max=1.0)  # never louder than before

    def _reverb(self, x: torch.Tensor) -> torch.Tensor:
        """Convolve some clips with a synthetic room: a direct path plus exponentially decaying noise."""
        n, length = x.shape
        taps = SAMPLE_RATE * 6 // 10
        rt60 = self._uniform(n, 0.1, 0.7).unsqueeze(1)
        t = torch.arange(taps).unsqueeze(0) / SAMPLE_RATE
        tail = torch.randn(n, taps, generator=self.generator) * torch.exp(-6.9 * t / rt60)
        tail[:, :SAMPLE_RATE // 200] = 0  # 5 ms before the first reflection
        direct_to_reverb = self._uniform(n, 0.5, 4.0).unsqueeze(1)
        rir = tail / tail.norm(dim=1, keepdim=True).clamp_min(1e-9) / direct_to_reverb
        rir[:, 0] = 1.0
        on = (torch.rand(n, generator=self.generator) < self.config.reverb).nonzero().squeeze(1)
        if len(on) == 0:  # (a small batch, an epoch's last, may draw no room; the FFT refuses no rows)
            return x
        size = length + taps  # convolve only the clips that get a room
        dry = x[on]
        wet = torch.fft.irfft(torch.fft.rfft(dry, size, dim=1) * torch.fft.rfft(rir[on], size, dim=1), size, dim=1)
        out = x.clone()
        wet = wet[:, :length]
        out[on] = wet * (dry.abs().amax(1, keepdim=True) / wet.abs().amax(1, keepdim=True).clamp_min(1e-6))
        return out


class SpecAugment:
    """Zero (the normalised mean) random time and frequency stripes of (batch, 1, bands, frames).

    It draws on the CPU generator, so a seed gives the same stripes on any device, and applies them
    where the image is (a GPU's, in training there)."""

    def __init__(self, config: AugmentConfig, generator: torch.Generator) -> None:
        self.config = config
        self.generator = generator

    def _stripes(self, image: torch.Tensor, dim: int, count: int, width: int) -> torch.Tensor:
        n, size = image.shape[0], image.shape[dim]
        pos = torch.arange(size).view(1, size)
        keep = torch.ones(n, size, dtype=torch.bool)
        for _ in range(count):
            w = torch.randint(0, width + 1, (n, 1), generator=self.generator)
            start = (torch.rand(n, 1, generator=self.generator) * (size - w + 1)).long()
            keep &= ~((pos >= start) & (pos < start + w))
        shape = [n, 1, 1, 1]
        shape[dim] = size
        return image * keep.view(shape).to(image.device, image.dtype)

    def _warp(self, image: torch.Tensor) -> torch.Tensor:
        """Stretch or squeeze the mel axis (anchored at the lowest band): a longer or shorter vocal tract."""
        n, _, bands, frames = image.shape
        factor = 1 + (2 * torch.rand(n, generator=self.generator) - 1) * self.config.warp
        src = (torch.arange(bands).unsqueeze(0) / factor.unsqueeze(1)).clamp(0, bands - 1)
        lo = src.floor().long().clamp(0, bands - 2)
        frac = (src - lo).unsqueeze(1).unsqueeze(3).to(image.device)
        lo = lo.to(image.device)
        take = lambda idx: torch.gather(image, 2, idx.view(n, 1, bands, 1).expand(n, 1, bands, frames))
        return take(lo) * (1 - frac) + take(lo + 1) * frac

    def __call__(self, image: torch.Tensor) -> torch.Tensor:
        c = self.config
        if c.warp:
            image = self._warp(image)
        if c.freq_masks:
            image = self._stripes(image, 2, c.freq_masks, c.freq_mask_bands)
        if c.time_masks:
            image = self._stripes(image, 3, c.time_masks, c.time_mask_frames)
        return image

    @property
    def active(self) -> bool:
        return bool(self.config.freq_masks or self.config.time_masks or self.config.warp)
