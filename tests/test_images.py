"""The image side: IDX files, the MNIST download, digits training, classifying pictures."""

import gzip
import hashlib
import json
import struct

import numpy as np
import pytest
import torch
from PIL import Image

from kws.datasets.images import MNIST_FILES, download_mnist, load_digits, load_mnist, read_idx
from kws.errors import UserError

from .conftest import SHARED, kws


def idx_bytes(array: np.ndarray) -> bytes:
    return bytes([0, 0, 8, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape) + array.astype(np.uint8).tobytes()


def write_mnist(folder, n_train=20, n_test=10):
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    arrays = {"train-images-idx3-ubyte.gz": rng.integers(0, 256, (n_train, 28, 28)),
              "train-labels-idx1-ubyte.gz": rng.integers(0, 10, n_train),
              "t10k-images-idx3-ubyte.gz": rng.integers(0, 256, (n_test, 28, 28)),
              "t10k-labels-idx1-ubyte.gz": rng.integers(0, 10, n_test)}
    for name, array in arrays.items():
        (folder / name).write_bytes(gzip.compress(idx_bytes(array)))
    return arrays


def test_idx_reader_round_trip_and_corruptions(tmp_path):
    images = np.arange(2 * 28 * 28).reshape(2, 28, 28) % 256
    good = tmp_path / "good.gz"
    good.write_bytes(gzip.compress(idx_bytes(images)))
    np.testing.assert_array_equal(read_idx(good), images)
    raw = idx_bytes(images)
    cases = {"magic": b"\x01\x02" + raw[2:], "type": raw[:2] + b"\x0d" + raw[3:],
             "truncated": raw[:-100], "dims": raw[:3] + b"\x02" + raw[4:]}
    expected = {"magic": "bad magic", "type": "unsigned bytes", "truncated": "truncated or corrupt", "dims": "dimensions"}
    for name, data in cases.items():
        (tmp_path / name).write_bytes(data)
        with pytest.raises(UserError, match=expected[name]):
            read_idx(tmp_path / name)
    (tmp_path / "broken.gz").write_bytes(b"\x1f\x8b" + b"not gzip")
    with pytest.raises(UserError, match="cannot read"):
        read_idx(tmp_path / "broken.gz")


def test_mismatched_counts_are_named(tmp_path):
    folder = tmp_path / "mnist"
    write_mnist(folder)
    (folder / "t10k-labels-idx1-ubyte.gz").write_bytes(gzip.compress(idx_bytes(np.zeros(7))))
    with pytest.raises(UserError, match="10 images but .* 7 labels"):
        load_mnist(folder, val_size=5)


def test_real_mnist_files_load(tmp_path):
    folder = SHARED / "mnist"
    if not folder.is_dir():
        pytest.skip("real MNIST not found beside the repo")
    splits = load_mnist(folder)
    assert [len(s[1]) for s in (splits.train, splits.val, splits.test)] == [55000, 5000, 10000]
    assert splits.train[0].shape[1:] == (28, 28) and splits.train[0].dtype == torch.uint8


def test_download_from_a_local_server(tmp_path, http_server):
    www, base = http_server
    arrays = write_mnist(www)
    digests = {n: hashlib.sha256((www / n).read_bytes()).hexdigest() for n in MNIST_FILES}
    folder = download_mnist(tmp_path / "data", base, progress=False, digests=digests)
    splits = load_mnist(folder, val_size=5)
    np.testing.assert_array_equal(splits.test[0].numpy(), arrays["t10k-images-idx3-ubyte.gz"])
    # Through the command line, the official digests guard the download: these files are not MNIST.
    r = kws("download", "mnist", "--data-dir", tmp_path / "other", "--url", base)
    assert r.returncode == 1 and "checksum mismatch" in r.stderr and "Traceback" not in r.stderr
    assert not list((tmp_path / "other" / "mnist").glob("*-ubyte.gz"))


def test_digits_training_beats_90_percent(digits_run):
    metrics = json.loads((digits_run / "metrics.json").read_text())
    assert metrics["test_accuracy"] >= 0.90 and metrics["labels"] == [str(d) for d in range(10)]
    assert torch.load(digits_run / "model.pt", weights_only=True)["kind"] == "image"


def test_classify_pictures_in_both_polarities(digits_run, tmp_path):
    splits = load_digits()
    x, y = splits.test
    files, truth = [], []
    for i in range(12):
        big = np.asarray(Image.fromarray(x[i].numpy()).resize((112, 112), Image.BILINEAR))
        if i % 2:  # dark ink on white paper, as a colour photo
            img = Image.fromarray(255 - big).convert("RGB")
        else:
            img = Image.fromarray(big)
        path = tmp_path / f"digit{i}.{'jpg' if i % 3 == 0 else 'png'}"
        img.save(path)
        files.append(path)
        truth.append(str(int(y[i])))
    r = kws("classify", "--model", digits_run / "model.pt", "--json", *files)
    assert r.returncode == 0, r.stderr
    labels = [o["label"] for o in json.loads(r.stdout)]
    assert sum(a == b for a, b in zip(labels, truth)) >= 10, (labels, truth)
    light = [a == b for a, b, f in zip(labels, truth, files) if int(f.stem[5:]) % 2]
    assert sum(light) >= 5  # dark-on-light pictures are read as well as light-on-dark ones


def test_wrong_modality_is_one_clear_line(digits_run, trained_run, tmp_path, small_corpus):
    wav = sorted((small_corpus / "yes").glob("*.wav"))[0]
    r = kws("classify", "--model", digits_run / "model.pt", wav)
    assert r.returncode == 2 and "image model and the file is audio" in r.stderr
    png = tmp_path / "d.png"
    Image.fromarray(np.zeros((28, 28), np.uint8)).save(png)
    r = kws("classify", "--model", trained_run / "model.pt", png)
    assert r.returncode == 2 and "audio model and the file is an image" in r.stderr


def test_evaluate_on_digits(digits_run):
    r = kws("evaluate", "--model", digits_run / "model.pt", "--json")
    assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout)
    metrics = json.loads((digits_run / "metrics.json").read_text())
    assert abs(report["accuracy"] - metrics["test_accuracy"]) < 1e-9 and set(report["per_class"]) == set("0123456789")
    assert (digits_run / "confusion-digits-test.png").is_file()
