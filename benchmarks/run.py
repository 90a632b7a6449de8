"""Measure kws on this machine, each figure beside its reference, and write benchmarks/results.json.

    python benchmarks/run.py                  # everything (peers and MNIST take tens of minutes on 2 cores)
    python benchmarks/run.py --only stream    # one section: frontend, data, training, peak, peers, inference, onnx, int8,
                                              # scale, stream, mnist, quickstart (about 6 minutes)
    python benchmarks/run.py --only int8 --model runs/real/model.pt   # a trained model, float32 vs int8
    python benchmarks/run.py --smoke --only peak --out /tmp/r.json   # tiny sizes: checks it runs, measures nothing

Real clips and MNIST are read from ../shared/data (or --data); sections whose data is missing are
skipped with a note. Timings are wall-clock medians or percentiles over repeats, after a warm-up.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from kws.audio import load_audio  # noqa: E402
from kws.checkpoint import load_model, save_model  # noqa: E402
from kws.features import LogMel, PixelScale  # noqa: E402
from kws.model import TRAINING_PASSES, forward_flops, new_classifier  # noqa: E402
from kws.stream import DetectorConfig, StreamingDetector, detect_array  # noqa: E402

LABELS = ["_silence_", "_unknown_", "yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go"]


SMOKE = False  # --smoke: every size below shrunk to what proves a section runs (the tests use it)


def size(full: int, smoke: int) -> int:
    return smoke if SMOKE else full


def percentiles(seconds: list[float]) -> dict:
    ms = np.array(seconds) * 1000
    return {"p50_ms": round(float(np.percentile(ms, 50)), 3), "p99_ms": round(float(np.percentile(ms, 99)), 3)}


def real_clips(data: Path, n: int) -> np.ndarray:
    """Up to n real 1-s clips (float32), padded or cut to one second; noise if there are none."""
    files = sorted((data / "speech").glob("*/*.wav"))
    clips = [load_audio(f)[:16000] for f in files if not f.parent.name.startswith("_")][:n]
    clips = [np.pad(c, (0, 16000 - len(c))) for c in clips]
    if not clips:
        return np.random.default_rng(0).standard_normal((n, 16000)).astype(np.float32) * 0.1
    return np.stack([clips[i % len(clips)] for i in range(n)]).astype(np.float32)


def bench_frontend(data: Path) -> dict:
    import librosa

    frontend = LogMel()
    c = frontend.config
    batch = real_clips(data, 256)
    x = torch.from_numpy(batch)

    def ours() -> torch.Tensor:
        with torch.no_grad():
            return frontend.mel_power(x)

    def theirs() -> np.ndarray:
        return librosa.feature.melspectrogram(
            y=batch, sr=c.sample_rate, n_fft=c.n_fft, hop_length=c.hop_length, win_length=c.win_length,
            window="hann", center=False, power=2.0, n_mels=c.n_mels, fmin=c.fmin, fmax=c.fmax, htk=False)

    ours(), theirs()  # warm-up (librosa caches its filterbank)
    t_ours = min(_time(ours) for _ in range(20))  # the allocator settles after a few calls
    t_theirs = min(_time(theirs) for _ in range(3))
    a, b = ours().numpy(), theirs()
    rel = float(np.abs(a - b).max() / np.abs(b).max())
    return {"batch": 256, "kws_clips_per_s": round(256 / t_ours), "librosa_clips_per_s": round(256 / t_theirs),
            "speedup": round(t_theirs / t_ours, 1), "max_abs_diff_relative_to_peak": rel,
            "threads": torch.get_num_threads()}


def _time(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def bench_training(device: str) -> dict:
    """Training steps of each preset, frontend included, in float32 and, where the processor has
    it natively, in bfloat16 as `kws train` runs them (`train.autocast_dtype`)."""
    from kws.train import autocast_dtype, mixed

    out, dev, steps = {}, torch.device(device), size(20, 2)
    precisions = ["float32"] + (["bfloat16"] if autocast_dtype("auto", dev) else [])
    for preset in ("chapter4", "wide"):
        model = new_classifier(LogMel(), LABELS, preset).to(device).train()
        opt = torch.optim.Adam(model.parameters(), 1e-3)
        x = (torch.randn(64, 16000) * 3000).to(torch.int16).to(device)
        y = torch.randint(0, len(LABELS), (64,), device=device)
        out[preset] = {"params": sum(p.numel() for p in model.parameters())}
        for precision in precisions:
            dtype = autocast_dtype(precision, dev)

            def step() -> None:
                with mixed(dev, dtype):
                    logits = model(x)
                loss = torch.nn.functional.cross_entropy(logits.float(), y)
                opt.zero_grad()
                loss.backward()
                opt.step()
                if device == "cuda":
                    torch.cuda.synchronize()

            for _ in range(size(3, 1)):
                step()
            seconds = _time(lambda: [step() for _ in range(steps)])
            key = "samples_per_s" if precision == "float32" else f"samples_per_s_{precision}"
            out[preset][key] = round(64 * steps / seconds)
    return out


def bench_peak(data: Path) -> dict:
    """The machine's sustained fp32 rate (a large matrix product) against what the chapter-4 net's
    training reaches (FLOPs per sample × samples per second), on MNIST-sized and log-mel images,
    and where a log-mel training step's time goes."""
    from kws.augment import AugmentConfig, WaveAugment
    from kws.train import autocast_dtype

    n = size(2048, 256)
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    peak = 2 * n ** 3 / min(_time(lambda: a @ b) for _ in range(size(10, 2)))
    out: dict = {"matmul_gflops": round(peak / 1e9, 1), "threads": torch.get_num_threads()}
    if autocast_dtype("auto", torch.device("cpu")) is not None:  # the rate the recipes' bfloat16 nets aim at
        a16, b16 = a.bfloat16(), b.bfloat16()
        a16 @ b16
        out["matmul_gflops_bfloat16"] = round(2 * n ** 3 / min(_time(lambda: a16 @ b16) for _ in range(size(10, 2))) / 1e9, 1)
    batch = 64
    generator = torch.Generator().manual_seed(0)
    sides = {"mnist": (PixelScale(), (torch.rand(1024, 28, 28) * 255).round(), [str(i) for i in range(10)]),
             "log_mel": (LogMel(), torch.from_numpy((real_clips(data, size(256, 16)) * 32767).astype(np.int16)), LABELS)}
    for side, (frontend, inputs, labels) in sides.items():
        model = new_classifier(frontend, labels).train()
        flops = training_flops(model, 1)
        opt = torch.optim.Adam(model.parameters(), 3e-3)
        augment = WaveAugment(AugmentConfig(), None, generator) if side == "log_mel" else None
        parts = dict.fromkeys(("data", "augmentation", "frontend", "forward", "backward", "optimizer"), 0.0)
        steps, warm = size(40, 3), size(5, 1)
        for step in range(steps + warm):
            marks = [time.perf_counter()]
            rows = torch.randint(0, len(inputs), (batch,), generator=generator)
            x, y = inputs[rows], torch.randint(0, len(labels), (batch,), generator=generator)
            marks.append(time.perf_counter())
            x = augment(x) if augment else x
            marks.append(time.perf_counter())
            image = model.frontend(x)
            marks.append(time.perf_counter())
            loss = torch.nn.functional.cross_entropy(model.net(image), y)
            marks.append(time.perf_counter())
            opt.zero_grad()
            loss.backward()
            marks.append(time.perf_counter())
            opt.step()
            marks.append(time.perf_counter())
            if step >= warm:  # after a warm-up
                for name, start, end in zip(parts, marks, marks[1:]):
                    parts[name] += end - start
        total = sum(parts.values())
        samples_per_s = batch * steps / total
        out[side] = {"training_flops_per_sample": flops, "samples_per_s": round(samples_per_s),
                     "fraction_of_peak": round(samples_per_s * flops / peak, 4),
                     "step_ms": round(1000 * total / steps, 2),
                     "step_share": {k: round(v / total, 3) for k, v in parts.items()}}
    return out


def bench_peers(data: Path, epochs: int = 10, seeds: int = 3, batch: int = 64, lr: float = 1e-3) -> dict:
    """The book's network trained side by side in Keras 3 (TensorFlow backend) and in kws (its
    `ConvNet`, a plain PyTorch loop), on the same float images with the same batch size, Adam rate
    and epochs: the real MNIST, and the log-mel images of the offline corpus in ./data when one has
    been built. Each side trains in float32 and, where the processor has bfloat16, in mixed bfloat16
    (kws: `torch.autocast`, as `kws train` does there; Keras: its `mixed_bfloat16` policy).
    Each side trains once per seed, the two taking turns so that a slower spell of the machine
    falls on both; an epoch's time is the median over runs of each run's epochs after its first
    (the first pays for tracing and warm-up), and accuracy is given per seed, since one seed's
    accuracy moves by points (by several after two epochs)."""
    try:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        import keras
    except ImportError:
        return {"skipped": "keras / tensorflow-cpu are not installed (pip install -e '.[bench]')"}
    from kws.datasets import load_dataset
    from kws.datasets.images import load_mnist
    from kws.model import ConvNet, NetConfig
    from kws.train import autocast_dtype, mixed

    sets = {}
    mnist = load_mnist(data / "mnist")
    rows = size(len(mnist.train[1]), 256)
    sets["mnist"] = [(s[0][:n].float().unsqueeze(1) / 255, s[1][:n])
                     for s, n in ((mnist.train, rows), (mnist.test, size(len(mnist.test[1]), 256)))]
    corpora = sorted((ROOT / "data").glob("synth-*")) if not SMOKE else []
    if corpora:
        splits = load_dataset(str(corpora[0]), ROOT / "data", progress=False)
        frontend = LogMel().eval()
        with torch.no_grad():
            sets["log_mel"] = [(torch.cat([frontend(s[0][i:i + 512]) for i in range(0, len(s[0]), 512)]), s[1])
                               for s in (splits.train, splits.test)]
    epochs, seeds = size(epochs, 1), size(seeds, 1)
    native = autocast_dtype("auto", torch.device("cpu")) is not None
    out: dict = {"epochs": epochs, "seeds": seeds, "batch_size": batch, "lr": lr, "optimizer": "Adam",
                 "keras": keras.__version__, "native_bfloat16": native}

    def train_kws(x, y, xt, yt, precision: str, seed: int) -> tuple[list[float], float]:
        height, width = x.shape[2:]
        torch.manual_seed(seed)
        net = ConvNet(NetConfig(height, width, int(y.max()) + 1)).train()
        opt = torch.optim.Adam(net.parameters(), lr)
        dtype = autocast_dtype(precision, torch.device("cpu"))
        seconds = []
        for _ in range(epochs):
            order = torch.randperm(len(x))
            start = time.perf_counter()
            for i in range(0, len(x), batch):
                rows = order[i:i + batch]
                with mixed(torch.device("cpu"), dtype):
                    logits = net(x[rows])
                loss = torch.nn.functional.cross_entropy(logits.float(), y[rows])
                opt.zero_grad()
                loss.backward()
                opt.step()
            seconds.append(time.perf_counter() - start)
        with torch.no_grad():
            return seconds, float((net.eval()(xt).argmax(1) == yt).float().mean())

    def train_keras(x, y, xt, yt, precision: str, seed: int) -> tuple[list[float], float]:
        # the same layers, channels last as Keras wants them
        height, width = x.shape[2:]
        keras.mixed_precision.set_global_policy("mixed_bfloat16" if precision == "bfloat16" else "float32")
        keras.utils.set_random_seed(seed)
        model = keras.Sequential([
            keras.Input((height, width, 1)),
            keras.layers.Conv2D(16, 3, activation="relu"), keras.layers.MaxPooling2D(2),
            keras.layers.Conv2D(32, 3, activation="relu"), keras.layers.MaxPooling2D(2),
            keras.layers.Conv2D(32, 3, activation="relu"),
            keras.layers.Flatten(), keras.layers.Dense(64, activation="relu"),
            keras.layers.Dense(int(y.max()) + 1, dtype="float32")])
        model.compile(keras.optimizers.Adam(lr), keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                      metrics=["accuracy"])
        times = []

        class Timer(keras.callbacks.Callback):
            def on_epoch_begin(self, epoch, logs=None):
                self.start = time.perf_counter()

            def on_epoch_end(self, epoch, logs=None):
                times.append(time.perf_counter() - self.start)

        xk, xtk = x.permute(0, 2, 3, 1).numpy(), xt.permute(0, 2, 3, 1).numpy()
        model.fit(xk, y.numpy(), batch_size=batch, epochs=epochs, shuffle=True, verbose=0, callbacks=[Timer()])
        accuracy = float(model.evaluate(xtk, yt.numpy(), batch_size=512, verbose=0)[1])
        keras.mixed_precision.set_global_policy("float32")
        return times, accuracy

    def epoch_seconds(runs: list[list[float]]) -> float:
        return statistics.median(statistics.median(t[1:] or t) for t in runs)

    for name, ((x, y), (xt, yt)) in sets.items():
        row: dict = {"train_images": len(x)}
        # (bfloat16 only where the processor computes it: emulated, both sides crawl, and neither
        # library would pick it there)
        for precision in ("float32", "bfloat16") if native else ("float32",):
            ours, theirs = [], []
            for seed in range(seeds):
                ours.append(train_kws(x, y, xt, yt, precision, seed))
                theirs.append(train_keras(x, y, xt, yt, precision, seed))
            a, b = epoch_seconds([t for t, _ in ours]), epoch_seconds([t for t, _ in theirs])
            row[precision] = {"kws_seconds_per_epoch": round(a, 2), "keras_seconds_per_epoch": round(b, 2),
                              "kws_test_accuracy": round(statistics.mean(acc for _, acc in ours), 4),
                              "keras_test_accuracy": round(statistics.mean(acc for _, acc in theirs), 4),
                              "kws_test_accuracy_by_seed": [round(acc, 4) for _, acc in ours],
                              "keras_test_accuracy_by_seed": [round(acc, 4) for _, acc in theirs],
                              "keras_over_kws_time": round(b / a, 2)}
        # what each does by default: kws trains in bfloat16 where the processor has it, Keras in float32
        row["defaults"] = {"kws": "bfloat16" if native else "float32", "keras": "float32",
                           "keras_over_kws_time": round(row["float32"]["keras_seconds_per_epoch"]
                                                        / row["bfloat16" if native else "float32"]["kws_seconds_per_epoch"], 2)}
        out[name] = row
    return out


def bench_inference(data: Path) -> dict:
    model = new_classifier(LogMel(), LABELS).eval()
    clip = torch.from_numpy(real_clips(data, 1)[0])
    times = []
    with torch.no_grad():
        for i in range(220):
            start = time.perf_counter()
            model.probabilities(clip[None])
            if i >= 20:
                times.append(time.perf_counter() - start)
    out = {"one_clip": percentiles(times)}
    with tempfile.TemporaryDirectory() as tmp:  # the cold command: interpreter, imports, load, classify
        ckpt, wav = Path(tmp) / "model.pt", Path(tmp) / "clip.wav"
        save_model(model, ckpt)
        import soundfile as sf

        sf.write(wav, clip.numpy(), 16000)
        cmd = [sys.executable, "-m", "kws", "classify", "--model", str(ckpt), str(wav)]
        walls = [_time(lambda: subprocess.run(cmd, capture_output=True, check=True, cwd=ROOT)) for _ in range(3)]
        help_walls = [_time(lambda: subprocess.run([sys.executable, "-m", "kws", "--help"], capture_output=True,
                                                   check=True, cwd=ROOT)) for _ in range(3)]
    out["cold_classify_s"] = round(statistics.median(walls), 3)
    out["cold_help_s"] = round(statistics.median(help_walls), 3)
    return out


def bench_stream(data: Path) -> dict:
    """Per-hop cost of the live detector (one window per hop) and the batched file scan's speed."""
    model = new_classifier(LogMel(), LABELS).eval()
    rng = np.random.default_rng(0)
    audio = np.concatenate([real_clips(data, 30).reshape(-1), 0.01 * rng.standard_normal(16000 * 30)])
    audio = audio.astype(np.float32)
    detector = StreamingDetector(model, DetectorConfig(hop_ms=100))
    hop = detector.hop
    hops = []
    for start in range(0, len(audio) - hop + 1, hop):  # the microphone delivers one hop at a time
        t = time.perf_counter()
        detector.feed(audio[start:start + hop])
        hops.append(time.perf_counter() - t)
    hops = hops[20:]
    per_hop = percentiles(hops)
    seconds = len(audio) / 16000
    scan = min(_time(lambda: detect_array(model, audio)) for _ in range(3))
    return {"hop_ms": 100, **{f"per_hop_{k}": v for k, v in per_hop.items()},
            "live_real_time_factor": round(sum(hops) / (len(hops) * 0.1), 4),
            "file_scan_audio_seconds": round(seconds, 1),
            "file_scan_x_real_time": round(seconds / scan, 1)}


def bench_data(data: Path) -> dict:
    """Load a corpus in the Speech Commands layout with a cold and a warm decoded-clip cache, and
    time one pass over the training set as an epoch reads it (batches gathered from the array)."""
    import shutil

    from kws.datasets import load_dataset
    from kws.datasets.cache import cache_dir
    from kws.datasets.synth import SynthConfig, default_root

    data_dir = ROOT / "data"
    load_dataset("synth", data_dir, progress=False)  # builds the corpus if needed (not timed)
    root = default_root(data_dir, SynthConfig())
    before = os.environ.get("KWS_CACHE_DIR")
    os.environ["KWS_CACHE_DIR"] = tempfile.mkdtemp(prefix="kws-bench-cache-")  # cold: an empty cache

    def load_and_epoch() -> tuple[float, float, int]:
        start = time.perf_counter()
        splits = load_dataset("synth", data_dir, progress=False)
        loaded = time.perf_counter() - start
        x = splits.train[0]
        order = torch.randperm(len(x))
        start = time.perf_counter()
        for i in range(0, len(x), 64):
            x[order[i:i + 64]].float()
        return loaded, time.perf_counter() - start, len(x) + len(splits.val[0]) + len(splits.test[0])

    try:
        cold_load, cold_epoch, clips = load_and_epoch()
        warm_load, warm_epoch, _ = load_and_epoch()
    finally:
        shutil.rmtree(cache_dir(), ignore_errors=True)
        if before is None:
            del os.environ["KWS_CACHE_DIR"]
        else:
            os.environ["KWS_CACHE_DIR"] = before
    return {"corpus": root.name, "clips": clips, "cold_load_s": round(cold_load, 2),
            "warm_load_s": round(warm_load, 2), "load_speedup": round(cold_load / warm_load, 1),
            "epoch_data_pass_cold_s": round(cold_epoch, 3), "epoch_data_pass_warm_s": round(warm_epoch, 3)}


def bench_onnx(data: Path) -> dict:
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return {"skipped": "onnxruntime is not installed (pip install 'kws[export]')"}
    from kws.export import OnnxClassifier, export

    model = new_classifier(LogMel(), LABELS).eval()
    clips = torch.from_numpy(real_clips(data, 64))
    with tempfile.TemporaryDirectory() as tmp:
        path = export(model, Path(tmp) / "model.onnx", "onnx")
        onnx_model = OnnxClassifier(path)
        diff = float((onnx_model.probabilities(clips) - model.probabilities(clips)).abs().max())
        one = clips[:1]
        times = []
        for i in range(220):
            start = time.perf_counter()
            onnx_model.probabilities(one)
            if i >= 20:
                times.append(time.perf_counter() - start)
        batch = min(_time(lambda: onnx_model.probabilities(clips)) for _ in range(5))
        batch_torch = min(_time(lambda: model.probabilities(clips)) for _ in range(5))
    return {"one_clip": percentiles(times), "max_abs_diff_vs_pytorch": diff,
            "batch64_clips_per_s": round(64 / batch), "pytorch_batch64_clips_per_s": round(64 / batch_torch)}


def bench_int8(data: Path, model_path: Path | None = None, dataset: Path | None = None) -> dict:
    """A trained model exported as float32 and as int8 ONNX: size, test-split accuracy, one-clip and
    per-hop latency, and the per-hop cost on one thread (a Raspberry-Pi-class budget)."""
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return {"skipped": "onnxruntime is not installed (pip install 'kws[export]')"}
    if model_path is None or not model_path.is_file():
        return {"skipped": "needs --model: a trained audio model.pt (e.g. the real recipe's)"}
    from kws.evaluate import model_split
    from kws.export import OnnxClassifier, export

    model, meta = load_model(model_path)
    dataset = dataset or Path(meta["dataset"])
    _, x, y = model_split(model, meta, str(dataset), data, "test")
    n = size(len(y), 64)
    x, y = x[:n], y[:n]
    audio = np.concatenate([real_clips(data, size(30, 4)).reshape(-1)]).astype(np.float32)
    out = {"model": str(model_path), "dataset": str(dataset), "test_clips": len(y)}

    def measure(run) -> tuple[dict, torch.Tensor]:
        probs = torch.cat([run.probabilities(x[i:i + 256]) for i in range(0, len(x), 256)])
        one = [_time(lambda: run.probabilities(x[:1])) for _ in range(size(220, 12))][size(20, 2):]
        result = {"test_accuracy": round(float((probs.argmax(1) == y).float().mean()), 4),
                  "one_clip": percentiles(one), "per_hop": _per_hop(run, audio)}
        return result, probs

    with tempfile.TemporaryDirectory() as tmp:
        f32 = export(model, Path(tmp) / "model.onnx", "onnx")
        i8 = export(model, Path(tmp) / "model.int8.onnx", "onnx", quantize="int8")
        out["size_kb"] = {"float32": round(f32.stat().st_size / 1024), "int8": round(i8.stat().st_size / 1024)}
        out["pytorch"], torch_probs = measure(model)
        out["onnx_float32"], _ = measure(OnnxClassifier(f32))
        out["onnx_int8"], int8_probs = measure(OnnxClassifier(i8))
        out["int8_agrees_with_pytorch"] = round(float((int8_probs.argmax(1) == torch_probs.argmax(1)).float().mean()), 4)
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            out["one_thread_per_hop"] = {"pytorch": _per_hop(model, audio),
                                         "onnx_float32": _per_hop(OnnxClassifier(f32, threads=1), audio),
                                         "onnx_int8": _per_hop(OnnxClassifier(i8, threads=1), audio)}
        finally:
            torch.set_num_threads(threads)
    return out


def _per_hop(model, audio: np.ndarray) -> dict:
    """The live detector's cost per 100-ms hop: feed one hop at a time, as a microphone does."""
    detector = StreamingDetector(model, DetectorConfig(hop_ms=100))
    hop = detector.hop
    times = [_time(lambda: detector.feed(audio[s:s + hop])) for s in range(0, len(audio) - hop + 1, hop)]
    return percentiles(times[size(20, 2):])


def bench_mnist(data: Path, precision: str | None = None) -> dict:
    """One epoch of the `mnist` recipe, trained as `kws train --recipe mnist --epochs 1` trains it
    (`precision`: the recipe's own, else this one)."""
    from kws.recipes import resolve
    from kws.train import run

    if not (data / "mnist").is_dir():
        return {"skipped": f"no MNIST files under {data / 'mnist'}"}
    dataset, recipe = resolve(None, "mnist", epochs=1, precision=precision)
    with tempfile.TemporaryDirectory() as tmp:
        metrics = run(dataset, recipe, Path(tmp), data_dir=data, device="cpu", progress=False)
    return {"epochs": 1, "seconds_per_epoch": metrics["train_seconds"], "test_accuracy": metrics["test_accuracy"],
            "train_samples": metrics["samples"]["train"], "autocast": metrics["autocast"]}


def bench_quickstart(data: Path) -> dict:
    """The quick start from an empty data folder (`kws train --dataset synth`: the corpus built, two
    nets trained, the threshold calibrated) against one MNIST epoch of the chapter-4 net in the
    same run: machines differ by 2x, so the ratio is the figure. The yardstick epoch is float32, as
    when the ratio was first taken, so that it measures the machine and not kws's own levers."""
    mnist = bench_mnist(data, precision="float32")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        command = [sys.executable, "-m", "kws", "train", "--dataset", "synth", "--data-dir", str(root / "data"),
                   "--out", str(root / "run")]
        start = time.perf_counter()
        done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT,
                              env={**os.environ, "KWS_CACHE_DIR": str(root / "cache")})
        wall = time.perf_counter() - start
        if done.returncode != 0:
            return {"failed": done.stderr.strip().splitlines()[-1:]}
        metrics = json.loads((root / "run" / "metrics.json").read_text())
        flops = training_flops(load_model(root / "run" / "model.pt")[0], metrics["samples"]["train"] * metrics["epochs"])
    out = {"command": "kws train --dataset synth (empty data folder, empty clip cache)",
           "wall_seconds": round(wall, 1), "train_seconds": metrics["train_seconds"],
           "corpus_and_calibration_seconds": round(wall - metrics["train_seconds"], 1),
           "test_accuracy": metrics["test_accuracy"], "train_tflops": round(flops / 1e12, 2)}
    if "seconds_per_epoch" in mnist:
        out["mnist_epoch_seconds"] = mnist["seconds_per_epoch"]
        out["ratio_to_mnist_epoch"] = round(wall / mnist["seconds_per_epoch"], 1)
        # The ratio the training alone would have at the MNIST epoch's rate of arithmetic, the
        # corpus built in no time: what the quick start's nets, images and epochs cost.
        mnist_net = new_classifier(PixelScale(), [str(i) for i in range(10)])
        out["train_flops_ratio_to_mnist_epoch"] = round(flops / training_flops(mnist_net, mnist["train_samples"]), 1)
    return out


def training_flops(model, samples: int) -> int:
    """Floating-point operations of training `model` (every member) on `samples` images."""
    return TRAINING_PASSES * forward_flops(model.net, *model.frontend.image_shape) * samples


def bench_scale(data: Path) -> dict:
    """The `speech-commands` recipe at the full dataset's size: one epoch over as many training
    clips as Speech Commands v0.02 has for the 12-class task (about 85,000; `$KWS_SCALE_CLIPS`),
    here noise and tones made in memory, so the figure is the trainer's cost, not the disk's."""
    from kws.datasets import Splits
    from kws.recipes import resolve
    from kws.train import run

    n = int(os.environ.get("KWS_SCALE_CLIPS", 85_000))
    labels = ["_silence_", "_unknown_", "yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go"]
    gen = torch.Generator().manual_seed(0)
    y = torch.randint(0, len(labels), (n,), generator=gen)
    t = torch.arange(16000) / 16000
    x = (3000 * torch.sin(2 * torch.pi * (200 + 100 * y).unsqueeze(1) * t) +
         300 * torch.randn(n, 16000, generator=gen)).to(torch.int16)
    small = slice(0, max(1, n // 100))
    splits = Splits("scale", "audio", labels, (x, y), (x[small], y[small]), (x[small], y[small]),
                    noise=torch.randn(16000 * 30, generator=gen) * 0.1)
    _, recipe = resolve("speech-commands")
    with tempfile.TemporaryDirectory() as tmp:
        metrics = run(splits, replace(recipe, epochs=1), Path(tmp), data_dir=data, progress=False)
    epoch, rows = metrics["train_seconds"], metrics["samples"]["train"]  # (rows: with any the recipe adds)
    return {"recipe": recipe.name, "train_clips": n, "train_rows": rows, "seconds_per_epoch": round(epoch, 1),
            "rows_per_second": round(rows / epoch), "projected_run_minutes": round(epoch * recipe.epochs / 60, 1),
            "epochs": recipe.epochs, "members": recipe.members}


SECTIONS = {"frontend": bench_frontend, "data": bench_data, "training": None, "peak": bench_peak, "peers": bench_peers,
            "inference": bench_inference,
            "onnx": bench_onnx, "int8": bench_int8, "stream": bench_stream, "mnist": bench_mnist, "scale": bench_scale,
            "quickstart": bench_quickstart}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", choices=list(SECTIONS), action="append")
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results.json")
    parser.add_argument("--model", type=Path, default=None, help="int8: the trained model to quantize")
    parser.add_argument("--dataset", type=Path, default=None, help="int8: whose test split [default: the model's]")
    # (ten: after two, accuracy still says more about the starting weights than about the library)
    parser.add_argument("--epochs", type=int, default=10, help="peers: epochs each side trains")
    parser.add_argument("--seeds", type=int, default=3, help="peers: seeds each side trains, the two taking turns")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes: proves the sections run, measures nothing")
    args = parser.parse_args()
    global SMOKE
    SMOKE = args.smoke
    torch.manual_seed(0)
    machine = {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
               "torch": torch.__version__, "threads": torch.get_num_threads(),
               "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None}
    results: dict = {"machine": machine}
    for name in args.only or list(SECTIONS):
        print(f"… {name}", file=sys.stderr, flush=True)
        if name == "training":
            results[name] = {"cpu": bench_training("cpu")}
            if torch.cuda.is_available():
                results[name]["cuda"] = bench_training("cuda")
        elif name == "int8":
            results[name] = bench_int8(args.data, args.model, args.dataset)
        elif name == "peers":
            results[name] = bench_peers(args.data, epochs=args.epochs, seeds=args.seeds)
        else:
            results[name] = SECTIONS[name](args.data)
    if args.out.exists() and args.only:  # a partial run updates its own sections only
        results = {**json.loads(args.out.read_text()), **results}
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    for section, values in results.items():
        print(f"\n{section}")
        for key, value in _flat(values):
            print(f"  {key:<36} {value}")
    print(f"\nwritten to {args.out}")


def _flat(values, prefix: str = ""):
    if not isinstance(values, dict):
        yield prefix, values
        return
    for k, v in values.items():
        yield from _flat(v, f"{prefix}.{k}" if prefix else k)


if __name__ == "__main__":
    main()
