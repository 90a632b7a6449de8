"""Every error a user can cause ends in one clear line on stderr and exit code 2."""

import pytest

from .conftest import kws, shadowed


def _one_line(r) -> str:
    lines = r.stderr.strip().splitlines()
    assert "Traceback" not in r.stderr
    assert len(lines) == 1, r.stderr
    return lines[0]


@pytest.fixture(scope="module")
def model(trained_run):
    return trained_run / "model.pt"


def test_missing_audio_file(model, tmp_path):
    r = kws("classify", "--model", model, tmp_path / "nope.wav")
    assert r.returncode == 2 and "no such file" in _one_line(r)


def test_random_bytes_named_wav(model, tmp_path):
    bad = tmp_path / "noise.wav"
    bad.write_bytes(bytes(range(256)) * 20)
    r = kws("classify", "--model", model, bad)
    assert r.returncode == 2 and "not a readable audio file" in _one_line(r)


def test_bad_files_are_reported_and_good_ones_still_classified(model, small_corpus, tmp_path):
    good = sorted((small_corpus / "yes").glob("*.wav"))[0]
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    r = kws("classify", "--model", model, good, empty)
    assert r.returncode == 2
    assert "the file is empty" in _one_line(r) and str(good) in r.stdout


def test_missing_checkpoint(tmp_path, small_corpus):
    clip = sorted((small_corpus / "yes").glob("*.wav"))[0]
    r = kws("classify", "--model", tmp_path / "model.pt", clip)
    assert r.returncode == 2 and "no such checkpoint" in _one_line(r)


@pytest.mark.parametrize("text", ["hello", "127.0.0.1 localhost\n"])  # the second unpickles to a bad opcode
def test_not_a_checkpoint(tmp_path, small_corpus, text):
    fake = tmp_path / "model.pt"
    fake.write_text(text)
    clip = sorted((small_corpus / "yes").glob("*.wav"))[0]
    r = kws("classify", "--model", fake, clip)
    assert r.returncode == 2 and "not a kws checkpoint" in _one_line(r)
    assert "could run code" not in r.stderr


def test_no_trained_model_yet(tmp_path, small_corpus):
    clip = sorted((small_corpus / "yes").glob("*.wav"))[0]
    r = kws("classify", clip, env={"KWS_RUNS_DIR": str(tmp_path / "empty-runs")})
    assert r.returncode == 2 and "no trained model" in _one_line(r)


@pytest.mark.parametrize("args, words", [
    (["train", "--dataset", "nowhere-at-all"], "not speech-commands, synth"),
    (["train", "--dataset", "synth", "--model", "huge"], "chapter4 or wide"),
    (["train", "--dataset", "synth", "--resume"], "--resume needs --out"),
    (["train", "--dataset", "synth", "--augment", "loud"], "choose basic or acoustic"),
    (["train", "--dataset", "synth", "--norm", "band"], "choose utterance, channel-mean"),
])
def test_bad_training_options(args, words, tmp_path):
    r = kws(*args, "--data-dir", tmp_path)
    assert r.returncode == 2 and words in _one_line(r)


def test_unknown_word_and_task(small_corpus, tmp_path):
    folder = tmp_path / "clips" / "yes"  # (a folder of recordings: a synthetic corpus would build banana)
    folder.mkdir(parents=True)
    for wav in sorted((small_corpus / "yes").glob("*.wav"))[:3]:
        (folder / wav.name).write_bytes(wav.read_bytes())
    r = kws("train", "--dataset", folder.parent, "--words", "yes,banana", "--out", tmp_path / "r")
    assert r.returncode == 2 and "banana" in _one_line(r)
    r = kws("train", "--dataset", small_corpus, "--task", "7", "--out", tmp_path / "r")
    assert r.returncode == 2 and "unknown task" in _one_line(r)


def test_bad_usage_is_exit_2():
    assert kws("classify").returncode == 2
    assert kws("no-such-command").returncode == 2
    r = kws("train", "--dataset", "synth", "--members", "0")
    assert r.returncode == 2 and "--members" in r.stderr and "Traceback" not in r.stderr
    for option in (["--unknown-weight", "0.5"], ["--unknown-percent", "30"], ["--unknown-words"],
                   ["--unknown-each-epoch"], ["--reversed-words", "0.25"],
                   ["--spliced-words", "0.25"]):
        r = kws("train", "--dataset", "digits", *option)
        assert r.returncode == 2 and f"{option[0]}: digits has no _unknown_ class" in _one_line(r)


def test_help_teaches():
    r = kws("--help")
    assert r.returncode == 0
    for command in ("train", "classify", "evaluate", "synth", "download"):
        assert command in r.stdout
    r = kws("train", "--help")
    assert "--dataset" in r.stdout and "synth" in r.stdout


def test_without_pico_the_corpus_is_espeak_only_and_asking_for_it_is_one_line(tmp_path):
    """A machine without the kws[pico] extra: a stand-in `ttspico` that cannot be imported."""
    shadow = tmp_path / "shadow"
    shadow.mkdir()
    (shadow / "ttspico.py").write_text("raise ImportError('not built here')\n")
    env = shadowed(shadow)
    r = kws("synth", "--pico", "5", "--out", tmp_path / "c", env=env)
    assert r.returncode == 2 and 'pip install "kws[pico]"' in _one_line(r)
    r = kws("synth", "--per-word", "10", "--out", tmp_path / "c", env=env)
    assert r.returncode == 0, r.stderr
    assert "SVOX Pico is not installed" in r.stderr
    assert not list((tmp_path / "c").glob("*/pico*.wav")) and len(list((tmp_path / "c").glob("yes/*.wav"))) == 10


def test_an_unknown_training_device_is_refused_before_the_data_loads(tmp_path):
    r = kws("train", "--dataset", "digits", "--device", "tpu", "--epochs", "1", "--out", tmp_path / "run")
    # one line and nothing else: not the data's summary line, which loading would have printed first
    assert r.returncode == 2 and "--device tpu: use auto, cpu or cuda" in _one_line(r)
    assert not (tmp_path / "run").exists()
