import numpy as np
import soundfile as sf
import torch

from kws.features import LogMel, LogMelConfig, PixelScale, build_frontend


def _real_clips(speech_dir, n=8):
    files = sorted(speech_dir.glob("*/*.wav"))
    files = [f for f in files if not f.parent.name.startswith("_")]
    return files[:: max(1, len(files) // n)][:n]


def test_mel_power_matches_librosa_on_real_clips(speech_dir):
    import librosa

    frontend = LogMel()
    c = frontend.config
    for path in _real_clips(speech_dir):
        audio, rate = sf.read(path, dtype="float32")
        assert rate == 16000
        audio = np.pad(audio, (0, max(0, 16000 - len(audio))))[:16000]
        ref = librosa.feature.melspectrogram(y=audio, sr=16000, n_fft=c.n_fft, hop_length=c.hop_length,
                                             win_length=c.win_length, center=False, n_mels=c.n_mels,
                                             fmin=c.fmin, fmax=c.fmax, power=2.0)
        ours = frontend.mel_power(torch.from_numpy(audio)[None])[0].numpy()
        assert ours.shape == ref.shape == (40, 97)
        np.testing.assert_allclose(ours, ref, rtol=1e-3, atol=1e-6 * ref.max())


def test_log_mel_image_is_normalised_and_level_invariant(speech_dir):
    frontend = LogMel()
    audio, _ = sf.read(_real_clips(speech_dir)[0], dtype="float32")
    x = torch.from_numpy(np.pad(audio, (0, 16000 - len(audio))))
    image = frontend(x)
    assert image.shape == (1, 1, 40, 97)
    assert abs(float(image.mean())) < 1e-4 and abs(float(image.std()) - 1) < 1e-3
    # The same clip 12 dB quieter gives (almost) the same image: the model need not learn loudness.
    assert torch.allclose(frontend(x / 4), image, atol=1e-3)
    # int16 input, as datasets store it, is read as PCM.
    pcm = (x * 32767).round().to(torch.int16)
    assert torch.allclose(frontend(pcm), image, atol=1e-2)


def test_frontend_rebuilds_from_its_description():
    frontend = LogMel(LogMelConfig(n_mels=32, norm="channel"))
    rebuilt = build_frontend(frontend.describe())
    x = torch.randn(2, 16000) * 0.1
    assert torch.equal(rebuilt(x), frontend(x))
    pixels = PixelScale()
    assert build_frontend(pixels.describe())(torch.zeros(28, 28, dtype=torch.uint8)).shape == (1, 1, 28, 28)


def test_channel_mean_cancels_a_fixed_microphone_colouring(speech_dir, monkeypatch):
    audio, _ = sf.read(_real_clips(speech_dir)[0], dtype="float32")
    x = torch.from_numpy(np.pad(audio, (0, 16000 - len(audio))))[None]
    gains = 10 ** torch.linspace(-1.5, 1.0, 40)  # power: -15 dB in the lowest band to +10 dB in the highest
    images = {}
    for norm in ("channel-mean", "utterance"):
        frontend = LogMel(LogMelConfig(norm=norm, dynamic_range_db=200.0))  # (no floor in reach)
        plain = frontend(x)
        power = frontend.mel_power(x)
        monkeypatch.setattr(frontend, "mel_power", lambda wav, p=power: p * gains[:, None])
        images[norm] = (plain, frontend(x))
    plain, coloured = images["channel-mean"]
    assert torch.allclose(coloured, plain, atol=1e-4)  # the same word through another microphone
    assert plain.mean(dim=3).abs().max() < 1e-4 and abs(float(plain.std()) - 1) < 1e-3
    plain, coloured = images["utterance"]
    assert not torch.allclose(coloured, plain, atol=0.1)  # (the control: a whole-image norm keeps the tilt)


def test_channel_mean_leaves_a_steady_sound_flat():
    """A hum or a muted microphone has nothing left once the band means go: it must not be blown up."""
    frontend = LogMel(LogMelConfig(norm="channel-mean"))
    t = torch.arange(16000) / 16000
    hum = 0.1 * torch.sin(2 * torch.pi * 50 * t)
    for steady in (hum, torch.zeros(16000)):
        assert frontend(steady[None]).abs().max() < 0.05  # (without the floor: a spread of 1)
    noise = torch.randn(1, 16000, generator=torch.Generator().manual_seed(0)) * 0.01
    assert 0.3 < float(frontend(noise).std()) < 0.9  # steady noise keeps its own small spread


def test_lifter_keeps_the_envelope_and_drops_the_ripple():
    x = torch.randn(2, 16000) * 0.1
    full = LogMel(LogMelConfig(norm="none"))(x)
    assert torch.allclose(LogMel(LogMelConfig(norm="none", lifter=40))(x), full, atol=1e-4)
    smooth = LogMel(LogMelConfig(norm="none", lifter=8))(x)
    # Along the mel axis the liftered image changes far less from band to band ...
    assert smooth.diff(dim=2).abs().mean() < 0.5 * full.diff(dim=2).abs().mean()
    # ... while each frame keeps its overall level (the 0th cepstral coefficient is kept).
    assert torch.allclose(smooth.mean(dim=2), full.mean(dim=2), atol=1e-4)
    # It is derived from the config, so checkpoints stay the same shape.
    assert "smooth" not in LogMel(LogMelConfig(lifter=8)).state_dict()


def test_pcen_matches_librosa_and_ignores_level(speech_dir):
    import librosa
    import scipy.signal

    frontend = LogMel(LogMelConfig(pcen=True))
    c = frontend.config
    for path in _real_clips(speech_dir, n=4):
        audio, _ = sf.read(path, dtype="float32")
        x = torch.from_numpy(np.pad(audio, (0, max(0, 16000 - len(audio))))[:16000])
        power = frontend.mel_power(x[None])[0].double().numpy()
        t = c.pcen_time_constant * c.sample_rate / c.hop_length
        b = (np.sqrt(1 + 4 * t * t) - 1) / (2 * t * t)
        start = scipy.signal.lfilter_zi([b], [1, b - 1]) * power[:, :1]  # the smoother starts at frame 0's energy
        ref = librosa.pcen(power, sr=c.sample_rate, hop_length=c.hop_length, gain=c.pcen_gain, bias=c.pcen_bias,
                           power=c.pcen_power, time_constant=c.pcen_time_constant, eps=1e-6, zi=start)
        ours = frontend.pcen(torch.from_numpy(power).float()[None])[0].numpy()
        np.testing.assert_allclose(ours, ref, rtol=1e-4, atol=1e-5)
        # Measured against the clip's peak, the image does not depend on the recording level.
        image = frontend(x[None])
        assert image.shape == (1, 1, 40, 97) and torch.allclose(frontend(x[None] / 4), image, atol=1e-3)
