"""Your own words: any keyword from text (built per word, with near misses) and `kws enroll`."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
import torch

from kws.datasets import load_dataset, own_words, speech_commands, synth
from kws.enroll import check_take, read_folder
from kws.errors import UserError
from kws.voices.confusable import confusables, distance, normalise, phonemes
from kws.voices.espeak import Speaker

from .conftest import kws
from .test_stream import _alsa_env, needs_portaudio


def test_near_misses_are_distinct_speakable_and_close():
    speaker = Speaker()
    for keyword, others in (("computer", ("sheila",)), ("hey computer", ()), ("wow", ("how",))):
        near = confusables(keyword, 4, avoid=others, speaker=speaker)
        parts = keyword.split() if " " in keyword else []
        assert near[:len(parts)] == parts  # a phrase's words alone come first
        edits = near[len(parts):]
        assert len(edits) == 4 and len(set(near)) == len(near)
        sounds = [phonemes(w, speaker) for w in near]
        target = phonemes(keyword, speaker)
        for w, s in zip(edits, sounds[len(parts):]):
            assert 1 <= distance(target, s) <= 2, w  # close, but not the keyword itself
        for i in range(len(sounds)):
            assert all(distance(sounds[i], sounds[j]) >= 1 for j in range(i)), near  # no two alike
            assert all(distance(sounds[i], phonemes(o, speaker)) >= 1 for o in others)
        for w in near:  # espeak-ng says every one of them
            assert len(synth.speak(speaker, w, synth.Voice())) > 1600
    assert confusables("computer", 4, speaker=speaker) == confusables("computer", 4, speaker=speaker)


def test_a_word_espeak_cannot_say_or_too_long_is_one_clear_error():
    speaker = Speaker()
    for bad in ("7up", "!!!", "hey, you", ""):
        with pytest.raises(UserError, match="letters only"):
            normalise(bad)
    assert normalise("  Hey   Computer ") == "hey computer"
    with pytest.raises(UserError, match="1-s window"):
        synth.check_word("the quick brown fox jumps over the lazy dog", speaker)
    assert synth.check_word("Marvin", speaker) == "marvin"


@pytest.fixture(scope="module")
def tiny_corpus(tmp_path_factory):
    """Two words by 20 speakers: what own words are built beside."""
    config = synth.SynthConfig(per_word=20, words=("yes", "no"), pico=0, timbre=0.0)
    corpus = synth.build(tmp_path_factory.mktemp("own") / "synth", config)
    return corpus, config


def test_only_missing_words_are_built_by_the_corpus_speakers(tiny_corpus):
    corpus, config = tiny_corpus
    assert synth.build_words(corpus, config, ["hey computer", "yes"]) == ["hey computer"]
    cache = synth.words_cache(corpus)
    first = {p.name: p.stat().st_mtime_ns for p in (cache / "hey computer").glob("*.wav")}
    assert len(first) == 20
    assert synth.build_words(corpus, config, ["hey computer", "marvin"]) == ["marvin"]  # only the new one
    assert {p.name: p.stat().st_mtime_ns for p in (cache / "hey computer").glob("*.wav")} == first
    # The same speaker ids as the corpus, each in the corpus's split for that speaker.
    assert sorted(first) == sorted(p.name for p in (corpus / "yes").glob("*.wav"))
    view = synth.with_words(corpus, config, ["hey computer"], ["marvin"])
    lists = speech_commands.split_lists(view)
    base = speech_commands.split_lists(corpus)
    for split in ("train", "val", "test"):
        speakers = {p.split("/")[1] for p in base[split]}
        assert {p.split("/")[1] for p in lists[split] if p.startswith("hey computer/")} == speakers
    assert speech_commands.read_negatives(view) == ["marvin"]
    assert synth.with_words(corpus, config, ["hey computer"], ["marvin"]) == view  # reused


def test_other_words_said_by_a_share_of_the_voices_are_said_by_all_once_trained_as_keywords(tmp_path):
    config = synth.SynthConfig(per_word=40, words=("yes", "marvin"), pico=8 if synth.pico_tts.available() else 0,
                               timbre=0.0, others_share=0.25)
    corpus = synth.build(tmp_path / config.folder_name(), config)
    assert config.folder_name().endswith("-others0.25")
    said = {w: {p.name for p in (corpus / w).glob("[!p]*.wav")} for w in config.words}  # (espeak-ng's)
    assert len(said["yes"]) == 40 and len(said["marvin"]) == 10 and said["marvin"] < said["yes"]
    pico = {w: len(list((corpus / w).glob("pico*.wav"))) for w in config.words}
    assert pico == {"yes": config.pico, "marvin": round(config.pico * 0.25)}
    held = (corpus / "testing_list.txt").read_text().split() + (corpus / "validation_list.txt").read_text().split()
    assert all((corpus / rel).exists() for rel in held)  # the lists name only clips that were said
    lists = speech_commands.split_lists(corpus)
    for split in ("val", "test"):  # every split keeps some of its voices for the other word
        assert any(p.startswith("marvin/") for p in lists[split])
    assert synth.in_full(corpus, config, "yes") and not synth.in_full(corpus, config, "marvin")
    assert synth.build_words(corpus, config, ["yes", "marvin"]) == ["marvin"]  # a keyword now: every voice
    assert len(list((synth.words_cache(corpus) / "marvin").glob("[!p]*.wav"))) == 40
    view = synth.with_words(corpus, config, ["marvin"], [])
    assert len(list((view / "marvin").glob("[!p]*.wav"))) == 40
    listed = speech_commands.split_lists(view)
    for split in ("val", "test"):
        mine = [p for p in listed[split] if p.startswith("marvin/")]
        assert len(mine) == len(set(mine))  # the corpus's own entries for the word are not listed twice
        assert {p.split("/")[1] for p in mine} == {p.split("/")[1] for p in lists[split] if p.startswith("yes/")}
    every = load_dataset(str(corpus), tmp_path, task="35")  # every word a keyword: every voice says it
    counts = torch.bincount(every.train[1]).tolist()
    assert every.labels == ["marvin", "yes"] and counts[0] == counts[1]
    old = tmp_path / "old"  # a corpus built before the share existed: every voice said every word
    old.mkdir()
    (old / "synth_config.txt").write_text(repr({"per_word": 40, "words": ["yes", "marvin"]}) + "\n")
    assert synth.config_of(old).others_share == 1.0


def test_near_misses_are_taught_as_unknown_words_of_their_own(tiny_corpus):
    corpus, config = tiny_corpus
    root, words, near = own_words(corpus, config, ["Yes"], near_misses=2, progress=False)
    assert words == ["yes"] and root != corpus
    negatives = speech_commands.read_negatives(root)
    assert len(negatives) == 2 and "yes" not in negatives and near == {"yes": negatives}
    splits = speech_commands.load(root, words=words, unknown_words=True)
    assert splits.labels == ["_silence_", "_unknown_", "yes"]
    for w in negatives:
        assert f"_unknown_/{w}" in splits.classes
    counts = torch.bincount(splits.train[1], minlength=len(splits.classes))
    keyword = int(counts[splits.classes.index("yes")])
    near = sum(int(counts[splits.classes.index(f"_unknown_/{w}")]) for w in negatives)
    assert keyword - 2 <= near <= keyword + 2  # together as many as the keyword, an even share each
    plain, same, _ = own_words(corpus, config, ["yes"], near_misses=0, progress=False)
    assert plain == corpus and same == ["yes"]  # nothing to add: the corpus itself


# ---------------------------------------------------------------------------------------- enrol

def _tone(seconds: float, level: float, rate: int = 16000) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (level * np.sin(2 * np.pi * 440 * t)).astype(np.float32)


def test_bad_takes_are_refused_with_the_reason():
    word = np.zeros(16000, np.float32)
    word[6000:10000] = _tone(0.25, 0.3)
    assert check_take(word, "ok").shape == (16000,)
    cases = [(np.zeros(16000, np.float32), "silent"), (np.clip(_tone(0.5, 3.0), -1, 1), "clipped"),
             (_tone(0.5, 0.002), "too quiet"), (_tone(1.4, 0.3), "longer than the model's 1-s window")]
    for audio, why in cases:
        with pytest.raises(UserError, match=why):
            check_take(audio, "take")


def test_a_folder_without_takes_or_with_a_long_file_is_refused(tmp_path):
    with pytest.raises(UserError, match="no such folder"):
        read_folder(tmp_path / "nothing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="no .wav files"):
        read_folder(tmp_path / "empty")
    (tmp_path / "long").mkdir()
    sf.write(tmp_path / "long" / "a.wav", _tone(12, 0.1), 16000)
    with pytest.raises(UserError, match="one take of the word per file"):
        read_folder(tmp_path / "long")


def _clips(corpus, word, split):
    lists = speech_commands.split_lists(corpus)
    return [corpus / p for p in lists[split] if p.startswith(word + "/")]


def test_enrol_from_a_folder_teaches_a_new_word_and_keeps_the_others(trained_run, small_corpus, tmp_path):
    from kws.checkpoint import load_model
    from kws.evaluate import predict

    takes = tmp_path / "cat"
    takes.mkdir()
    for path in _clips(small_corpus, "cat", "train")[:8]:
        sf.write(takes / path.name, sf.read(path, dtype="float32")[0], 16000)
    out = tmp_path / "with-cat.pt"
    r = kws("enroll", "cat", "--model", trained_run / "model.pt", "--from-dir", takes, "-o", out, timeout=300)
    assert r.returncode == 0, r.stderr
    assert "enrolled 'cat' as a new label" in r.stdout and "validation clips" in r.stdout  # (never the test split)
    model, meta = load_model(out)
    assert model.labels[-1] == "cat" and meta["enrolled"][0]["examples"] == 8
    assert len(list((tmp_path / "with-cat.enroll" / "cat").glob("*.wav"))) == 8  # kept beside the model
    held_out = _clips(small_corpus, "cat", "test")
    x = torch.from_numpy(speech_commands.decode_clips(held_out))
    said = [model.labels[i] for i in predict(model, x).argmax(1).tolist()]
    assert said.count("cat") >= 0.6 * len(said), said  # voices it never heard say the new word
    result = meta["enrolled"][0]
    assert result["known_after"] >= result["known_before"] - 0.1  # the words it knew stay known
    # the streaming threshold is set again for the adapted net, the way training set it
    from kws.wakeword import calibrated

    _, first = load_model(trained_run / "model.pt")
    was, now = first["calibration"], meta["calibration"]
    assert result["threshold_before"] == was["threshold"] and result["threshold_after"] == now["threshold"]
    assert (now["minutes"], now["target_fa_per_hour"]) == (was["minutes"], was["target_fa_per_hour"])
    assert now["curve"] != was["curve"]  # measured on the new net, not copied
    assert now["threshold"] == calibrated(now["curve"], now["target_fa_per_hour"])["threshold"]
    assert f"streaming threshold {was['threshold']:g} -> {now['threshold']:g}" in r.stdout


def test_enrol_an_image_model_or_a_class_name_is_one_line(digits_run, trained_run, tmp_path):
    takes = tmp_path / "takes"
    takes.mkdir()
    word = np.zeros(16000, np.float32)
    word[6000:10000] = _tone(0.25, 0.3)
    sf.write(takes / "1.wav", word, 16000)
    for model, name, why in ((digits_run, "cat", "audio models"), (trained_run, "_unknown_", "word '_unknown_': use letters only")):
        r = kws("enroll", name, "--model", model / "model.pt", "--from-dir", takes, "-o", tmp_path / "m.pt")
        lines = r.stderr.strip().splitlines()
        assert r.returncode == 2 and len(lines) == 1 and why in lines[0], r.stderr


def _microphone(small_corpus, tmp_path, takes: int, rng) -> dict:
    """A file-backed ALSA microphone that says cat `takes` times, 1.5 s apart, then room noise."""
    clips = _clips(small_corpus, "cat", "train")[:takes]
    audio = [sf.read(p, dtype="float32")[0] for p in clips]
    pad = np.zeros(8000, np.float32)
    room = (0.003 * rng.standard_normal(16000 * 12)).astype(np.float32)
    mic = np.concatenate([x for clip in audio for x in (clip, pad)] + [room])
    raw = tmp_path / "mic.raw"
    raw.write_bytes((np.clip(mic, -1, 1) * 32767).astype("<i2").tobytes())
    return _alsa_env(tmp_path, raw)


@needs_portaudio
def test_enrol_records_takes_and_the_room_through_the_microphone(trained_run, small_corpus, tmp_path):
    env = _microphone(small_corpus, tmp_path, 3, np.random.default_rng(0))
    out = tmp_path / "mic-cat.pt"
    r = kws("enroll", "cat", "--model", trained_run / "model.pt", "--count", "3", "-o", out, env=env, timeout=300)
    assert r.returncode == 0, r.stderr
    assert "1/3: say 'cat'" in r.stderr and "stay quiet" in r.stderr
    folder = tmp_path / "mic-cat.enroll" / "cat"
    assert len(list(folder.glob("*.wav"))) == 3
    room = sf.read(folder / "_background_noise_" / "room.wav")[0]
    assert len(room) == 160000 and np.abs(room).max() < 0.05  # the quiet part, not a word
    assert out.is_file()


def test_ctrl_c_while_enrolling_keeps_the_takes(small_corpus, tmp_path, monkeypatch):
    """Ctrl-C makes `listen.stream_microphone` return early (tested through PortAudio in
    test_stream); here it does so after two takes, as the ALSA file microphone cannot be paused."""
    import kws.listen
    from kws.enroll import Stopped, record

    clips = [sf.read(p, dtype="float32")[0] for p in _clips(small_corpus, "cat", "train")[:2]]

    def interrupted(device, on_audio, duration=None):
        for clip in clips:
            take = np.concatenate([clip, np.zeros(8000, np.float32)])
            for i in range(0, len(take), 800):
                on_audio(take[i:i + 800])
        return 3.0  # Ctrl-C: the stream ends before the room is recorded

    monkeypatch.setattr(kws.listen, "stream_microphone", interrupted)
    lines = []
    with pytest.raises(Stopped, match="2 take"):
        record("cat", 4, tmp_path / "cat", None, say=lines.append)
    assert len(list((tmp_path / "cat").glob("*.wav"))) == 2
    assert lines == ["1/4: say 'cat'", "2/4: say 'cat'", "3/4: say 'cat'"]


@needs_portaudio
def test_enrol_without_a_microphone_is_one_line(trained_run, tmp_path):
    r = kws("enroll", "cat", "--model", trained_run / "model.pt", "-o", tmp_path / "m.pt", env=_alsa_env(tmp_path))
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 2 and len(lines) == 1 and "no audio input device" in lines[0], r.stderr
