"""Submission jobs: counts and completion, recomputed from the recorded rows (so calling twice is harmless).

Any door may call :func:`refresh_job` after recording; the worker recounts at the end of each job
(:func:`finish_job`) and queues the job's callback once when the job has just finished.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session, sessionmaker

from schema.db import session_scope
from schema.enums import DecisionKind, DecisionOrigin, DocumentState, JobState
from schema.logs import get_logger
from schema.tables import Document, Page, Receipt, RoutingDecision, SubmissionJob, utcnow
from worker.record import FINISHED

log = get_logger(__name__)


def job_document_ids(session: Session, job_id: str) -> set[int]:
    """Documents of a job: those it created and those it brought again (receipts, duplicates included)."""
    stmt = select(Document.id).where(
        or_(
            Document.job_id == job_id,
            Document.id.in_(select(Receipt.document_id).where(Receipt.job_id == job_id)),
        )
    )
    return set(session.scalars(stmt))


def _arrivals(session: Session, job_id: str) -> int:
    return int(session.scalar(select(func.count(Receipt.id)).where(Receipt.job_id == job_id)) or 0)


def _page_counts(session: Session, doc_ids: set[int]) -> dict[str, int]:
    counts = {"pages": 0, DecisionKind.auto.value: 0, DecisionKind.review.value: 0}
    if not doc_ids:
        return counts
    counts["pages"] = int(
        session.scalar(select(func.count(Page.id)).where(Page.document_id.in_(doc_ids))) or 0
    )
    rows = session.execute(
        select(RoutingDecision.kind, func.count(RoutingDecision.id))
        .where(
            RoutingDecision.document_id.in_(doc_ids),
            RoutingDecision.origin == DecisionOrigin.model,
            RoutingDecision.page_id.is_not(None),
        )
        .group_by(RoutingDecision.kind)
    )
    for kind, n in rows:
        counts[DecisionKind(kind).value] = int(n)
    return counts


def refresh_job(session: Session, job_id: str) -> bool:
    """Recount a job's pages (auto, review) and failed documents; mark it done when every document is.

    ``n_failed`` counts documents that failed (they have no readable pages); ``n_pages``, ``n_auto`` and
    ``n_review`` count pages by the model's decision. The job is done when every document it holds is
    finished and at least ``n_documents`` arrivals are recorded. Returns True when the job is done.
    Does not commit.
    """
    job = session.get(SubmissionJob, job_id, with_for_update=True, populate_existing=True)
    if job is None:
        log.warning("job.unknown", job_id=job_id)
        return False
    doc_ids = job_document_ids(session, job_id)
    states = list(session.scalars(select(Document.state).where(Document.id.in_(doc_ids)))) if doc_ids else []
    counts = _page_counts(session, doc_ids)
    job.n_pages = counts["pages"]
    job.n_auto = counts[DecisionKind.auto.value]
    job.n_review = counts[DecisionKind.review.value]
    job.n_failed = sum(1 for s in states if s == DocumentState.failed)
    arrived = max(_arrivals(session, job_id), len(doc_ids))
    finished = bool(states) and all(s in FINISHED for s in states) and arrived >= job.n_documents
    if finished and job.state != JobState.done:
        job.state = JobState.done
        job.finished_at = utcnow()
        log.info("job.done", job_id=job_id, pages=job.n_pages, auto=job.n_auto, review=job.n_review)
    elif not finished and job.state == JobState.queued and states:
        job.state = JobState.running
    return job.state == JobState.done


def callback_due(session: Session, job_id: str) -> bool:
    """True when the job is done, has a callback URL, and no callback was queued for it yet."""
    job = session.get(SubmissionJob, job_id)
    return bool(job and job.state == JobState.done and job.callback_url and job.callback_state is None)


def mark_callback_queued(session: Session, job_id: str) -> None:
    job = session.get(SubmissionJob, job_id)
    if job is not None and job.callback_state is None:
        job.callback_state = "pending"


def finish_job(
    sessions: sessionmaker[Session], job_id: str | None, send_callback: Callable[[str], None] | None
) -> None:
    """Recount the job; when it has just finished and has a callback URL, queue the callback task once."""
    if job_id is None:
        return
    with session_scope(sessions) as session:
        refresh_job(session, job_id)
        due = callback_due(session, job_id)
    if due and send_callback is not None:
        send_callback(job_id)
        with session_scope(sessions) as session:
            mark_callback_queued(session, job_id)
