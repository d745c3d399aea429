"""Audit items for the operator: documents the model routed automatically and delivered, put to a
person as well (``worker.audit``) so that the live accuracy of automatic routing can be measured.

:func:`audit_items` lists them (waiting ones first by default); :func:`answer_audit` records an
operator's answer. An answer never delivers anything: the document left already, by the model's
decision; the answer only says whether that decision was right (``worker.live_accuracy``). An audit is
answered once: the first answer wins, a second gets :class:`AlreadyDecided`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from review.errors import AlreadyDecided, InvalidLabel, ItemNotFound
from schema.enums import DecisionOrigin
from schema.logs import get_logger
from schema.tables import Audit, Document, ModelVersion, Operator, OutputDocument, Page, RoutingDecision

log = get_logger(__name__)


@dataclass(frozen=True)
class AuditPage:
    page_number: int
    page_id: int | None
    image_path: str | None  # the page image saved for the operator (under the review directory)
    cam_path: str | None  # its CAM overlay for the class the model routed it to


@dataclass(frozen=True)
class AuditItem:
    audit_id: int
    document_id: int
    output_document_id: int
    filename: str
    pages: list[AuditPage]
    label: str  # the class the model routed it to
    confidence: float | None
    model_name: str
    model_version: str
    class_names: list[str]
    chosen_at: datetime
    delivered_at: datetime | None
    destination: str | None
    answer_label: str | None
    answered_at: datetime | None
    answered_by: str | None
    correct: bool | None


def _class_names(session: Session, audit: Audit, output: OutputDocument) -> list[str]:
    if output.scores:
        return [str(name) for name in output.scores]
    manifest = session.scalar(
        select(ModelVersion.manifest).where(
            ModelVersion.name == audit.model_name, ModelVersion.version == audit.model_version
        )
    )
    return [str(name) for name in (manifest or {}).get("class_names", [])]


def _pages(session: Session, audit: Audit, output: OutputDocument) -> list[AuditPage]:
    pages = {
        p.page_number: p
        for p in session.scalars(
            select(Page).where(
                Page.document_id == audit.document_id, Page.page_number.in_(list(output.pages))
            )
        )
    }
    cams = dict(
        session.execute(
            select(RoutingDecision.page_id, RoutingDecision.cam_path).where(
                RoutingDecision.document_id == audit.document_id,
                RoutingDecision.origin == DecisionOrigin.model,
                RoutingDecision.cam_path.is_not(None),
            )
        ).all()
    )
    out = []
    for number in output.pages:
        page = pages.get(number)
        page_id = page.id if page else None
        out.append(AuditPage(number, page_id, page.image_path if page else None, cams.get(page_id)))
    return out


def _item(session: Session, audit: Audit) -> AuditItem:
    output = session.get(OutputDocument, audit.output_document_id)
    document = session.get(Document, audit.document_id)
    assert output is not None and document is not None
    operator = session.get(Operator, audit.operator_id) if audit.operator_id else None
    return AuditItem(
        audit_id=audit.id,
        document_id=audit.document_id,
        output_document_id=output.id,
        filename=document.filename,
        pages=_pages(session, audit, output),
        label=audit.label,
        confidence=audit.confidence,
        model_name=audit.model_name,
        model_version=audit.model_version,
        class_names=_class_names(session, audit, output),
        chosen_at=audit.chosen_at,
        delivered_at=output.delivered_at,
        destination=output.destination,
        answer_label=audit.answer_label,
        answered_at=audit.answered_at,
        answered_by=operator.name if operator else None,
        correct=audit.correct,
    )


def audit_items(session: Session, *, waiting: bool | None = True, limit: int = 100) -> list[AuditItem]:
    """Audit items, oldest first: those waiting for an answer (``waiting`` True), those answered
    (False, newest answer first), or all (None)."""
    stmt = select(Audit)
    if waiting is True:
        stmt = stmt.where(Audit.answered_at.is_(None)).order_by(Audit.chosen_at, Audit.id)
    elif waiting is False:
        stmt = stmt.where(Audit.answered_at.is_not(None)).order_by(Audit.answered_at.desc(), Audit.id.desc())
    else:
        stmt = stmt.order_by(Audit.chosen_at, Audit.id)
    return [_item(session, audit) for audit in session.scalars(stmt.limit(limit))]


def load_audit(session: Session, audit_id: int) -> AuditItem:
    audit = session.get(Audit, audit_id)
    if audit is None:
        raise ItemNotFound(f"no audit item under id {audit_id}")
    return _item(session, audit)


def answer_audit(
    session: Session,
    *,
    audit_id: int,
    operator_id: int,
    label: str | None,
    now: datetime,
    note: str | None = None,
) -> AuditItem:
    """Record an operator's answer on an audit item: the document's class (``label`` None: it is none
    of the classes, or unreadable). Nothing is delivered again. Commits."""
    item = load_audit(session, audit_id)
    if label is not None and item.class_names and label not in item.class_names:
        raise InvalidLabel(f"{label!r} is not one of the model's classes ({', '.join(item.class_names)})")
    answered = session.execute(
        update(Audit)
        .where(Audit.id == audit_id, Audit.answered_at.is_(None))
        .values(
            answer_label=label,
            answered_at=now,
            operator_id=operator_id,
            correct=label is not None and label == item.label,
            note=(note or "").strip() or None,
        )
    )
    if answered.rowcount != 1:  # type: ignore[attr-defined]
        session.rollback()
        done = load_audit(session, audit_id)
        raise AlreadyDecided(
            f"this audit item was already answered by {done.answered_by} ({done.answer_label or 'rejected'})"
        )
    session.commit()
    log.info(
        "audit.answered", audit_id=audit_id, operator_id=operator_id, label=label, model_label=item.label
    )
    return load_audit(session, audit_id)
