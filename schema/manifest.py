"""The model manifest: what a model version folder promises to a worker (see DESIGN.md, "The model contract").

A version folder holds ``model.onnx``, ``manifest.json`` and ``report/``. The manifest is written to a
temporary name and renamed, and the folder itself is published by renaming, so a reader never sees
half a model.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, ValidationError, field_validator

from schema.errors import ModelIncompatible
from schema.files import sha256_file, write_text_atomic

MANIFEST_FORMAT = 1
MANIFEST_NAME = "manifest.json"


class InputSpec(BaseModel):
    height: int = Field(gt=0)
    width: int = Field(gt=0)
    channels: Literal[1, 3] = 3
    resize: Literal["letterbox", "stretch"] = "letterbox"
    pad_value: int = Field(255, ge=0, le=255, description="Letterbox padding grey level (white paper).")
    dtype: Literal["uint8", "float32"] = "float32"
    layout: Literal["NHWC"] = "NHWC"


REVIEW_ALL = 1.01  # a threshold above any confidence (they lie in [0, 1]): every such page goes to review


class Guarantee(BaseModel):
    """What the thresholds promise: the accuracy of the pages routed automatically is at least
    ``target`` with probability at least ``confidence_level`` over the draw of the calibration pages."""

    method: str
    target: float = Field(gt=0.0, le=1.0)
    confidence_level: float = Field(gt=0.0, lt=1.0, description="1 − delta")
    lower_bound: float | None = Field(
        None, description="Exact lower confidence bound of the auto-routed calibration pages' accuracy."
    )
    n_calibration: int = Field(ge=0, description="Calibration pages the thresholds were chosen on.")
    n_auto: int = Field(ge=0, description="Of which routed automatically at these thresholds.")
    tests: int = Field(1, ge=1, description="Families of tests sharing delta (Bonferroni).")

    @property
    def delta(self) -> float:
        return 1.0 - self.confidence_level


class Thresholds(BaseModel):
    """A page is routed automatically when its confidence and margin pass these; otherwise reviewed.

    ``guarantee`` is None for thresholds set by hand or chosen by a point estimate (older manifests).
    """

    confidence: float = Field(0.9, ge=0.0, le=REVIEW_ALL)
    margin: float = Field(0.0, ge=0.0, le=1.0)
    per_class: dict[str, float] = Field(default_factory=dict)
    target_auto_accuracy: float | None = None
    guarantee: Guarantee | None = None


class QuantizedSpec(BaseModel):
    file: str
    sha256: str
    label_agreement: float
    usable: bool
    note: str = ""


class TrainingInfo(BaseModel):
    data_dir: str = ""
    n_images: int = 0
    per_class: dict[str, int] = Field(default_factory=dict)
    split_seed: int = 0
    val_fraction: float = 0.0
    test_fraction: float = 0.0
    epochs: int = 0
    fine_tune_epochs: int = 0
    weights: str = ""
    seconds: float = 0.0
    extra: dict[str, Any] = Field(default_factory=dict)


class ModelManifest(BaseModel):
    format_version: int = MANIFEST_FORMAT
    name: str
    version: str
    backbone: str
    class_names: list[str] = Field(min_length=2)
    input: InputSpec
    thresholds: Thresholds = Field(default_factory=Thresholds)
    temperature: float = Field(1.0, gt=0.0)
    onnx_file: str = "model.onnx"
    sha256: str
    outputs: dict[str, str] = Field(default_factory=lambda: {"probs": "probs", "cam": "cam"})
    cam_shape: list[int] = Field(default_factory=list, description="h, w of the `cam` output.")
    int8: QuantizedSpec | None = None
    load: Literal["fp32", "int8"] = "fp32"
    metrics: dict[str, Any] = Field(default_factory=dict)
    training: TrainingInfo = Field(default_factory=TrainingInfo)
    created_at: datetime = Field(default_factory=lambda: datetime.now(UTC))

    @field_validator("class_names")
    @classmethod
    def _unique_names(cls, names: list[str]) -> list[str]:
        if len(set(names)) != len(names):
            raise ValueError(f"class names repeat: {names}")
        return names

    def model_file(self, version_dir: Path) -> Path:
        """The ONNX file the worker should load: the INT8 one only when marked usable and chosen."""
        if self.load == "int8" and self.int8 is not None and self.int8.usable:
            return version_dir / self.int8.file
        return version_dir / self.onnx_file


def write_json_atomic(path: Path, data: Any) -> None:
    write_text_atomic(path, json.dumps(data, indent=2, sort_keys=False, default=str) + "\n")


def write_manifest(version_dir: Path, manifest: ModelManifest) -> Path:
    path = version_dir / MANIFEST_NAME
    write_json_atomic(path, manifest.model_dump(mode="json"))
    return path


def load_manifest(version_dir: Path, verify: bool = True) -> ModelManifest:
    """Read and check a model version folder; raise :class:`ModelIncompatible` saying what is wrong."""
    path = Path(version_dir) / MANIFEST_NAME
    if not path.is_file():
        raise ModelIncompatible(f"{version_dir}: no {MANIFEST_NAME}; is this a model version folder?")
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ModelIncompatible(f"{path}: unreadable manifest ({exc})") from exc
    if raw.get("format_version") != MANIFEST_FORMAT:
        raise ModelIncompatible(
            f"{path}: manifest format {raw.get('format_version')!r}, this docsort reads {MANIFEST_FORMAT}"
        )
    try:
        manifest = ModelManifest.model_validate(raw)
    except ValidationError as exc:
        raise ModelIncompatible(f"{path}: invalid manifest: {exc}") from exc
    if verify:
        onnx_path = Path(version_dir) / manifest.onnx_file
        if not onnx_path.is_file():
            raise ModelIncompatible(f"{version_dir}: {manifest.onnx_file} is missing")
        actual = sha256_file(onnx_path)
        if actual != manifest.sha256:
            raise ModelIncompatible(
                f"{onnx_path}: sha256 {actual[:12]}… does not match the manifest's {manifest.sha256[:12]}…"
            )
    return manifest
