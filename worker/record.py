"""Record: documents, pages, predictions and routing decisions, each written once.

A page is keyed by its document's sha256 and page number; a prediction by page and model name/version;
a model decision by prediction. Rows are inserted with ``ON CONFLICT DO NOTHING`` and read back, so a
redelivered task, or two workers racing on the same content, find the rows instead of adding more.
Functions take the session explicitly and never commit: the caller owns the transaction.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from schema.enums import DecisionKind, DecisionOrigin, DocumentState
from schema.errors import DocsortError
from schema.tables import Base, Document, Page, Prediction, Receipt, RoutingDecision
from worker.decide import Decision

FINISHED = (DocumentState.done, DocumentState.failed)


class RecordError(DocsortError):
    """A row the pipeline needs is missing or inconsistent."""


def now() -> datetime:
    return datetime.now(UTC)


def insert_ignore(session: Session, model: type[Base], values: dict[str, Any], keys: list[str]) -> bool:
    """INSERT the row unless one with the same ``keys`` exists (PostgreSQL and SQLite); True if inserted."""
    dialect = session.get_bind().dialect.name
    table = model  # the mapped class; insert() takes it as its table
    if dialect == "postgresql":
        stmt: Any = postgresql.insert(table).values(**values).on_conflict_do_nothing(index_elements=keys)
    elif dialect == "sqlite":
        stmt = sqlite.insert(table).values(**values).on_conflict_do_nothing(index_elements=keys)
    else:  # pragma: no cover - docsort supports PostgreSQL and SQLite
        raise RecordError(f"unsupported database dialect {dialect!r}")
    result = session.execute(stmt)
    return bool(getattr(result, "rowcount", 0) == 1)


def document_by_sha(session: Session, sha256: str) -> Document | None:
    return session.scalar(select(Document).where(Document.sha256 == sha256))


def ensure_document(session: Session, values: dict[str, Any]) -> tuple[Document, bool]:
    """The document with ``values['sha256']``, created from ``values`` if new; (document, created)."""
    existing = document_by_sha(session, values["sha256"])
    if existing is not None:
        return existing, False
    created = insert_ignore(session, Document, {"received_at": now(), **values}, ["sha256"])
    session.flush()
    doc = document_by_sha(session, values["sha256"])
    if doc is None:  # pragma: no cover - the insert or a racing one must have made it
        raise RecordError(f"document {values['sha256'][:12]} vanished after insert")
    return doc, created


def add_receipt(
    session: Session, document: Document, *, job_id: str | None, source: str, source_ref: str, duplicate: bool
) -> None:
    """Record one arrival of a file, unless this job already recorded it (a redelivered task)."""
    seen = session.scalar(
        select(Receipt.id).where(
            Receipt.document_id == document.id,
            Receipt.source_ref == source_ref,
            Receipt.job_id.is_(None) if job_id is None else Receipt.job_id == job_id,
        )
    )
    if seen is None:
        session.add(
            Receipt(
                document_id=document.id,
                job_id=job_id,
                source=source,
                source_ref=source_ref,
                duplicate=duplicate,
            )
        )


def receipt_document(session: Session, source_ref: str, job_id: str | None) -> Document | None:
    """The document an earlier arrival from ``source_ref`` (in this job) became, if any."""
    stmt = select(Document).join(Receipt, Receipt.document_id == Document.id)
    stmt = stmt.where(Receipt.source_ref == source_ref)
    if job_id is not None:
        stmt = stmt.where(Receipt.job_id == job_id)
    return session.scalar(stmt.order_by(Receipt.id.desc()).limit(1))


def ensure_page(session: Session, document_id: int, number: int, width: int, height: int) -> Page:
    values = {"document_id": document_id, "page_number": number, "width": width, "height": height}
    insert_ignore(session, Page, values, ["document_id", "page_number"])
    session.flush()
    page = session.scalar(select(Page).where(Page.document_id == document_id, Page.page_number == number))
    if page is None:  # pragma: no cover
        raise RecordError(f"page {number} of document {document_id} vanished after insert")
    return page


def find_prediction(session: Session, page_id: int, model_name: str, model_version: str) -> Prediction | None:
    return session.scalar(
        select(Prediction).where(
            Prediction.page_id == page_id,
            Prediction.model_name == model_name,
            Prediction.model_version == model_version,
        )
    )


def ensure_prediction(
    session: Session,
    page: Page,
    *,
    model_name: str,
    model_version: str,
    decision: Decision,
    latency_ms: float,
    worker: str,
) -> tuple[Prediction, bool]:
    """The page's prediction by this model version, recorded now if it was not; (prediction, created)."""
    found = find_prediction(session, page.id, model_name, model_version)
    if found is not None:
        return found, False
    values = {
        "page_id": page.id,
        "model_name": model_name,
        "model_version": model_version,
        "label": decision.label,
        "confidence": decision.confidence,
        "margin": decision.margin,
        "scores": decision.scores,
        "latency_ms": latency_ms,
        "worker": worker[:200],
        "created_at": now(),
    }
    insert_ignore(session, Prediction, values, ["page_id", "model_name", "model_version"])
    session.flush()
    found = find_prediction(session, page.id, model_name, model_version)
    if found is None:  # pragma: no cover
        raise RecordError(f"prediction for page {page.id} vanished after insert")
    return found, True


def decision_for(session: Session, prediction_id: int, origin: DecisionOrigin) -> RoutingDecision | None:
    return session.scalar(
        select(RoutingDecision).where(
            RoutingDecision.prediction_id == prediction_id, RoutingDecision.origin == origin
        )
    )


def ensure_decision(session: Session, values: dict[str, Any]) -> tuple[RoutingDecision, bool]:
    """The decision of (prediction, origin), recorded from ``values`` if there is none; (row, created)."""
    prediction_id, origin = values["prediction_id"], values["origin"]
    found = decision_for(session, prediction_id, origin)
    if found is not None:
        return found, False
    insert_ignore(session, RoutingDecision, {"decided_at": now(), **values}, ["prediction_id", "origin"])
    session.flush()
    found = decision_for(session, prediction_id, origin)
    if found is None:  # pragma: no cover
        raise RecordError(f"decision for prediction {prediction_id} vanished after insert")
    return found, True


def failure_of(session: Session, document_id: int) -> RoutingDecision | None:
    return session.scalar(
        select(RoutingDecision).where(
            RoutingDecision.document_id == document_id,
            RoutingDecision.kind == DecisionKind.failed,
            RoutingDecision.prediction_id.is_(None),
        )
    )


def record_failure(session: Session, document: Document, reason: str) -> RoutingDecision:
    """Mark a document failed with a reason a person understands; once, however often called."""
    document.state = DocumentState.failed
    document.error = reason
    document.finished_at = document.finished_at or now()
    found = failure_of(session, document.id)
    if found is not None:
        return found
    decision = RoutingDecision(
        document_id=document.id,
        origin=DecisionOrigin.model,
        kind=DecisionKind.failed,
        reason=reason,
        decided_at=now(),
    )
    session.add(decision)
    session.flush()
    return decision


def model_decisions(session: Session, document_id: int) -> list[RoutingDecision]:
    """The document's decisions made by a model, page order."""
    stmt = (
        select(RoutingDecision)
        .join(Page, Page.id == RoutingDecision.page_id)
        .where(RoutingDecision.document_id == document_id, RoutingDecision.origin == DecisionOrigin.model)
        .order_by(Page.page_number)
    )
    return list(session.scalars(stmt))


def unapplied_routes(session: Session, document_id: int) -> list[RoutingDecision]:
    """Automatic decisions recorded but not yet delivered (a task died between the two)."""
    return [
        d
        for d in model_decisions(session, document_id)
        if d.kind == DecisionKind.auto and d.applied_at is None
    ]


def is_finished(document: Document) -> bool:
    return document.state in FINISHED
