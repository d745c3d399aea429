"""The review queue: pages the model sent to review that no operator has decided yet, oldest first.

A page is pending when its prediction has a model routing decision of kind ``review`` and no
:class:`~schema.tables.Review` row. The queue page and the item page's next/previous go by document
(:func:`list_documents`, :func:`open_ids`): the pending pages of one document under review (an
:class:`~schema.tables.OutputDocument` of kind review in force) are one row, which opens its oldest
waiting page; a page of no such document is a row of its own. Data access takes the session explicitly.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from sqlalchemy import Select, and_, func, select
from sqlalchemy.orm import Session

from review.timefmt import as_utc
from schema.enums import DecisionKind, DecisionOrigin
from schema.tables import (
    Document,
    Operator,
    OutputDocument,
    Page,
    Prediction,
    Review,
    ReviewClaim,
    RoutingDecision,
)

IN_CHUNK = 500  # ids per IN (...) list


@dataclass(frozen=True)
class QueueFilters:
    """What the operator narrowed the queue to; empty strings mean no filter."""

    label: str = ""
    source: str = ""
    version: str = ""

    def query(self) -> dict[str, str]:
        """The filters as URL query parameters (only those set)."""
        pairs = {"class": self.label, "source": self.source, "version": self.version}
        return {k: v for k, v in pairs.items() if v}

    @property
    def active(self) -> bool:
        return bool(self.label or self.source or self.version)


@dataclass(frozen=True)
class QueueItem:
    prediction_id: int
    filename: str
    page_number: int
    page_count: int
    label: str
    confidence: float
    model_name: str
    model_version: str
    source: str
    waiting_since: datetime
    claimed_by: str | None
    claimed_by_id: int | None
    claim_expires: datetime | None
    document_id: int = 0
    doc_pages: int = 1  # pages of the document under review this page belongs to (1: a page alone)
    waiting_pages: int = 1  # of those, pages waiting in the (filtered) queue


@dataclass
class QueueSummary:
    """Counts over the whole queue (not only the filtered part) and the values the filters offer."""

    total: int = 0
    held: int = 0
    oldest: datetime | None = None
    per_label: Counter[str] = field(default_factory=Counter)
    sources: list[str] = field(default_factory=list)
    versions: list[str] = field(default_factory=list)


def pending_select(*columns: Any) -> Select[Any]:
    """SELECT ``columns`` over pending review items (joined: decision, prediction, page, document)."""
    return (
        select(*columns)
        .select_from(RoutingDecision)
        .join(Prediction, RoutingDecision.prediction_id == Prediction.id)
        .join(Page, Prediction.page_id == Page.id)
        .join(Document, Page.document_id == Document.id)
        .outerjoin(Review, Review.prediction_id == Prediction.id)
        .where(
            RoutingDecision.origin == DecisionOrigin.model,
            RoutingDecision.kind == DecisionKind.review,
            Review.id.is_(None),
        )
    )


def _filtered(stmt: Select[Any], filters: QueueFilters) -> Select[Any]:
    if filters.label:
        stmt = stmt.where(Prediction.label == filters.label)
    if filters.source:
        stmt = stmt.where(Document.source == filters.source)
    if filters.version:
        stmt = stmt.where(Prediction.model_version == filters.version)
    return stmt


_ORDER = (RoutingDecision.decided_at.asc(), Prediction.id.asc())


def list_pending(
    session: Session, filters: QueueFilters, now: datetime, *, limit: int | None = 100, offset: int = 0
) -> tuple[list[QueueItem], int]:
    """One page of the filtered queue, oldest first, with who holds each item; and the filtered count."""
    live_claim = and_(ReviewClaim.prediction_id == Prediction.id, ReviewClaim.expires_at > now)
    stmt = (
        _filtered(
            pending_select(
                Prediction.id,
                Document.filename,
                Page.page_number,
                Document.page_count,
                Prediction.label,
                Prediction.confidence,
                Prediction.model_name,
                Prediction.model_version,
                Document.source,
                RoutingDecision.decided_at,
                Operator.name,
                Operator.id,
                ReviewClaim.expires_at,
                Document.id,
            ),
            filters,
        )
        .outerjoin(ReviewClaim, live_claim)
        .outerjoin(Operator, Operator.id == ReviewClaim.operator_id)
        .order_by(*_ORDER)
        .limit(limit)
        .offset(offset)
    )
    items = [
        QueueItem(
            prediction_id=row[0],
            filename=row[1] or "",
            page_number=row[2],
            page_count=row[3] or 1,
            label=row[4],
            confidence=row[5],
            model_name=row[6],
            model_version=row[7],
            source=row[8],
            waiting_since=as_utc(row[9]),
            claimed_by=row[10],
            claimed_by_id=row[11],
            claim_expires=as_utc(row[12]) if row[12] is not None else None,
            document_id=row[13],
        )
        for row in session.execute(stmt)
    ]
    count = session.scalar(_filtered(pending_select(func.count(Prediction.id)), filters)) or 0
    return items, int(count)


def summarize(session: Session, now: datetime) -> QueueSummary:
    """Totals of the whole queue (and how much of it operators hold now), per predicted class, and the
    sources and versions present."""
    summary = QueueSummary()
    live = and_(ReviewClaim.prediction_id == Prediction.id, ReviewClaim.expires_at > now)
    summary.held = session.scalar(pending_select(func.count(Prediction.id)).join(ReviewClaim, live)) or 0
    rows = session.execute(
        pending_select(
            Prediction.label,
            Document.source,
            Prediction.model_version,
            func.count(Prediction.id),
            func.min(RoutingDecision.decided_at),
        ).group_by(Prediction.label, Document.source, Prediction.model_version)
    ).all()
    sources: set[str] = set()
    versions: set[str] = set()
    for label, source, version, count, oldest in rows:
        summary.total += count
        summary.per_label[label] += count
        sources.add(source)
        versions.add(version)
        if oldest is not None:
            oldest = as_utc(oldest)
            summary.oldest = oldest if summary.oldest is None else min(summary.oldest, oldest)
    summary.sources = sorted(sources)
    summary.versions = sorted(versions)
    return summary


def is_pending(session: Session, prediction_id: int) -> bool:
    found = session.scalar(pending_select(Prediction.id).where(Prediction.id == prediction_id))
    return found is not None


def _review_documents(session: Session, document_ids: Iterable[int]) -> dict[int, list[OutputDocument]]:
    """The documents under review in force of each file (by its id)."""
    found: dict[int, list[OutputDocument]] = {}
    ids = sorted(set(document_ids))
    for start in range(0, len(ids), IN_CHUNK):
        for output in session.scalars(
            select(OutputDocument).where(
                OutputDocument.document_id.in_(ids[start : start + IN_CHUNK]),
                OutputDocument.kind == DecisionKind.review,
                OutputDocument.superseded_at.is_(None),
            )
        ):
            found.setdefault(output.document_id, []).append(output)
    return found


def _by_document(session: Session, items: list[QueueItem]) -> list[list[QueueItem]]:
    """``items`` grouped by the document under review their page belongs to, in the order of each
    group's first item (a page of no such document, or of another model, is a group alone)."""
    outputs = _review_documents(session, (i.document_id for i in items))
    groups: dict[object, list[QueueItem]] = {}
    for item in items:
        output = next(
            (
                o
                for o in outputs.get(item.document_id, [])
                if item.page_number in o.pages
                and o.model_name in (None, item.model_name)
                and o.model_version in (None, item.model_version)
            ),
            None,
        )
        key: object = ("document", output.id) if output is not None else ("page", item.prediction_id)
        groups.setdefault(key, []).append(replace(item, doc_pages=len(output.pages) if output else 1))
    return list(groups.values())


def _row(group: list[QueueItem], operator_id: int | None) -> QueueItem:
    """One queue row for a document: its first waiting page, held as the most telling of its pages'
    claims (another operator's before the operator's own)."""
    held = [i for i in group if i.claimed_by_id is not None]
    held.sort(key=lambda i: i.claimed_by_id == operator_id)
    claim = held[0] if held else group[0]
    return replace(
        group[0],
        waiting_pages=len(group),
        claimed_by=claim.claimed_by,
        claimed_by_id=claim.claimed_by_id,
        claim_expires=claim.claim_expires,
    )


def list_documents(
    session: Session,
    filters: QueueFilters,
    now: datetime,
    operator_id: int | None = None,
    *,
    limit: int = 100,
    offset: int = 0,
) -> tuple[list[QueueItem], int]:
    """One page of the filtered queue by document, oldest first (a row: the document's oldest waiting
    page, its page count, who holds it); and the number of rows of the filtered queue."""
    items, _ = list_pending(session, filters, now, limit=None)
    rows = [_row(group, operator_id) for group in _by_document(session, items)]
    return rows[offset : offset + limit], len(rows)


def open_ids(session: Session, filters: QueueFilters, operator_id: int, now: datetime) -> list[int]:
    """The filtered queue's rows in order, by the id of each one's first waiting page, leaving out the
    documents of which another operator holds a page."""
    items, _ = list_pending(session, filters, now, limit=None)
    return [
        group[0].prediction_id
        for group in _by_document(session, items)
        if all(i.claimed_by_id in (None, operator_id) for i in group)
    ]


def neighbours(ids: list[int], current: int) -> tuple[int | None, int | None]:
    """(previous, next) of ``current`` in ``ids``; when ``current`` is not there, next is the first."""
    if current not in ids:
        return None, (ids[0] if ids else None)
    at = ids.index(current)
    previous = ids[at - 1] if at > 0 else None
    following = ids[at + 1] if at + 1 < len(ids) else None
    return previous, following
