"""Report plots (matplotlib, Agg): learning curves, confusion matrix, misclassified pages with CAM."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import cv2
import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.ticker import MaxNLocator

MAX_MISCLASSIFIED = 16


def plot_curves(history: list[dict[str, Any]], path: Path) -> None:
    """Accuracy and loss per epoch (training and validation); dashed lines mark phase changes."""
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    epochs = [row["epoch"] for row in history]
    for ax, key in zip(axes, ("accuracy", "loss"), strict=True):
        for prefix, label in (("", "training"), ("val_", "validation")):
            values = [row.get(prefix + key, np.nan) for row in history]
            ax.plot(epochs, values, marker="o", markersize=3, label=label)
        for prev, row in itertools.pairwise(history):
            if row["phase"] != prev["phase"]:
                ax.axvline(row["epoch"] - 0.5, color="grey", linestyle="--", linewidth=1)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_title(key)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_confusion(matrix: np.ndarray, class_names: list[str], path: Path) -> None:
    n = len(class_names)
    fig, ax = plt.subplots(figsize=(1.2 * n + 3, 1.2 * n + 2.5))
    ax.imshow(matrix, cmap="Blues")
    ax.set_xticks(range(n), class_names, rotation=45, ha="right")
    ax.set_yticks(range(n), class_names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    top = matrix.max() if matrix.size else 0
    for i in range(n):
        for j in range(n):
            colour = "white" if matrix[i, j] > top / 2 else "black"
            ax.text(j, i, str(int(matrix[i, j])), ha="center", va="center", color=colour)
    ax.set_title(f"validation confusion (n={int(matrix.sum())})")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def cam_overlay(image: np.ndarray, cam: np.ndarray, alpha: float = 0.45) -> np.ndarray:
    """An RGB uint8 image with the (h×w) CAM, scaled to 0..1 and upsampled, blended as a jet heat map."""
    cam = cam.astype(np.float32)
    cam = np.maximum(cam, 0.0)
    cam = cam / cam.max() if cam.max() > 0 else cam
    heat = cv2.resize(cam, (image.shape[1], image.shape[0]), interpolation=cv2.INTER_LINEAR)
    colour = (plt.get_cmap("jet")(heat)[..., :3] * 255.0).astype(np.float32)
    return np.clip((1 - alpha) * image.astype(np.float32) + alpha * colour, 0, 255).astype(np.uint8)


def plot_misclassified(
    examples, probs: np.ndarray, cams: np.ndarray, class_names: list[str], path: Path
) -> int:
    """Up to 16 misclassified validation images (most confident mistakes first) with the CAM of the
    predicted class; returns how many mistakes there were."""
    predicted = probs.argmax(axis=1) if len(probs) else np.zeros(0, int)
    wrong = np.flatnonzero(predicted != examples.labels)
    order = wrong[np.argsort(-probs[wrong, predicted[wrong]])] if len(wrong) else wrong
    shown = order[:MAX_MISCLASSIFIED]
    cols = 4
    rows = max(1, int(np.ceil(len(shown) / cols)))
    fig, axes = plt.subplots(rows, cols, figsize=(3 * cols, 3.3 * rows), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for ax, index in zip(axes.ravel(), shown, strict=False):
        pred = int(predicted[index])
        ax.imshow(cam_overlay(examples.images[index], cams[index, :, :, pred]))
        name = Path(examples.sources[index]).name
        page = f" p{examples.pages[index]}" if examples.pages[index] > 1 else ""
        true = class_names[int(examples.labels[index])]
        ax.set_title(
            f"{name[:22]}{page}\ntrue {true} → {class_names[pred]} {probs[index, pred]:.2f}", fontsize=8
        )
    if not len(shown):
        axes[0, 0].text(0.5, 0.5, "no misclassified validation images", ha="center", va="center")
    fig.suptitle(f"misclassified validation images: {len(wrong)} (CAM of the predicted class)")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return len(wrong)
