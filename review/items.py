"""What the item page shows of one review item: the page, its CAM, the scores, and any decision."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from review.decisions import class_names, decided_by
from review.errors import ItemNotFound
from review.timefmt import as_utc
from schema.enums import DecisionKind, DecisionOrigin
from schema.tables import Document, Page, Prediction, Review, RoutingDecision


@dataclass(frozen=True)
class ClassScore:
    key: str  # the keyboard key that picks it: 1..9, then 0
    name: str
    score: float
    predicted: bool


@dataclass(frozen=True)
class ItemView:
    prediction_id: int
    label: str
    confidence: float
    margin: float
    model_name: str
    model_version: str
    reason: str | None
    waiting_since: datetime
    filename: str
    page_number: int
    page_count: int
    source: str
    source_ref: str
    image_path: str | None
    cam_path: str | None
    stored_path: str | None  # the received file, kept while the document is under review
    sha256: str
    classes: list[ClassScore]
    review: Review | None
    reviewer: str | None
    routed_to: str | None


def _keys(n: int) -> list[str]:
    return [str((i + 1) % 10) if i < 10 else "" for i in range(n)]


def load_item(session: Session, prediction_id: int) -> ItemView:
    """The review item ``prediction_id``; :class:`ItemNotFound` if the model never sent it to review."""
    row = session.execute(
        select(Prediction, Page, Document, RoutingDecision)
        .join(Page, Prediction.page_id == Page.id)
        .join(Document, Page.document_id == Document.id)
        .join(RoutingDecision, RoutingDecision.prediction_id == Prediction.id)
        .where(
            Prediction.id == prediction_id,
            RoutingDecision.origin == DecisionOrigin.model,
            RoutingDecision.kind == DecisionKind.review,
        )
    ).first()
    if row is None:
        raise ItemNotFound(f"no page waits for review under id {prediction_id}")
    prediction, page, document, decision = row
    names = class_names(prediction)
    scores = prediction.scores or {}
    classes = [
        ClassScore(key, name, float(scores.get(name, 0.0)), name == prediction.label)
        for key, name in zip(_keys(len(names)), names, strict=True)
    ]
    decided = decided_by(session, prediction_id)
    routed_to = session.scalar(
        select(RoutingDecision.destination).where(
            RoutingDecision.prediction_id == prediction_id, RoutingDecision.origin == DecisionOrigin.operator
        )
    )
    return ItemView(
        prediction_id=prediction.id,
        label=prediction.label,
        confidence=prediction.confidence,
        margin=prediction.margin,
        model_name=prediction.model_name,
        model_version=prediction.model_version,
        reason=decision.reason,
        waiting_since=as_utc(decision.decided_at),
        filename=document.filename,
        page_number=page.page_number,
        page_count=document.page_count or 1,
        source=document.source,
        source_ref=document.source_ref,
        image_path=page.image_path,
        cam_path=decision.cam_path,
        stored_path=document.stored_path,
        sha256=document.sha256,
        classes=classes,
        review=decided[0] if decided else None,
        reviewer=decided[1] if decided else None,
        routed_to=routed_to,
    )
