"""What a job came to: its state, each page's outcome and each document's. Served by the jobs API, printed by
``docsort status`` and ``docsort submit --wait``, and posted to a job's callback URL.

A page's fields are those of ``docsort classify --json``: ``path``, ``page``, ``status`` (``ok``,
``error``, or ``pending`` while the page is not classified yet), ``label``, ``confidence``,
``decision`` (``auto`` or ``review``; an operator's decision wins over the model's) and ``error``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import datetime
from pathlib import PurePosixPath
from typing import Any, Literal

from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from schema.enums import DecisionKind, DecisionOrigin, DocumentState
from schema.tables import Document, OutputDocument, Page, Prediction, Receipt, RoutingDecision, SubmissionJob

PageStatus = Literal["ok", "error", "pending"]


class PageOutcome(BaseModel):
    path: str = Field(description="The file as it arrived: original path, upload name, or tag/name.")
    page: int | None = Field(description="1-based page number; null for a document that failed whole.")
    status: PageStatus
    label: str | None = None
    confidence: float | None = None
    decision: str | None = Field(None, description="`auto` or `review` (failed pages: null).")
    error: str | None = None
    document_id: int
    duplicate: bool = False


class DocumentOutcome(BaseModel):
    document_id: int
    filename: str
    source: str
    source_ref: str
    sha256: str
    media_type: str | None
    size_bytes: int | None
    state: str
    error: str | None
    received_at: datetime
    finished_at: datetime | None
    pages: list[PageOutcome]


DocumentStatus = Literal["auto", "review", "failed"]


class DocumentResult(BaseModel):
    """One document as it leaves docsort: pages of one received file, its class and outcome."""

    source: str = Field(description="The file it came from, as it arrived (path, upload name, tag/name).")
    document_id: int = Field(description="The received file's id (`GET /v1/documents/{id}`).")
    seq: int = Field(description="1-based position among the file's documents.")
    pages: list[int] = Field(description="1-based page numbers of the file it holds, in order.")
    label: str | None
    confidence: float | None
    outcome: DocumentStatus = Field(
        description="`auto` (delivered by the model's decision), `review` (sent to review; see "
        "`decided_by`), or `failed`."
    )
    decided_by: Literal["model", "operator"]
    delivered: str | None = Field(description="Where it was delivered (a path, queue:NAME, webhook:URL).")
    reason: str | None = None


class JobCounts(BaseModel):
    documents: int
    duplicates: int
    pages: int
    auto: int
    review: int
    failed: int


class JobResult(BaseModel):
    job_id: str
    state: str
    source: str
    submitted_by: str
    created_at: datetime
    finished_at: datetime | None
    callback_state: str | None
    counts: JobCounts
    pages: list[PageOutcome]
    documents: list[DocumentResult] = Field(default_factory=list)


def _display_path(source: str, source_ref: str, filename: str) -> str:
    if source == "watch":
        return f"{source_ref}/{filename}" if source_ref else filename
    return source_ref or filename


def _chosen_decision(decisions: Sequence[RoutingDecision]) -> RoutingDecision | None:
    if not decisions:
        return None
    by_operator = [d for d in decisions if d.origin == DecisionOrigin.operator]
    return max(by_operator or decisions, key=lambda d: d.id)


def _page_outcome(page: Page, decisions: Sequence[RoutingDecision], base: dict[str, Any]) -> PageOutcome:
    decided = [p for p in page.predictions if p.decisions] or page.predictions  # shadows decide nothing
    prediction: Prediction | None = max(decided, key=lambda p: p.id) if decided else None
    decision = _chosen_decision(decisions)
    if decision is not None and decision.kind == DecisionKind.failed:
        return PageOutcome(**base, page=page.page_number, status="error", error=decision.reason)
    if prediction is None:
        return PageOutcome(**base, page=page.page_number, status="pending")
    return PageOutcome(
        **base,
        page=page.page_number,
        status="ok",
        label=(
            decision.label if decision and decision.origin == DecisionOrigin.operator else prediction.label
        ),
        confidence=prediction.confidence,
        decision=decision.kind.value if decision else None,
    )


def document_pages(
    doc: Document, decisions: Sequence[RoutingDecision], path: str, duplicate: bool
) -> list[PageOutcome]:
    """One outcome per page; one ``error`` or ``pending`` outcome for a document without pages."""
    base: dict[str, Any] = {"path": path, "document_id": doc.id, "duplicate": duplicate}
    by_page: dict[int | None, list[RoutingDecision]] = defaultdict(list)
    for d in decisions:
        by_page[d.page_id].append(d)
    if doc.pages:
        return [_page_outcome(p, by_page[p.id], base) for p in doc.pages]
    whole = _chosen_decision(by_page[None])
    if doc.state == DocumentState.failed or (whole is not None and whole.kind == DecisionKind.failed):
        reason = doc.error or (whole.reason if whole else None) or "failed"
        return [PageOutcome(**base, page=None, status="error", error=reason)]
    return [PageOutcome(**base, page=None, status="pending")]


def _outcome(output: OutputDocument, reviewed: bool) -> DocumentStatus:
    if output.kind == DecisionKind.failed:
        return "failed"
    return "review" if reviewed or output.kind == DecisionKind.review else "auto"


def document_results(doc: Document, source: str) -> list[DocumentResult]:
    """The file's documents in force (an operator's replace the model's one they decided)."""
    current = [o for o in doc.outputs if o.superseded_at is None]
    current.sort(key=lambda o: (min(o.pages) if o.pages else 0, o.generation, o.seq))
    return [
        DocumentResult(
            source=source,
            document_id=doc.id,
            seq=index,
            pages=list(o.pages),
            label=o.label,
            confidence=o.confidence,
            outcome=_outcome(o, reviewed=o.origin == DecisionOrigin.operator),
            decided_by=o.origin.value,
            delivered=o.destination if o.delivered_at is not None else None,
            reason=o.reason,
        )
        for index, o in enumerate(current, start=1)
    ]


def _load_documents(session: Session, ids: Iterable[int]) -> dict[int, Document]:
    ids = list(set(ids))
    if not ids:
        return {}
    stmt = (
        select(Document)
        .where(Document.id.in_(ids))
        .options(selectinload(Document.pages).selectinload(Page.predictions), selectinload(Document.outputs))
    )
    return {d.id: d for d in session.scalars(stmt)}


def _load_decisions(session: Session, ids: Iterable[int]) -> dict[int, list[RoutingDecision]]:
    out: dict[int, list[RoutingDecision]] = defaultdict(list)
    ids = list(set(ids))
    if ids:
        for d in session.scalars(select(RoutingDecision).where(RoutingDecision.document_id.in_(ids))):
            out[d.document_id].append(d)
    return out


def job_result(session: Session, job_id: str) -> JobResult | None:
    """The job's state and every page of every file it brought, in arrival order; None if unknown."""
    job = session.get(SubmissionJob, job_id)
    if job is None:
        return None
    receipts = list(session.scalars(select(Receipt).where(Receipt.job_id == job_id).order_by(Receipt.id)))
    docs = _load_documents(session, (r.document_id for r in receipts))
    decisions = _load_decisions(session, docs)
    pages: list[PageOutcome] = []
    documents: list[DocumentResult] = []
    for r in receipts:
        doc = docs[r.document_id]
        path = _display_path(r.source, r.source_ref, doc.filename)
        pages.extend(document_pages(doc, decisions[doc.id], path, r.duplicate))
        results = document_results(doc, path)
        if r.duplicate and _first_client(session, doc.id) != job.client_id:
            # another client's content: its outcome, never where that client's copy was delivered
            results = [d.model_copy(update={"delivered": None}) for d in results]
        documents.extend(results)
    counts = JobCounts(
        documents=job.n_documents,
        duplicates=job.n_duplicate,
        pages=job.n_pages,
        auto=job.n_auto,
        review=job.n_review,
        failed=job.n_failed,
    )
    return JobResult(
        job_id=job.id,
        state=job.state.value,
        source=job.source,
        submitted_by=job.submitted_by,
        created_at=job.created_at,
        finished_at=job.finished_at,
        callback_state=job.callback_state,
        counts=counts,
        pages=pages,
        documents=documents,
    )


def _first_client(session: Session, document_id: int) -> int | None:
    """The client whose job first brought the content (None: a door without clients)."""
    stmt = (
        select(SubmissionJob.client_id)
        .join(Receipt, Receipt.job_id == SubmissionJob.id)
        .where(Receipt.document_id == document_id)
        .order_by(Receipt.id)
        .limit(1)
    )
    return session.scalar(stmt)


def document_result(
    session: Session, document_id: int, receipt: Receipt | None = None
) -> DocumentOutcome | None:
    """A document's outcome; seen through ``receipt`` (a client's own arrival of the content), its name,
    source and time are the receipt's, never those of another client's arrival of the same bytes."""
    doc = _load_documents(session, [document_id]).get(document_id)
    if doc is None:
        return None
    decisions = _load_decisions(session, [document_id])[document_id]
    filename, source, source_ref, received_at = doc.filename, doc.source, doc.source_ref, doc.received_at
    if receipt is not None:
        source, source_ref, received_at = receipt.source, receipt.source_ref, receipt.received_at
        filename = PurePosixPath(receipt.source_ref.replace("\\", "/")).name or filename
    path = _display_path(source, source_ref, filename)
    return DocumentOutcome(
        document_id=doc.id,
        filename=filename,
        source=source,
        source_ref=source_ref,
        sha256=doc.sha256,
        media_type=doc.media_type,
        size_bytes=doc.size_bytes,
        state=doc.state.value,
        error=doc.error,
        received_at=received_at,
        finished_at=doc.finished_at,
        pages=document_pages(doc, decisions, path, duplicate=False),
    )


def job_finished(state: str) -> bool:
    return state in ("done", "failed")
