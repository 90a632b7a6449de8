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
