"""Classification metrics from labels and class scores (numpy only: evaluation needs no TensorFlow)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> np.ndarray:
    """Rows are true classes, columns predicted classes."""
    matrix = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(matrix, (np.asarray(y_true, np.int64), np.asarray(y_pred, np.int64)), 1)
    return matrix


def classification_report(
    y_true: np.ndarray, probs: np.ndarray, class_names: Sequence[str]
) -> dict[str, Any]:
    """Accuracy; precision, recall, F1 and support per class; macro and weighted averages; confusion."""
    y_true = np.asarray(y_true, np.int64)
    n_classes = len(class_names)
    y_pred = np.argmax(probs, axis=1) if len(y_true) else np.zeros(0, np.int64)
    matrix = confusion_matrix(y_true, y_pred, n_classes)
    per_class: dict[str, dict[str, float | int]] = {}
    for index, name in enumerate(class_names):
        tp = int(matrix[index, index])
        predicted = int(matrix[:, index].sum())
        support = int(matrix[index, :].sum())
        precision = tp / predicted if predicted else 0.0
        recall = tp / support if support else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        per_class[name] = {"precision": precision, "recall": recall, "f1": f1, "support": support}
    supports = np.array([per_class[n]["support"] for n in class_names], dtype=np.float64)
    present = supports > 0

    def average(key: str, weighted: bool) -> float:
        values = np.array([per_class[n][key] for n in class_names], dtype=np.float64)
        if weighted:
            return float((values * supports).sum() / supports.sum()) if supports.sum() else 0.0
        return float(values[present].mean()) if present.any() else 0.0

    n = len(y_true)
    return {
        "n": n,
        "accuracy": float((y_pred == y_true).mean()) if n else 0.0,
        "macro_f1": average("f1", False),
        "macro_precision": average("precision", False),
        "macro_recall": average("recall", False),
        "weighted_f1": average("f1", True),
        "weighted_precision": average("precision", True),
        "weighted_recall": average("recall", True),
        "per_class": per_class,
        "confusion": matrix.tolist(),
        "class_names": list(class_names),
    }


def format_report(report: dict[str, Any]) -> str:
    """A plain-text table of a :func:`classification_report` for people."""
    names = report["class_names"]
    width = max(12, *(len(n) for n in names))
    lines = [f"{'class':<{width}} precision  recall      f1  support"]
    for name in names:
        row = report["per_class"][name]
        scores = f"{row['precision']:9.4f} {row['recall']:7.4f} {row['f1']:7.4f}"
        lines.append(f"{name:<{width}} {scores} {row['support']:8d}")
    lines.append(f"accuracy {report['accuracy']:.4f}  macro F1 {report['macro_f1']:.4f}  n {report['n']}")
    lines.append("confusion (rows true, columns predicted): " + str(report["confusion"]))
    return "\n".join(lines)
