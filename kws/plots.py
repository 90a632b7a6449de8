"""Pictures for people: training curves and confusion matrices, rendered headless (Agg)."""

from __future__ import annotations

from pathlib import Path


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def confusion_png(matrix: list[list[int]], labels: list[str], path: Path, title: str = "Confusion matrix") -> Path:
    import numpy as np

    plt = _pyplot()
    cm = np.asarray(matrix, dtype=float)
    share = cm / np.maximum(cm.sum(1, keepdims=True), 1)
    n = len(labels)
    size = max(4.5, 0.45 * n + 2)
    fig, ax = plt.subplots(figsize=(size + 1, size), dpi=100)
    im = ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(n), labels, rotation=60, ha="right", fontsize=8)
    ax.set_yticks(range(n), labels, fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    if n <= 16:
        for i in range(n):
            for j in range(n):
                if cm[i, j]:
                    ax.text(j, i, int(cm[i, j]), ha="center", va="center", fontsize=7,
                            color="white" if share[i, j] > 0.5 else "black")
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label="share of true class")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def stream_png(points: list[dict], path: Path, title: str = "Streaming", marked: float | None = None) -> Path:
    """The detector's trade-off: false rejects against false accepts per hour, one point per threshold."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 4.2), dpi=100)
    ordered = sorted(points, key=lambda p: p["fa_per_hour"])
    ax.plot([p["fa_per_hour"] for p in ordered], [1 - p["recall"] for p in ordered], marker=".", lw=1)
    if marked is not None:
        point = min(points, key=lambda p: abs(p["threshold"] - marked))
        ax.plot([point["fa_per_hour"]], [1 - point["recall"]], "o", color="tab:red",
                label=f"threshold {point['threshold']:g}")
        ax.legend()
    ax.set_xscale("symlog", linthresh=1.0)
    ax.set_xlabel("false accepts per hour")
    ax.set_ylabel("false-reject rate (keywords missed)")
    ax.set_ylim(0, 1)
    ax.grid(alpha=0.3)
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def curves_png(history: list[dict], path: Path, title: str = "Training") -> Path:
    plt = _pyplot()
    epochs = [r["epoch"] for r in history]
    fig, (loss_ax, acc_ax) = plt.subplots(1, 2, figsize=(10, 4), dpi=100)
    loss_ax.plot(epochs, [r["train_loss"] for r in history], "o-", label="training")
    loss_ax.plot(epochs, [r["val_loss"] for r in history], "o-", label="validation")
    loss_ax.set(xlabel="epoch", ylabel="loss", title="Loss")
    acc_ax.plot(epochs, [r["train_accuracy"] for r in history], "o-", label="training")
    acc_ax.plot(epochs, [r["val_accuracy"] for r in history], "o-", label="validation")
    acc_ax.set(xlabel="epoch", ylabel="accuracy", title="Accuracy", ylim=(0, 1.02))
    for ax in (loss_ax, acc_ax):
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def spectrogram_png(audio, frontend, path: Path, title: str = "") -> Path:
    """The waveform and, on the same time axis, the log-mel image exactly as `frontend` makes it."""
    import numpy as np
    import torch

    from .audio import SAMPLE_RATE, fit_length

    c = frontend.config
    if len(audio) < c.clip_samples:  # the model reads short clips padded to one window
        audio = fit_length(audio, c.clip_samples)
    with torch.no_grad():
        image = frontend(torch.from_numpy(np.ascontiguousarray(audio, dtype=np.float32)))[0, 0].numpy()
    seconds = len(audio) / SAMPLE_RATE
    first = c.n_fft / 2 / SAMPLE_RATE  # frame i is centred at first + i * hop
    hop = c.hop_length / SAMPLE_RATE
    plt = _pyplot()
    fig, (wave_ax, mel_ax) = plt.subplots(2, 1, figsize=(10, 5.5), dpi=100, sharex=True,
                                          gridspec_kw={"height_ratios": [1, 2]})
    step = max(1, len(audio) // 20000)  # plot at most ~20k points: fast, and it looks the same
    wave_ax.plot(np.arange(0, len(audio), step) / SAMPLE_RATE, audio[::step], lw=0.6, color="#1f4e79")
    wave_ax.set(ylabel="amplitude", ylim=(-1.05, 1.05), title=title or "Waveform and log-mel image")
    wave_ax.grid(alpha=0.3)
    extent = (first - hop / 2, first + (image.shape[1] - 0.5) * hop, 0, image.shape[0])
    im = mel_ax.imshow(image, origin="lower", aspect="auto", extent=extent, cmap="magma", interpolation="nearest")
    mel_ax.set(xlabel="time (s)", ylabel="mel band", xlim=(0, seconds))
    hz = _mel_band_hz(c)
    right = mel_ax.secondary_yaxis("right", functions=(lambda b: np.interp(b, np.arange(len(hz)) + 0.5, hz),
                                                       lambda f: np.interp(f, hz, np.arange(len(hz)) + 0.5)))
    right.set_ylabel("Hz")
    fig.colorbar(im, ax=[wave_ax, mel_ax], fraction=0.03, pad=0.08,
                 label="normalised log power" if c.norm != "none" else "log power")
    fig.savefig(path)
    plt.close(fig)
    return path


def _mel_band_hz(c):
    import librosa

    return librosa.mel_frequencies(n_mels=c.n_mels + 2, fmin=c.fmin, fmax=c.fmax)[1:-1]


def explain_png(e, path: Path, kind: str, per_layer: int = 8) -> Path:
    """Input, Grad-CAM, first-layer filters and each conv layer's most active feature maps."""
    import numpy as np
    from matplotlib.gridspec import GridSpec

    plt = _pyplot()
    audio = kind == "audio"
    cols = per_layer
    n_filters = min(len(e.filters), 2 * cols)
    filter_rows = -(-n_filters // cols)
    rows = 1 + filter_rows + len(e.feature_maps)
    heights = [3.2] + [0.8] * filter_rows + [1.2] * len(e.feature_maps)
    fig = plt.figure(figsize=(13, 1.25 * sum(heights)), dpi=100)
    grid = GridSpec(rows, cols, figure=fig, height_ratios=heights, hspace=0.95, wspace=0.15, top=0.93)
    aspect = "auto" if audio else "equal"
    origin = "lower" if audio else "upper"
    cmap = "magma" if audio else "gray"

    ax = fig.add_subplot(grid[0, :cols // 2])
    ax.imshow(e.image, origin=origin, aspect=aspect, cmap=cmap)
    ax.set_title("input as the network sees it", fontsize=10)
    if audio:
        ax.set(xlabel="frame (10 ms)", ylabel="mel band")
    ax = fig.add_subplot(grid[0, cols // 2:])
    ax.set_yticks([])
    if audio:
        ax.set_xlabel("frame (10 ms)")
    ax.imshow(e.image, origin=origin, aspect=aspect, cmap="gray")
    heat = ax.imshow(e.heat, origin=origin, aspect=aspect, cmap="jet", alpha=0.45, vmin=0, vmax=1)
    ax.set_title(f"Grad-CAM: where the evidence for '{e.target}' is", fontsize=10)
    fig.colorbar(heat, ax=ax, fraction=0.03, pad=0.02)

    limit = float(np.abs(e.filters).max()) or 1.0
    for i in range(n_filters):
        ax = fig.add_subplot(grid[1 + i // cols, i % cols])
        ax.imshow(e.filters[i], cmap="RdBu_r", vmin=-limit, vmax=limit)
        ax.set_xticks([]), ax.set_yticks([])
        if i == 0:
            ax.set_title(f"first-layer filters (3×3, {len(e.filters)} in all)", fontsize=9, loc="left")

    for layer, maps in enumerate(e.feature_maps):
        strongest = np.argsort(-maps.mean(axis=(1, 2)))[:cols]
        for j, ch in enumerate(strongest):
            ax = fig.add_subplot(grid[1 + filter_rows + layer, j])
            ax.imshow(maps[ch], origin=origin, aspect=aspect, cmap="viridis")
            ax.set_xticks([]), ax.set_yticks([])
            ax.set_xlabel(f"#{ch}", fontsize=7, labelpad=1)
            if j == 0:
                ax.set_title(f"conv {layer + 1}: {len(maps)} maps of {maps.shape[1]}×{maps.shape[2]}, "
                             f"the {len(strongest)} most active", fontsize=9, loc="left")
    top = "   ".join(f"{label} {p:.2f}" for label, p in e.prediction.top(3))
    fig.suptitle(f"{Path(e.prediction.file).name}:  {top}", fontsize=12)
    fig.savefig(path, bbox_inches="tight")
    plt.close(fig)
    return path
