"""espeak-ng voices with a drawn timbre: new vocal tracts and voice sources, built as variant files."""

from __future__ import annotations

import numpy as np
import pytest

from kws.datasets.synth import SynthConfig, _speakers, draw_timbre, speak
from kws.espeak import Speaker, Timbre, Voice, _bundled_data, list_variants, takes_timbre


def _centroid(audio: np.ndarray) -> float:
    power = np.abs(np.fft.rfft(audio)) ** 2
    freqs = np.fft.rfftfreq(len(audio), 1 / 16000)
    return float((power * freqs).sum() / power.sum())


def test_timbre_lines_scale_the_bundled_variant():
    lines = Timbre(formant_scale=(1.0,) + (1.2,) * 8, width_scale=0.5, flutter=10, klatt=2).lines("f3").splitlines()
    # f3 ships "formant 2 135 70 150 -250": the frequency moves, height and offset stay, width halves.
    assert "formant 2 162 70 75 -250" in lines
    assert "formant 0 105 80 75" in lines  # formant 0 keeps its frequency
    assert "flutter 10" in lines and "klatt 2" in lines
    assert not any(line.startswith("breath") for line in lines)  # nothing drawn, nothing written
    # A variant with no formant lines starts from espeak-ng's 100 100 100.
    assert "formant 3 120 100 50" in Timbre(formant_scale=(1.0,) + (1.2,) * 8, width_scale=0.5).lines("").splitlines()


def test_a_longer_or_shorter_tract_moves_the_spectrum_and_leaves_the_bundle_alone():
    speaker = Speaker()
    plain = Voice("en-us", "m3", 150, 50, 50)
    centroids = {}
    for name, scale in (("short", 1.3), ("plain", None), ("long", 0.77)):
        voice = plain if scale is None else Voice("en-us", "m3", 150, 50, 50,
                                                  Timbre(formant_scale=(1.0,) + (scale,) * 8).lines("m3"))
        audio = speak(speaker, "see", voice)
        assert len(audio) > 1600 and np.abs(audio).max() > 0.01, name
        centroids[name] = _centroid(audio)
    assert centroids["short"] > 1.1 * centroids["plain"] > 1.1 * centroids["long"], centroids
    bundled = _bundled_data() / "voices" / "!v"
    assert not list(bundled.glob("kws-*")), "derived variants must go to the private mirror"


def test_timbre_corpus_draws_a_new_speaker_each_time():
    rng = np.random.default_rng(0)
    drawn = [draw_timbre(rng) for _ in range(200)]
    tracts = np.array([t.formant_scale[1] for t in drawn])
    assert tracts.min() < 0.9 and tracts.max() > 1.1  # tract lengths spread both ways
    assert 0.3 < np.mean([bool(t.breath) for t in drawn]) < 0.7
    assert 0.2 < np.mean([t.klatt is not None for t in drawn]) < 0.45
    config = SynthConfig(per_word=30, timbre=1.0)
    speakers = _speakers(config, np.random.default_rng(0))
    assert len({v.name for _, v, _ in speakers}) == 30  # every speaker sounds different
    assert all(v.name.split("+")[1].startswith("kws-") == takes_timbre(v.variant) for _, v, _ in speakers)
    assert all(not v.timbre for _, v, _ in _speakers(SynthConfig(per_word=30), np.random.default_rng(0)))
    assert config.folder_name() != SynthConfig(per_word=30).folder_name() == "synth-n30-s0"
    # Every ordinary variant can carry a timbre (some ship partial formant lines); effect voices
    # with a formant far off are spoken as shipped.
    natural = [v for v in list_variants() if takes_timbre(v)]
    assert len(natural) > 60 and "f3" in natural and "Lee" not in natural
    for variant in natural:
        assert draw_timbre(rng).lines(variant).count("formant ") == 9
    with pytest.raises(ValueError, match="effect voice"):
        draw_timbre(rng).lines("Lee")
