"""Rows for the quality suites: registered versions with stored validation scores, documents routed
automatically (audited or not, answered or not), live predictions drawn from a distribution."""

from __future__ import annotations

import hashlib
import itertools
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from sqlalchemy.orm import Session

from schema.enums import DecisionKind, DecisionOrigin, DocumentState
from schema.manifest import InputSpec, ModelManifest, Thresholds, write_manifest
from schema.tables import Audit, Document, ModelVersion, OutputDocument, Page, Prediction, RoutingDecision
from worker.validation_scores import SCORES_FILE

_counter = itertools.count(1)


def two_class_probs(rng: np.random.Generator, n: int, shift: float = 0.0, mix: float = 0.5) -> np.ndarray:
    """Calibrated-looking scores of two classes: a share ``mix`` of class 0; confidence from a Beta,
    pushed towards 0.5 by ``shift``."""
    top = np.clip(0.5 + 0.5 * rng.beta(8.0, 1.0, n) - shift, 0.5, 1.0)
    first = rng.random(n) < mix
    p0 = np.where(first, top, 1.0 - top)
    return np.stack([p0, 1.0 - p0], axis=1)


def register_version(
    session: Session,
    models_dir: Path,
    *,
    name: str = "docsort",
    version: str = "v1",
    class_names: list[str] | None = None,
    ref_probs: np.ndarray | None = None,
    ref_labels: np.ndarray | None = None,
    confidence: float = 0.9,
    target: float | None = 0.995,
    active: bool = True,
) -> ModelVersion:
    """A version row (and folder with a manifest and ``report/confidence_scores.npz``); flushes."""
    names = class_names or ["dark", "light"]
    folder = models_dir / name / version
    (folder / "report").mkdir(parents=True, exist_ok=True)
    manifest = ModelManifest(
        name=name,
        version=version,
        backbone="test",
        class_names=names,
        input=InputSpec(height=32, width=32),
        thresholds=Thresholds(confidence=confidence, target_auto_accuracy=target),
        sha256="0" * 64,
    )
    write_manifest(folder, manifest)
    if ref_probs is not None:
        labels = ref_labels if ref_labels is not None else ref_probs.argmax(axis=1)
        logits = np.log(np.clip(ref_probs, 1e-12, None))
        np.savez(folder / "report" / SCORES_FILE, logits=logits, labels=labels, class_names=np.array(names))
    row = ModelVersion(
        name=name,
        version=version,
        sha256=manifest.sha256,
        path=str(folder),
        manifest=manifest.model_dump(mode="json"),
        active=active,
        activated_at=datetime.now(UTC) if active else None,
    )
    session.add(row)
    session.flush()
    return row


@dataclass(frozen=True)
class Routed:
    document_id: int
    page_id: int
    prediction_id: int
    output_id: int
    audit_id: int | None


def route_document(
    session: Session,
    *,
    label: str,
    scores: dict[str, float] | None = None,
    when: datetime | None = None,
    model_name: str = "docsort",
    model_version: str = "v1",
    kind: DecisionKind = DecisionKind.auto,
    audited: bool = False,
    answer: str | None = None,
    answered: bool = False,
    operator_id: int | None = None,
    destination: str | None = None,
) -> Routed:
    """A one-page file the model routed (auto: delivered), optionally audited and answered; flushes."""
    when = when or datetime.now(UTC)
    n = next(_counter)
    scores = scores or {label: 0.99}
    sha = hashlib.sha256(f"routed-{n}-{when.isoformat()}".encode()).hexdigest()
    document = Document(
        sha256=sha,
        source="api",
        filename=f"routed-{n:05d}.png",
        page_count=1,
        state=DocumentState.done,
        received_at=when,
    )
    session.add(document)
    session.flush()
    page = Page(document_id=document.id, page_number=1)
    session.add(page)
    session.flush()
    top = max(scores.values())
    prediction = Prediction(
        page_id=page.id,
        model_name=model_name,
        model_version=model_version,
        label=label,
        confidence=top,
        scores=scores,
        created_at=when,
    )
    session.add(prediction)
    session.flush()
    session.add(
        RoutingDecision(
            document_id=document.id,
            page_id=page.id,
            prediction_id=prediction.id,
            origin=DecisionOrigin.model,
            kind=kind,
            label=label,
            decided_at=when,
            applied_at=when if kind == DecisionKind.auto else None,
        )
    )
    output = OutputDocument(
        document_id=document.id,
        origin=DecisionOrigin.model,
        generation=0,
        seq=1,
        pages=[1],
        kind=kind,
        label=label,
        confidence=top,
        scores=scores,
        model_name=model_name,
        model_version=model_version,
        decided_at=when,
        delivered_at=when if kind == DecisionKind.auto else None,
        destination=destination,
    )
    session.add(output)
    session.flush()
    audit_id = None
    if audited:
        audit = Audit(
            output_document_id=output.id,
            document_id=document.id,
            model_name=model_name,
            model_version=model_version,
            label=label,
            confidence=top,
            chosen_at=when,
        )
        if answered:
            audit.answer_label, audit.answered_at, audit.operator_id = answer, when, operator_id
            audit.correct = answer == label
        session.add(audit)
        session.flush()
        audit_id = audit.id
    return Routed(document.id, page.id, prediction.id, output.id, audit_id)


def make_biased_tiny_model(models_dir: Path, version: str, dark_bias: float, **kwargs: object) -> Path:
    """The tiny model (``tests.support.tiny_model``) with its ``dark`` feature raised by ``dark_bias``:
    it calls ``dark`` pages up to a lighter grey (the plain model's boundary is mid-grey, 127.5)."""
    import onnx
    from onnx import numpy_helper

    from schema.manifest import load_manifest, sha256_file
    from tests.support.tiny_model import make_tiny_model

    folder = make_tiny_model(models_dir, version=version, **kwargs)  # type: ignore[arg-type]
    model = onnx.load(str(folder / "model.onnx"))
    for i, init in enumerate(model.graph.initializer):
        if init.name == "conv_b":
            model.graph.initializer[i].CopyFrom(
                numpy_helper.from_array(np.array([dark_bias, 0.0], np.float32), "conv_b")
            )
    onnx.save(model, str(folder / "model.onnx"))
    manifest = load_manifest(folder, verify=False)
    write_manifest(folder, manifest.model_copy(update={"sha256": sha256_file(folder / "model.onnx")}))
    return folder
