"""Metrics agree with scikit-learn, and evaluation of an exported model needs no TensorFlow."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, precision_recall_fscore_support

from tests.support.tiny_model import make_tiny_model
from trainer.evaluate import evaluate_folder
from trainer.metrics import classification_report, format_report


def test_report_matches_scikit_learn_including_an_absent_prediction() -> None:
    rng = np.random.default_rng(0)
    y_true = rng.integers(0, 3, 200)
    probs = rng.dirichlet([1, 1, 0.05], 200)  # class 2 is rarely predicted
    y_pred = probs.argmax(axis=1)
    report = classification_report(y_true, probs, ["a", "b", "c"])
    precision, recall, f1, support = precision_recall_fscore_support(y_true, y_pred, zero_division=0)
    assert report["accuracy"] == pytest.approx(accuracy_score(y_true, y_pred))
    assert report["macro_f1"] == pytest.approx(f1_score(y_true, y_pred, average="macro", zero_division=0))
    assert report["weighted_f1"] == pytest.approx(
        f1_score(y_true, y_pred, average="weighted", zero_division=0)
    )
    assert report["confusion"] == confusion_matrix(y_true, y_pred).tolist()
    for i, name in enumerate("abc"):
        row = report["per_class"][name]
        assert (row["precision"], row["recall"], row["f1"]) == pytest.approx((precision[i], recall[i], f1[i]))
        assert row["support"] == support[i]
    assert "macro F1" in format_report(report)


def test_evaluate_scores_an_exported_model_over_a_labelled_folder(tmp_path: Path) -> None:
    version_dir = make_tiny_model(tmp_path / "models")
    data = tmp_path / "data"
    for name, level in (("dark", 10), ("light", 245)):
        (data / name).mkdir(parents=True)
        for i in range(3):
            Image.new("RGB", (30 + i, 20), (level, level, level)).save(data / name / f"{i}.png")
    frames = [Image.new("RGB", (20, 20), (5, 5, 5)) for _ in range(2)]
    frames[0].save(data / "dark" / "two.tif", save_all=True, append_images=frames[1:])
    (data / "light" / "bad.jpg").write_bytes(b"\xff\xd8\xff" + b"\x00" * 8)
    report = evaluate_folder(data, version_dir, progress=False)
    assert report["n"] == 8 and report["accuracy"] == 1.0
    assert report["per_class"]["dark"]["support"] == 5
    assert report["confusion"] == [[5, 0], [0, 3]]
    assert [Path(u["path"]).name for u in report["unreadable"]] == ["bad.jpg"]
