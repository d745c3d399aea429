"""Run one classify job end to end: resolve -> decode -> infer -> explain/decide/record -> route -> finish.

The Celery task is a thin shell over :func:`run_job`; tests call it directly, with no broker.
"""

from __future__ import annotations

import time
from pathlib import Path

from schema.db import session_scope
from schema.enums import DocumentState
from schema.logs import get_logger
from schema.messages import ClassifyJob
from schema.tables import Document, RoutingDecision
from worker import metrics
from worker.files import OnDone, apply_on_done, move_to_error
from worker.jobs import callback_due, mark_callback_queued, refresh_job
from worker.pipeline import infer
from worker.process import (
    JobOutcome,
    Work,
    WorkerContext,
    decode_all,
    fail_document,
    record_document,
    resolve_all,
)
from worker.record import now, unapplied_routes
from worker.route import extract_pages, route_item, route_item_for
from worker.routing import RoutingError, RoutingRules

log = get_logger(__name__)


def _deliver_one(
    ctx: WorkerContext, document: Document, decision: RoutingDecision, content: Path, rules: RoutingRules
) -> bool:
    assert decision.prediction is not None
    page = decision.prediction.page
    try:
        item = route_item_for(document, page, decision.label, content)
        decision.rule, decision.destination = route_item(item, rules, ctx.settings, ctx.sender)
    except RoutingError as exc:
        metrics.error("routing")
        if "delivery failed" not in (decision.reason or ""):
            decision.reason = f"{decision.reason}; delivery failed: {exc}"
        log.error("route.failed", document_id=document.id, page=page.page_number, error=str(exc))
        return False
    decision.applied_at = now()
    return True


def deliver_pending(ctx: WorkerContext, work: Work, rules: RoutingRules) -> None:
    """Deliver the document's automatic decisions not delivered yet; each is marked as it is delivered."""
    with session_scope(ctx.sessions) as session:
        document = session.get(Document, work.document_id)
        if document is None or document.state != DocumentState.done:
            return
        pending = unapplied_routes(session, document.id)
        if not pending:
            return
        candidates = [
            p for p in (work.path, Path(document.stored_path) if document.stored_path else None) if p
        ]
        source = next((p for p in candidates if p.is_file()), None)
        if source is None:
            for decision in pending:
                decision.reason = f"{decision.reason}; delivery failed: the document's file is gone"
            metrics.error("routing")
            log.error("route.no_file", document_id=document.id)
            return
        rendered: dict[int, Path] = {}
        if (document.page_count or 1) > 1:
            numbers = {d.prediction.page.page_number for d in pending if d.prediction}
            rendered = extract_pages(
                source, numbers, ctx.settings.dir("processing") / "pages", document.sha256
            )
        try:
            for decision in pending:
                assert decision.prediction is not None
                content = rendered.get(decision.prediction.page.page_number, source)
                if _deliver_one(ctx, document, decision, content, rules):
                    session.commit()  # one page delivered is one page recorded as delivered
        finally:
            for path in rendered.values():
                path.unlink(missing_ok=True)


def finish_file(ctx: WorkerContext, work: Work, on_done: OnDone) -> None:
    """After the outcome is committed: archive, delete or keep the file; a failed one to the error area."""
    with session_scope(ctx.sessions) as session:
        document = session.get(Document, work.document_id)
        if document is None or document.state not in (DocumentState.done, DocumentState.failed):
            return
        if document.state == DocumentState.done and unapplied_routes(session, document.id):
            log.warning("file.kept_undelivered", document_id=document.id, path=str(work.path))
            return  # a page is not delivered yet: the file stays where it is for the next attempt
        owns_record = not document.stored_path or work.path is None or Path(document.stored_path) == work.path
        if document.state == DocumentState.failed:
            where = move_to_error(
                work.path,
                ctx.settings.dir("error"),
                document.filename,
                document.sha256,
                document.error or "failed",
            )
        else:
            where = apply_on_done(
                work.path, on_done, ctx.settings.dir("archive"), document.filename, document.sha256
            )
        if owns_record and where != (Path(document.stored_path) if document.stored_path else None):
            document.stored_path = str(where) if where else None


def finish_job(ctx: WorkerContext, job_id: str | None) -> None:
    """Recount the job; when it has just finished and has a callback URL, queue the callback task once."""
    if job_id is None:
        return
    with session_scope(ctx.sessions) as session:
        refresh_job(session, job_id)
        due = callback_due(session, job_id)
    if due and ctx.send_callback is not None:
        ctx.send_callback(job_id)
        with session_scope(ctx.sessions) as session:
            mark_callback_queued(session, job_id)


def run_job(ctx: WorkerContext, job: ClassifyJob) -> JobOutcome:
    """Classify every document of ``job`` (all their pages as one batch), record, route and finish."""
    started = time.perf_counter()
    with session_scope(ctx.sessions) as session:
        model = ctx.models.get(session, job.model_name)
    works = resolve_all(ctx, job)
    outcome = JobOutcome(documents=len(works), already_done=sum(1 for w in works if w.finished))
    decoded = decode_all(ctx, works, model)
    scores = infer(model, [doc for _, doc in decoded])
    ready = {id(work): (doc, doc_scores) for (work, doc), doc_scores in zip(decoded, scores, strict=True)}
    rules = RoutingRules.load(ctx.settings.routes_file)
    for work in works:  # document by document: recorded, delivered, its file finished
        if id(work) in ready:
            doc, doc_scores = ready.pop(id(work))
            kinds = record_document(ctx, work, doc, doc_scores, model)
            outcome.pages += len(kinds)
            outcome.auto += sum(1 for k in kinds if k.value == "auto")
            outcome.review += sum(1 for k in kinds if k.value == "review")
        deliver_pending(ctx, work, rules)
        finish_file(ctx, work, job.on_done)
    outcome.failed = _count_failed(ctx, works)
    finish_job(ctx, job.job_id)
    metrics.TASK_SECONDS.observe(time.perf_counter() - started)
    log.info(
        "job.processed", job_id=job.job_id, seconds=round(time.perf_counter() - started, 3), **vars(outcome)
    )
    return outcome


def _count_failed(ctx: WorkerContext, works: list[Work]) -> int:
    ids = {w.document_id for w in works}
    with session_scope(ctx.sessions) as session:
        return sum(
            1 for i in ids if (d := session.get(Document, i)) is not None and d.state == DocumentState.failed
        )


def fail_job(ctx: WorkerContext, job: ClassifyJob, reason: str) -> None:
    """A permanent fault: every unfinished document of the job becomes ``failed`` with ``reason``."""
    works = resolve_all(ctx, job)
    for work in works:
        if not work.finished and not work.repeat:
            fail_document(ctx, work, reason)
    for work in works:
        finish_file(ctx, work, job.on_done)
    finish_job(ctx, job.job_id)
