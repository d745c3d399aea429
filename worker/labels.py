"""Operators' answers as page labels: reviewed pages and the pages of answered audit items.

A reviewed page carries the operator's class for that page (``reviews.final_label``); an answered
audit (:mod:`worker.audit`) the operator's class for a whole document, which every page of it takes.
Rejected pages and documents (no class) carry none. A page answered more than once keeps its latest
answer. The shadow comparison (:mod:`worker.shadow_stats`) and the retraining loop
(``trainer.loop``) read them here.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from schema.tables import Audit, Document, Operator, OutputDocument, Page, Prediction, Review

REVIEW, AUDIT = "review", "audit"


@dataclass(frozen=True)
class OperatorLabel:
    page_id: int
    document_id: int
    sha256: str  # the received file's
    page_number: int
    label: str
    operator: str
    decided_at: datetime
    source: str  # review or audit
    model: str  # name/version whose answer the operator judged
    model_label: str  # what that model said (the page's class, or the audited document's)
    image_path: str | None  # the page image saved for the operator, if any
    stored_path: str | None  # where the received file is kept (archive), if anywhere


def _reviewed(session: Session, since: datetime | None) -> list[OperatorLabel]:
    stmt = (
        select(Review, Prediction, Page, Document.sha256, Document.stored_path, Operator.name)
        .join(Prediction, Prediction.id == Review.prediction_id)
        .join(Page, Page.id == Prediction.page_id)
        .join(Document, Document.id == Page.document_id)
        .join(Operator, Operator.id == Review.operator_id)
        .where(Review.final_label.is_not(None))
    )
    if since is not None:
        stmt = stmt.where(Review.decided_at >= since)
    return [
        OperatorLabel(
            page.id,
            page.document_id,
            sha,
            page.page_number,
            str(review.final_label),
            operator,
            review.decided_at,
            REVIEW,
            f"{prediction.model_name}/{prediction.model_version}",
            prediction.label,
            page.image_path,
            stored,
        )
        for review, prediction, page, sha, stored, operator in session.execute(stmt).all()
    ]


def _audited(session: Session, since: datetime | None) -> list[OperatorLabel]:
    stmt = (
        select(Audit, OutputDocument.pages, Document.sha256, Document.stored_path, Operator.name)
        .join(OutputDocument, OutputDocument.id == Audit.output_document_id)
        .join(Document, Document.id == Audit.document_id)
        .join(Operator, Operator.id == Audit.operator_id)
        .where(Audit.answered_at.is_not(None), Audit.answer_label.is_not(None))
    )
    if since is not None:
        stmt = stmt.where(Audit.answered_at >= since)
    out: list[OperatorLabel] = []
    for audit, numbers, sha, stored, operator in session.execute(stmt).all():
        pages = session.scalars(
            select(Page).where(Page.document_id == audit.document_id, Page.page_number.in_(list(numbers)))
        )
        for page in pages:
            assert audit.answered_at is not None and audit.answer_label is not None
            out.append(
                OperatorLabel(
                    page.id,
                    page.document_id,
                    sha,
                    page.page_number,
                    audit.answer_label,
                    operator,
                    audit.answered_at,
                    AUDIT,
                    f"{audit.model_name}/{audit.model_version}",
                    audit.label,
                    page.image_path,
                    stored,
                )
            )
    return out


def as_utc(moment: datetime) -> datetime:
    """SQLite gives back naive datetimes (stored as UTC); PostgreSQL aware ones."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def operator_labels(session: Session, since: datetime | None = None) -> list[OperatorLabel]:
    """Each page an operator gave a class (answers at or after ``since``), once, with its latest
    answer; oldest answer first."""
    latest: dict[int, OperatorLabel] = {}
    for item in sorted(
        [*_reviewed(session, since), *_audited(session, since)],
        key=lambda x: (as_utc(x.decided_at), x.page_id),
    ):
        latest[item.page_id] = item
    return sorted(latest.values(), key=lambda x: (as_utc(x.decided_at), x.page_id))
