"""`kws export`: the frontend travels inside the file, and the export hears what PyTorch hears."""

import json
import re

import numpy as np
import pytest
import soundfile as sf

from .conftest import kws


def _clips(small_corpus, tmp_path, n=6):
    names = [p for p in (small_corpus / "testing_list.txt").read_text().split()
             if p.split("/")[0] in ("yes", "no", "stop")][::7][:n]
    folder = tmp_path / "clips"
    folder.mkdir()
    files = []
    for name in names:
        clip, _ = sf.read(small_corpus / name, dtype="float32")
        path = folder / name.replace("/", "-")
        sf.write(path, clip, 16000)
        files.append(path)
    return folder, files


@pytest.mark.parametrize("fmt", ["onnx", "torchscript"])
def test_export_matches_pytorch(trained_run, small_corpus, tmp_path, fmt):
    pytest.importorskip("onnxruntime" if fmt == "onnx" else "torch")
    folder, files = _clips(small_corpus, tmp_path)
    out = tmp_path / ("m.onnx" if fmt == "onnx" else "m.ts.pt")
    r = kws("export", "--format", fmt, "--model", trained_run / "model.pt", "-o", out, "--check", folder)
    assert r.returncode == 0, r.stderr
    diff = float(re.search(r"largest probability difference from PyTorch on \d+ clips.*: (\S+)", r.stdout).group(1))
    assert diff < 1e-4 and out.stat().st_size > 100_000
    if fmt == "torchscript":
        import torch

        scripted = torch.jit.load(str(out))
        probs = scripted(torch.from_numpy(np.stack([sf.read(f, dtype="float32")[0] for f in files])))
        assert torch.allclose(probs.sum(1), torch.ones(len(files)), atol=1e-5)
        return
    # The exported file classifies on its own (onnxruntime), as the checkpoint does.
    by_onnx = json.loads(kws("classify", "--model", out, "--json", *files).stdout)
    by_torch = json.loads(kws("classify", "--model", trained_run / "model.pt", "--json", *files).stdout)
    assert [o["label"] for o in by_onnx] == [o["label"] for o in by_torch]
    assert max(abs(a["probability"] - b["probability"]) for a, b in zip(by_onnx, by_torch)) < 1e-4
    # The calibrated streaming threshold travels in the file, so detect and listen fire as on the checkpoint.
    from kws.checkpoint import load_any, read

    threshold = read(trained_run / "model.pt")["calibration"]["threshold"]
    assert load_any(out)[1]["calibration"]["threshold"] == threshold
    long = tmp_path / "long.wav"
    sf.write(long, np.concatenate([sf.read(f, dtype="float32")[0] for f in files]), 16000)
    found = [[(d["time"], d["label"]) for d in map(json.loads, kws("detect", "--model", m, "--json", long).stdout.splitlines())]
             for m in (out, trained_run / "model.pt")]
    assert found[0] == found[1]
    r = kws("evaluate", "--model", out)  # (a command that needs the checkpoint says so)
    assert r.returncode == 2 and "an ONNX export" in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_a_bad_onnx_file_is_one_line(tmp_path, small_corpus):
    pytest.importorskip("onnxruntime")
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a model")
    clip = sorted((small_corpus / "yes").glob("*.wav"))[0]
    r = kws("classify", "--model", bad, clip)
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr


def test_image_models_are_not_exported(digits_run):
    r = kws("export", "--format", "onnx", "--model", digits_run / "model.pt")
    assert r.returncode == 2 and "audio models" in r.stderr


def test_a_time_pooled_ensemble_exports_and_hears_the_same(small_corpus, tmp_path):
    """The quick start's net (two members, `--time-pool`): its extra max-pool goes into the file too."""
    pytest.importorskip("onnxruntime")
    import torch

    from kws.checkpoint import save_model
    from kws.features import LogMel, LogMelConfig
    from kws.model import new_classifier

    torch.manual_seed(0)
    model = new_classifier(LogMel(LogMelConfig(norm="channel-mean")), ["yes", "no", "stop"], members=2, time_pool=True)
    save_model(model, tmp_path / "model.pt")
    folder, _ = _clips(small_corpus, tmp_path)
    r = kws("export", "--format", "onnx", "--model", tmp_path / "model.pt", "-o", tmp_path / "m.onnx", "--check", folder)
    assert r.returncode == 0, r.stderr
    diff = float(re.search(r"largest probability difference from PyTorch on \d+ clips.*: (\S+)", r.stdout).group(1))
    assert diff < 1e-4


def test_an_int8_export_is_smaller_runs_on_its_own_and_agrees_with_float(trained_run, small_corpus, tmp_path):
    pytest.importorskip("onnxruntime")
    folder, files = _clips(small_corpus, tmp_path, n=12)
    f32, i8 = tmp_path / "m.onnx", tmp_path / "m.int8.onnx"
    assert kws("export", "--format", "onnx", "--model", trained_run / "model.pt", "-o", f32).returncode == 0
    r = kws("export", "--format", "onnx", "--quantize", "int8", "--model", trained_run / "model.pt", "-o", i8,
            "--check", folder)
    assert r.returncode == 0, r.stderr
    agree = float(re.search(r"the same top label on (\S+)%", r.stdout).group(1))
    diff = float(re.search(r"largest probability difference from PyTorch on \d+ clips.*: (\S+);", r.stdout).group(1))
    assert agree >= 90 and 1e-6 < diff < 0.2  # int8 is not float: close, not equal
    assert i8.stat().st_size < 0.9 * f32.stat().st_size
    by_int8 = json.loads(kws("classify", "--model", i8, "--json", *files).stdout)
    by_torch = json.loads(kws("classify", "--model", trained_run / "model.pt", "--json", *files).stdout)
    same = sum(a["label"] == b["label"] for a, b in zip(by_int8, by_torch))
    assert same >= len(files) - 1, (by_int8, by_torch)
    r = kws("export", "--format", "torchscript", "--quantize", "int8", "--model", trained_run / "model.pt")
    assert r.returncode == 2 and "goes with --format onnx" in r.stderr
