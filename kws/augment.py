"""Training-time augmentation: batched, on the device, driven by one torch.Generator.

`WaveAugment` works on raw int16 waveforms before the frontend (time shift, background noise);
`SpecAugment` masks time and frequency stripes of the log-mel image after it. Neither is part of
the saved model: at inference time audio goes straight through the frontend.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .audio import SAMPLE_RATE


@dataclass
class AugmentConfig:
    shift_ms: float = 100.0  # random time shift in ±shift_ms, zero-filled
    noise_prob: float = 0.8  # share of clips that get background noise mixed in
    noise_volume: float = 0.1  # largest noise gain (TF's background_volume)
    time_masks: int = 0  # SpecAugment: number of time stripes (0 = off)
    time_mask_frames: int = 10
    freq_masks: int = 0  # SpecAugment: number of frequency stripes (0 = off)
    freq_mask_bands: int = 5


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
        if shift > 0:
            offsets = torch.randint(-shift, shift + 1, (n, 1), generator=self.generator)
            idx = torch.arange(length).unsqueeze(0) - offsets
            valid = (idx >= 0) & (idx < length)
            x = torch.gather(x, 1, idx.clamp(0, length - 1)) * valid
        if self.noise is not None and self.config.noise_prob > 0:
            starts = torch.randint(0, len(self.noise) - length, (n, 1), generator=self.generator)
            cuts = self.noise[starts + torch.arange(length).unsqueeze(0)]
            gain = self._uniform(n, 0.0, self.config.noise_volume)
            gain = gain * (torch.rand(n, generator=self.generator) < self.config.noise_prob)
            x = (x + gain.unsqueeze(1) * cuts).clamp(-1.0, 1.0)
        return x


class SpecAugment:
    """Zero (the normalised mean) random time and frequency stripes of (batch, 1, bands, frames)."""

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
        return image * keep.view(shape).to(image.dtype)

    def __call__(self, image: torch.Tensor) -> torch.Tensor:
        c = self.config
        if c.freq_masks:
            image = self._stripes(image, 2, c.freq_masks, c.freq_mask_bands)
        if c.time_masks:
            image = self._stripes(image, 3, c.time_masks, c.time_mask_frames)
        return image

    @property
    def active(self) -> bool:
        return bool(self.config.freq_masks or self.config.time_masks)
