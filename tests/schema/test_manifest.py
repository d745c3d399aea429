from __future__ import annotations

import json
from pathlib import Path

import pytest

from schema.errors import ModelIncompatible
from schema.manifest import (
    REVIEW_ALL,
    Guarantee,
    InputSpec,
    ModelManifest,
    Thresholds,
    load_manifest,
    sha256_file,
    write_manifest,
)


def _version_dir(tmp_path: Path) -> tuple[Path, ModelManifest]:
    d = tmp_path / "m" / "1"
    d.mkdir(parents=True)
    (d / "model.onnx").write_bytes(b"not really onnx but hashed")
    m = ModelManifest(
        name="m",
        version="1",
        backbone="small-cnn",
        class_names=["a", "b"],
        input=InputSpec(height=32, width=32),
        sha256=sha256_file(d / "model.onnx"),
    )
    write_manifest(d, m)
    return d, m


def test_manifest_round_trips(tmp_path: Path) -> None:
    d, m = _version_dir(tmp_path)
    loaded = load_manifest(d)
    assert loaded.class_names == ["a", "b"] and loaded.sha256 == m.sha256
    assert not list(d.glob(".*tmp*")), "temporary manifest left behind"


def test_tampered_model_file_is_refused(tmp_path: Path) -> None:
    d, _ = _version_dir(tmp_path)
    (d / "model.onnx").write_bytes(b"changed")
    with pytest.raises(ModelIncompatible, match="does not match the manifest"):
        load_manifest(d)


def test_unknown_format_version_is_refused(tmp_path: Path) -> None:
    d, _ = _version_dir(tmp_path)
    raw = json.loads((d / "manifest.json").read_text())
    raw["format_version"] = 99
    (d / "manifest.json").write_text(json.dumps(raw))
    with pytest.raises(ModelIncompatible, match="manifest format 99"):
        load_manifest(d)


def test_missing_manifest_says_so(tmp_path: Path) -> None:
    with pytest.raises(ModelIncompatible, match=r"no manifest\.json"):
        load_manifest(tmp_path)


def test_manifest_without_a_guarantee_still_loads(tmp_path: Path) -> None:
    d, _ = _version_dir(tmp_path)
    raw = json.loads((d / "manifest.json").read_text())
    raw["thresholds"] = {"confidence": 0.93, "margin": 0.0, "per_class": {}, "target_auto_accuracy": 0.995}
    (d / "manifest.json").write_text(json.dumps(raw))  # as written before thresholds had a guarantee
    thresholds = load_manifest(d).thresholds
    assert thresholds.confidence == 0.93 and thresholds.guarantee is None


def test_guarantee_round_trips_and_review_all_is_a_valid_threshold(tmp_path: Path) -> None:
    d, m = _version_dir(tmp_path)
    guarantee = Guarantee(
        method="fixed sequence", target=0.995, confidence_level=0.95, lower_bound=0.9951,
        n_calibration=1724, n_auto=1500, tests=1,
    )  # fmt: skip
    m.thresholds = Thresholds(confidence=REVIEW_ALL, guarantee=guarantee)
    write_manifest(d, m)
    loaded = load_manifest(d).thresholds
    assert loaded.guarantee == guarantee and loaded.guarantee.delta == pytest.approx(0.05)
    assert loaded.confidence == REVIEW_ALL > 1.0
