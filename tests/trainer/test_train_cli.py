"""`docsort train` and `docsort evaluate` as a user runs them: real subprocesses on generated images."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx

from schema.manifest import REVIEW_ALL, load_manifest, sha256_file
from tests.trainer.synthetic import make_folder

REPORT_FILES = {
    "history.csv",
    "curves.png",
    "confusion.png",
    "misclassified.png",
    "val_scores.json",
    "split.json",
    "metrics.json",
    "unreadable.json",
}


def docsort(*args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "TF_CPP_MIN_LOG_LEVEL": "3",
        "DOCSORT_TF_THREADS": "1",
        "DOCSORT_LOG_LEVEL": "WARNING",
    }
    return subprocess.run(
        [sys.executable, "-m", "docsort.cli", *args], capture_output=True, text=True, env=env, timeout=400
    )


def test_train_with_a_corrupt_image_publishes_a_complete_version_and_lists_it(tmp_path: Path) -> None:
    data = make_folder(tmp_path / "data", per_class=14, seed=1)
    (data / "text" / "torn.jpg").write_bytes(b"\xff\xd8\xff\xe0" + b"\x00" * 40)
    models = tmp_path / "models"
    out = docsort("train", str(data), "--models-dir", str(models), "--name", "tiny", "--image-size", "32",
                  "--epochs", "2", "--auto-accuracy", "0.9", "--confidence", "0.8", "-q")  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]
    version_dir = Path(out.stdout.strip().splitlines()[-1])
    assert version_dir.parent == models / "tiny" and re.fullmatch(r"\d{8}-\d{6}", version_dir.name)
    assert sorted(p.name for p in (models / "tiny").iterdir()) == [version_dir.name]  # no leftovers

    manifest = load_manifest(version_dir)  # verifies the sha256 too
    assert manifest.sha256 == sha256_file(version_dir / "model.onnx")
    assert manifest.version == version_dir.name and manifest.name == "tiny"
    assert manifest.backbone == "small-cnn" and manifest.class_names == ["picture", "text"]
    spec = manifest.input
    assert (spec.height, spec.width, spec.resize, spec.pad_value, spec.dtype) == (
        32,
        32,
        "letterbox",
        255,
        "float32",
    )
    assert manifest.temperature > 0  # set by calibration
    # 6 validation pages cannot show 90% with 80% confidence (it takes 16 right): all go to review.
    guarantee = manifest.thresholds.guarantee
    assert guarantee is not None and (guarantee.target, guarantee.confidence_level) == (0.9, 0.8)
    assert (guarantee.n_calibration, guarantee.n_auto, guarantee.lower_bound) == (6, 0, None)
    assert manifest.thresholds.confidence == REVIEW_ALL
    assert manifest.cam_shape == [4, 4]  # the small CNN keeps stride 8
    assert manifest.training.split_seed == 42 and manifest.training.val_fraction == 0.2
    assert manifest.training.extra["unreadable"] == 1
    assert (
        0.0 <= manifest.metrics["accuracy"] <= 1.0
        and manifest.metrics["parity"]["max_abs_probs_diff"] <= 1e-4
    )

    report = version_dir / "report"
    assert {p.name for p in report.iterdir()} >= REPORT_FILES
    unreadable = json.loads((report / "unreadable.json").read_text())
    assert [Path(u["path"]).name for u in unreadable] == ["torn.jpg"] and unreadable[0]["reason"]
    assert "torn.jpg" in out.stderr  # the skipped file is named as it happens
    scores = json.loads((report / "val_scores.json").read_text())
    assert len(scores["probs"]) == len(scores["labels"]) == manifest.metrics["n"] == 6
    assert np.allclose(np.asarray(scores["probs"]).sum(axis=1), 1.0, atol=1e-5)
    split = json.loads((report / "split.json").read_text())
    assert len(split["val"]) == 6 and not set(split["val"]) & set(split["train"])
    history = (report / "history.csv").read_text().splitlines()
    assert history[0].startswith("phase,epoch") and len(history) == 3

    graph = onnx.load(str(version_dir / "model.onnx")).graph
    assert [i.name for i in graph.input] == ["image"]
    assert graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    assert [o.name for o in graph.output] == ["probs", "cam"]
    dims = [d.dim_value for d in graph.output[1].type.tensor_type.shape.dim[1:]]
    assert dims == [4, 4, 2]

    evaluated = docsort("evaluate", str(data), "--model", str(version_dir), "--json", "-q")
    assert evaluated.returncode == 0, evaluated.stderr[-3000:]
    result = json.loads(evaluated.stdout.strip().splitlines()[-1])
    assert result["n"] == 28 and len(result["unreadable"]) == 1
    assert {"accuracy", "macro_f1", "per_class", "confusion", "n"} <= set(result)
    assert result["n_auto"] == 0 and result["auto_accuracy_lower_bound"] is None
    assert result["confidence_level"] == 0.8  # the level the version's thresholds were chosen at
    assert sum(row["support"] for row in result["per_class"].values()) == 28
    assert sum(map(sum, result["confusion"])) == 28
    assert set(result["per_class"]["text"]) >= {"precision", "recall", "f1", "support"}

    val_only = tmp_path / "val_only"  # the validation files alone: evaluate must agree with training's report
    for rel in split["val"]:
        (val_only / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(data / rel, val_only / rel)
    again = docsort("evaluate", str(val_only), "--model", str(version_dir), "--json", "-q")
    on_val = json.loads(again.stdout.strip().splitlines()[-1])
    assert on_val["confusion"] == manifest.metrics["confusion"]
    assert on_val["accuracy"] == manifest.metrics["accuracy"]


def test_evaluate_runs_without_tensorflow() -> None:
    code = (
        "import sys, trainer.evaluate, trainer.cli, docsort.cli; "
        "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules, 'TensorFlow imported'"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
