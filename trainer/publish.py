"""Write a model version folder: model.onnx, manifest.json, backbone weights and report/, then rename.

The folder is built under a hidden temporary name beside its final place and renamed in one step, so a
worker never sees half a model. Version names are UTC timestamps ``YYYYMMDD-HHMMSS`` (``-2``, ``-3``, …
when one already exists).
"""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from schema.logs import get_logger
from schema.manifest import (
    ModelManifest,
    Thresholds,
    TrainingInfo,
    sha256_file,
    write_json_atomic,
    write_manifest,
)
from trainer.backbones import Classifier, fit_cam_readout
from trainer.confidence import finalize_confidence
from trainer.data import PreparedData
from trainer.export import check_parity, export_onnx
from trainer.metrics import classification_report
from trainer.onnx_run import onnx_session, run_onnx
from trainer.plots import plot_confusion, plot_curves, plot_misclassified
from trainer.recipe import TrainOptions

log = get_logger(__name__)
PARITY_IMAGES = 64


def version_name(now: datetime | None = None) -> str:
    return (now or datetime.now(UTC)).strftime("%Y%m%d-%H%M%S")


def rename_into_place(build_dir: Path, models_dir: Path, manifest: ModelManifest) -> Path:
    """Write the manifest and rename ``build_dir`` to ``models_dir/<version>`` (``-2``, ``-3``, … if taken);
    the manifest's version is always the folder's final name."""
    base = manifest.version
    for attempt in range(1, 1000):
        name = base if attempt == 1 else f"{base}-{attempt}"
        target = models_dir / name
        if target.exists():
            continue
        manifest.version = name
        write_manifest(build_dir, manifest)
        try:
            os.rename(build_dir, target)
        except OSError:  # taken between the check and the rename
            continue
        return target
    raise FileExistsError(f"{models_dir}: no free version name for {base}")


def _relative(paths: list[str], root: Path) -> list[str]:
    out = []
    for p in paths:
        try:
            out.append(str(Path(p).relative_to(root)))
        except ValueError:
            out.append(p)
    return out


def _scores(examples, probs: np.ndarray, class_names: list[str], root: Path) -> dict[str, Any]:
    return {
        "class_names": class_names,
        "labels": examples.labels.tolist(),
        "probs": probs.astype(np.float64).tolist(),  # full float32 precision, for calibration
        "sources": _relative(examples.sources, root),
        "pages": examples.pages,
    }


def _parity_sample(images: np.ndarray) -> np.ndarray:
    if len(images) <= PARITY_IMAGES:
        return images
    return images[np.linspace(0, len(images) - 1, PARITY_IMAGES).astype(int)]


def _cam_info(clf: Classifier) -> dict[str, Any]:
    """Where the exported class map comes from (the manifest's training.extra.cam)."""
    readout = clf.cam_readout
    if readout is None:
        return {"block": "last", "source": "features @ dense kernel"}
    return {"block": readout.block, "source": "linear read-out of the block's pooled features",
            "readout_train_accuracy": round(readout.train_accuracy, 4)}  # fmt: skip


def publish_version(
    build_dir: Path,
    models_dir: Path,
    clf: Classifier,
    opts: TrainOptions,
    data: PreparedData,
    history: list[dict[str, Any]],
    info: dict[str, Any],
    timing: dict[str, float],
) -> Path:
    wall0 = time.perf_counter()
    report = build_dir / "report"
    names = data.scan.class_names
    fit_cam_readout(clf, data.train.images, data.train.labels)
    export_onnx(clf, build_dir / "model.onnx")
    session = onnx_session(build_dir / "model.onnx", opts.threads)
    parity = check_parity(clf, session, _parity_sample(data.val.images))
    clf.features.save_weights(str(build_dir / "backbone.weights.h5"))

    spec = clf.input_spec(opts.resize)
    val_probs, val_cam = run_onnx(session, spec, data.val.images, with_cam=True)
    metrics: dict[str, Any] = {"validation": classification_report(data.val.labels, val_probs, names)}
    write_json_atomic(report / "val_scores.json", _scores(data.val, val_probs, names, data.scan.root))
    if data.test is not None:
        test_probs, _ = run_onnx(session, spec, data.test.images)
        metrics["test"] = classification_report(data.test.labels, test_probs, names)
        write_json_atomic(report / "test_scores.json", _scores(data.test, test_probs, names, data.scan.root))
    metrics["parity"] = parity
    metrics["best_epoch"] = info.get("best_epoch", {})
    write_json_atomic(report / "metrics.json", metrics)
    write_json_atomic(report / "unreadable.json", data.unreadable)
    split = data.split
    write_json_atomic(
        report / "split.json",
        {
            "seed": opts.seed,
            "val_fraction": opts.val_fraction,
            "test_fraction": opts.test_fraction,
            **{
                part: _relative([str(f.path) for f in getattr(split, part)], data.scan.root)
                for part in ("train", "val", "test")
            },
        },
    )
    plot_curves(history, report / "curves.png")
    plot_confusion(np.asarray(metrics["validation"]["confusion"]), names, report / "confusion.png")
    assert val_cam is not None
    plot_misclassified(data.val, val_probs, val_cam, names, report / "misclassified.png")

    recipe = info["recipe"]
    cam_h, cam_w = clf.cam_shape
    timing = {**timing, "export_seconds": time.perf_counter() - wall0}
    timing["total_wall_seconds"] = timing["wall_seconds"] + timing["export_seconds"]
    val = metrics["validation"]
    manifest = ModelManifest(
        name=opts.name,
        version=version_name(),
        backbone=opts.backbone,
        class_names=names,
        input=spec,
        thresholds=Thresholds(confidence=opts.confidence),
        temperature=1.0,
        sha256=sha256_file(build_dir / "model.onnx"),
        cam_shape=[cam_h, cam_w],
        metrics={
            "split": "validation",
            "accuracy": val["accuracy"],
            "macro_f1": val["macro_f1"],
            "weighted_f1": val["weighted_f1"],
            "n": val["n"],
            "per_class": val["per_class"],
            "confusion": val["confusion"],
            **(
                {"test": {k: metrics["test"][k] for k in ("accuracy", "macro_f1", "n")}}
                if "test" in metrics
                else {}
            ),
            "parity": parity,
            "best_epoch": info.get("best_epoch", {}),
        },
        training=TrainingInfo(
            data_dir=str(Path(opts.data_dir).resolve()),
            n_images=len(data.scan.files),
            per_class=data.scan.counts(),
            split_seed=opts.seed,
            val_fraction=opts.val_fraction,
            test_fraction=opts.test_fraction,
            epochs=int(recipe["epochs"]),
            fine_tune_epochs=int(recipe["fine_tune_epochs"]),
            weights=str(recipe["weights"]),
            seconds=round(timing["total_wall_seconds"], 2),
            extra={
                "examples": {"train": len(data.train), "val": len(data.val), "test": len(data.test or [])},
                "unreadable": len(data.unreadable),
                "augment": opts.augment,
                "class_weighting": opts.class_weighting,
                "cam": _cam_info(clf),
                "timing": {k: round(v, 2) for k, v in timing.items()},
                **info,
            },
        ),
    )
    # Confidence (trainer.confidence): temperature and review thresholds for the target accuracy of the
    # automatically routed pages, fitted on the validation scores; retarget later without training.
    manifest.temperature, manifest.thresholds, manifest.metrics["confidence"] = finalize_confidence(
        val_probs, data.val.labels, names, report, opts.auto_accuracy, "probs", opts.confidence_level
    )
    target = rename_into_place(build_dir, models_dir, manifest)
    log.info(
        "model_published",
        path=str(target),
        accuracy=round(val["accuracy"], 4),
        macro_f1=round(val["macro_f1"], 4),
    )
    return target
