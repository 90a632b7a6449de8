"""Augmentation is really applied, in the intended way, and never touches labels."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import torch

from kws.augment import AUGMENT_RECIPES, AugmentConfig, SpecAugment, WaveAugment, speech_rms
from kws.datasets import speech_commands
from kws.datasets.synth import SynthConfig, build
from kws.features import LogMel
from kws.model import new_classifier
from kws.train import TrainConfig, fit

OFF = AugmentConfig(shift_ms=0.0, noise_prob=0.0)  # every transform off; each test turns one on


def _word(n: int = 4) -> torch.Tensor:
    """A batch of the same 'word': a 300 ms harmonic tone with a 6 kHz hiss, in 1 s of silence."""
    t = torch.arange(4800) / 16000
    word = sum(torch.sin(2 * torch.pi * f * t) / k for k, f in enumerate((200, 400, 800, 1600), 1))
    word = word + 0.3 * torch.sin(2 * torch.pi * 6000 * t)
    clip = torch.zeros(16000)
    clip[5600:10400] = 0.5 * word / word.abs().max() * torch.hann_window(4800)
    return clip.repeat(n, 1)


def _band_energy(x: torch.Tensor, low: float, high: float) -> torch.Tensor:
    spec = torch.fft.rfft(x, dim=1).abs() ** 2
    f = torch.fft.rfftfreq(x.shape[1], 1 / 16000)
    return spec[:, (f >= low) & (f < high)].sum(1)


def _extent(x: torch.Tensor) -> torch.Tensor:
    """Samples between the first and last above 5% of each row's peak."""
    loud = x.abs() > 0.05 * x.abs().amax(1, keepdim=True)
    idx = torch.arange(x.shape[1]).expand_as(x)
    return torch.where(loud, idx, -1).amax(1) - torch.where(loud, idx, x.shape[1]).amin(1)


def test_each_wave_transform_does_what_it_says():
    g = torch.Generator().manual_seed(0)
    clean = _word(64)
    # Shift: the same samples, moved by at most ±100 ms, zeros coming in.
    shifted = WaveAugment(replace(OFF, shift_ms=100.0), None, g)(clean)
    lags = [int(np.argmax(np.correlate(s.numpy(), clean[0].numpy(), "full"))) - 15999 for s in shifted]
    assert max(abs(v) for v in lags) <= 1600 and len(set(lags)) > 10
    assert torch.allclose(shifted.abs().sum(1), clean.abs().sum(1), rtol=1e-4)  # nothing lost: word is inside
    # Speed: the word lasts longer or shorter, by at most ±15%.
    ratio = _extent(WaveAugment(replace(OFF, speed=0.15), None, g)(clean)) / _extent(clean)
    assert ratio.min() < 0.95 and ratio.max() > 1.05 and ratio.min() > 0.8 and ratio.max() < 1.25
    # Speed and shift in one resampling: the same as shifting first, then resampling.
    offsets = torch.randint(-1600, 1601, (64, 1), generator=g)
    idx = torch.arange(16000) - offsets
    shifted_first = torch.gather(clean, 1, idx.clamp(0, 15999)) * ((idx >= 0) & (idx < 16000))
    at_once, in_turn = (WaveAugment(replace(OFF, speed=0.15), None, torch.Generator().manual_seed(1))._speed(*args)
                        for args in ((clean, offsets), (shifted_first,)))
    assert torch.allclose(at_once, in_turn, atol=1e-3) and not torch.allclose(at_once, clean, atol=1e-2)
    # Band limit on every clip: the 6 kHz hiss is cut (low-pass at 2.5-7 kHz), never louder overall.
    limited = WaveAugment(replace(OFF, band_limit=1.0), None, g)(clean)
    hiss = _band_energy(limited, 5500, 6500) / _band_energy(clean, 5500, 6500)
    assert hiss.median() < 0.5 and (limited.abs().amax(1) <= clean.abs().amax(1) + 1e-6).all()
    # Reverb on every clip: the word rings on after it ends.
    wet = WaveAugment(replace(OFF, reverb=1.0), None, g)(clean)
    tail = lambda x: x[:, 10600:13000].pow(2).sum(1)  # noqa: E731
    assert (tail(wet) > 100 * tail(clean) + 1e-6).all()
    # A batch in which no clip draws a room (an epoch's last may be a few rows) passes unchanged.
    one = clean[:1]
    for seed in range(8):  # (at a share of a half, some of these draw no room for the one clip)
        out = WaveAugment(replace(OFF, reverb=0.5), None, torch.Generator().manual_seed(seed))(one)
        assert out.shape == one.shape and torch.isfinite(out).all()
    assert torch.equal(WaveAugment(replace(OFF, reverb=1e-9), None, g)(clean), clean)
    # Noise on every clip: the silence before the word is no longer silent, the word is still there.
    noise = torch.randn(16000 * 5) * 0.3
    noisy = WaveAugment(replace(OFF, noise_prob=1.0, noise_volume=0.1), noise, g)(clean)
    assert (noisy[:, :5000].abs().amax(1) > 0).float().mean() > 0.9
    assert torch.nn.functional.cosine_similarity(noisy, clean).min() > 0.5


def test_noise_by_signal_to_noise_ratio_sits_that_far_below_the_word_whatever_its_level():
    t = torch.arange(16000) / 16000
    word = torch.sin(2 * torch.pi * 440 * t) * ((t > 0.4) & (t < 0.6))  # 0.2 s of tone in a silent second
    clips = torch.stack([word * 0.5, word * 0.01])  # a loud speaker and a quiet one
    noise = torch.randn(40000, generator=torch.Generator().manual_seed(0)) * 0.2
    config = AugmentConfig(shift_ms=0, noise_prob=1.0, noise_snr_db=10.0, noise_snr_min_db=10.0)
    out = WaveAugment(config, noise, torch.Generator().manual_seed(1))(clips)
    added = out - clips
    snr = 20 * torch.log10(speech_rms(clips) / added.pow(2).mean(1).sqrt())
    assert torch.allclose(snr, torch.tensor([10.0, 10.0]), atol=0.3), snr
    # The word's own loudness is taken from where it is said, not diluted by the silence around it.
    assert abs(float(speech_rms(clips[:1])) - 0.5 / 2 ** 0.5) < 0.01
    # A silent row gets noise too (at the raw gain's ceiling, less the drawn ratio).
    silent = WaveAugment(config, noise, torch.Generator().manual_seed(1))(torch.zeros(1, 16000))
    assert 0 < float(silent.pow(2).mean().sqrt()) <= 0.1 * float(noise.pow(2).mean().sqrt())
    # The raw-gain default leaves the quiet speaker buried: its noise is not scaled to it.
    plain = WaveAugment(AugmentConfig(shift_ms=0, noise_prob=1.0), noise, torch.Generator().manual_seed(1))(clips)
    assert (plain - clips)[1].pow(2).mean() > 10 * added[1].pow(2).mean()


def test_vocal_tract_warp_moves_the_mel_image_along_frequency_only():
    g = torch.Generator().manual_seed(0)
    image = LogMel()(_word(32))  # (batch, 1, bands, frames)
    warped = SpecAugment(replace(OFF, warp=0.12), g)(image)
    bands = torch.arange(image.shape[2], dtype=torch.float32).view(1, 1, -1, 1)
    centroid = lambda im: ((im - im.amin()) * bands).sum((1, 2, 3)) / (im - im.amin()).sum((1, 2, 3))  # noqa: E731
    moved = centroid(warped) / centroid(image)
    assert moved.min() < 0.99 and moved.max() > 1.01 and (moved - 1).abs().max() < 0.2
    # Time is untouched: the silent frames (flat across bands) stay exactly as they were.
    silent = (image.std(2, keepdim=True) < 1e-6).expand_as(image)
    assert silent.any() and torch.allclose(warped[silent], image[silent])


def test_training_on_a_small_corpus_feeds_augmented_clips_with_their_own_labels(tmp_path, monkeypatch):
    config = SynthConfig(per_word=80, words=("yes", "no", "up"), timbre=1.0, pico=0)
    root = build(tmp_path / "corpus", config)
    splits = speech_commands.load(root, "12", ["yes", "no"], 0, name="synth")
    g = torch.Generator().manual_seed(0)
    seen, targets = [], []

    class Spy(WaveAugment):
        def __call__(self, wav):
            out = super().__call__(wav)
            seen.append((wav.clone(), out.clone()))
            return out

    class RecordingLoss(torch.nn.CrossEntropyLoss):
        def forward(self, logits, target):
            if torch.is_grad_enabled():  # training steps, not the validation pass
                targets.append(target.cpu())  # (from wherever training ran, beside the CPU's clips)
            return super().forward(logits, target)

    monkeypatch.setattr(torch.nn, "CrossEntropyLoss", RecordingLoss)
    net = new_classifier(LogMel(), splits.labels, "chapter4")
    acoustic = AugmentConfig(**AUGMENT_RECIPES["acoustic"])
    metrics = fit(net, splits, TrainConfig(epochs=5, batch_size=16, lr=3e-3), tmp_path / "run", generator=g,
                  augment=Spy(acoustic, splits.noise, g), progress=False)
    x_train, y_train = splits.train
    row_of = {bytes(x.numpy().tobytes()): i for i, x in enumerate(x_train)}
    assert len(seen) == len(targets) == 5 * -(-len(x_train) // 16)  # every training step, and only those
    for (wav, out), target in zip(seen, targets):
        clean = wav.float() / 32768
        assert out.shape == clean.shape
        assert not torch.allclose(out, clean, atol=1e-3)  # really changed
        assert (out.abs().amax(1) <= 1.0).all()
        # The loss pairs each augmented clip with the label of the clean clip it was made from.
        rows = [row_of[bytes(w.numpy().tobytes())] for w in wav]
        assert torch.equal(target, y_train[rows])
    # And the model learns from the augmented clips.
    history = metrics["history"]
    assert history[-1]["train_loss"] < 0.9 * history[0]["train_loss"], history
