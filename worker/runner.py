"""One job, top to bottom: resolve -> decode -> infer -> assemble (and decide) -> explain -> record ->
deliver -> finish.

The Celery task (:mod:`worker.tasks`) is a thin shell over :func:`run_job`; tests call it directly, with
no broker. Each step is a module with a narrow interface. Every effect is idempotent, so a redelivered or
retried job redoes only what is missing: files already finished are not classified again, decisions
already delivered are not delivered again, and files already moved are found where they went. Transient
faults (database, broker, file system) propagate so that the task retries.
"""

from __future__ import annotations

import time

from schema.db import session_scope
from schema.enums import DecisionKind
from schema.logs import get_logger
from schema.messages import ClassifyJob
from schema.split import SplitRules
from worker import metrics
from worker.assemble import Assembly, assemble_file, preview_side
from worker.audit import audit_file
from worker.context import JobFile, JobOutcome, WorkerContext
from worker.decide import Policy, decide
from worker.decode import DecodedFile, decode_files
from worker.delivery import deliver_pending
from worker.explain import explain_file
from worker.files import OnDone, finish_files
from worker.imaging import PreparedPage, PreviewKeep
from worker.infer import PageScores, infer
from worker.inference import LoadedModel
from worker.jobs import finish_job
from worker.record import FileRecord, fail_file, record_files
from worker.resolve import resolve_files
from worker.routing import RoutingRules
from worker.shadow import record_shadow

log = get_logger(__name__)


class DeliveryPending(OSError):
    """Documents are recorded but a destination refused them: a transient fault, the job is retried with
    backoff (its files stay in the processing area until delivered; the reason is on each document)."""


def run_job(ctx: WorkerContext, job: ClassifyJob) -> JobOutcome:
    """Classify every file of ``job`` (all their pages as one batch), record, deliver and finish."""
    started = time.perf_counter()
    with session_scope(ctx.sessions) as session:
        model = ctx.models.get(session, job.model_name)
    files = resolve_files(ctx, job)
    outcome = JobOutcome(documents=len(files), already_done=sum(1 for f in files if f.finished))
    decoded, failures = decode_files(
        files,
        model.manifest.input,
        ctx.decode_guard,
        ctx.settings.decode_limits(),
        lambda f: preview_side(SplitRules.parse(f.split or ctx.settings.split)),
        ctx.settings.decode_threads,
        _keep(ctx),
    )
    for failure in failures:
        fail(ctx, failure.file, failure.reason)
    scores = infer(model, [d for _, d in decoded])
    records = _assemble(ctx, model, decoded, scores)
    kinds = record_files(ctx.sessions, records, model, ctx.worker_name)
    for record, file_kinds in zip(records, kinds, strict=True):
        audit_file(ctx, record.job_file, record.decoded, record.scores, model)
        _count(outcome, model, file_kinds, record.scores)
    record_shadow(ctx, model, decoded)
    rules = RoutingRules.load(ctx.settings.routes_file)
    to_deliver = [(f.document_id, f.path) for f in files]
    undelivered = deliver_pending(ctx.sessions, to_deliver, rules, ctx.settings, ctx.sender)
    outcome.failed = finish(ctx, files, job.on_done)
    finish_job(ctx.sessions, job.job_id, ctx.send_callback)
    seconds = time.perf_counter() - started
    metrics.job_done(seconds)
    log.info("job.processed", job_id=job.job_id, seconds=round(seconds, 3), **vars(outcome))
    if undelivered:
        raise DeliveryPending(f"{undelivered} document(s) of job {job.job_id} could not be delivered yet")
    return outcome


def _assemble(
    ctx: WorkerContext,
    model: LoadedModel,
    decoded: list[tuple[JobFile, DecodedFile]],
    scores: list[list[PageScores]],
) -> list[FileRecord]:
    """Steps 4-5 per file: its pages assembled into documents, each decided, and the pages of those sent
    to review explained; a file with no page read, or no document, fails."""
    policy = Policy.from_thresholds(model.manifest.thresholds, ctx.settings.confidence, ctx.settings.margin)
    names = model.manifest.class_names
    records: list[FileRecord] = []
    for (job_file, decoded_file), file_scores in zip(decoded, scores, strict=True):
        if decoded_file.pages and all(p.error for p in decoded_file.pages):  # no page read: the file fails
            fail(ctx, job_file, _unreadable(decoded_file))
            continue
        own = [decide(s.probs, names, policy) for s in file_scores]
        split = SplitRules.parse(job_file.split or ctx.settings.split)
        plan = assemble_file(decoded_file, file_scores, split, names, policy)
        review = _review_pages(plan, file_scores, decoded_file.pages) if plan.documents else {}
        ready = decoded_file.kept_previews(set(review), ctx.settings.review_max_side)  # the rest dropped
        if not plan.documents:
            fail(ctx, job_file, plan.empty_reason or "no document in this file")
            continue
        explained = explain_file(
            job_file.path,
            job_file.sha256,
            review,
            model,
            ctx.settings.dir("review"),
            ctx.settings.review_max_side,
            ctx.settings.decode_limits(),
            ready,
            later={p.number: (p.width, p.height) for p in decoded_file.pages if p.number in review},
        )
        records.append(FileRecord(job_file, decoded_file, file_scores, own, plan, explained))
    return records


def _keep(ctx: WorkerContext) -> PreviewKeep | None:
    """What this job's decode keeps for review previews (:mod:`worker.kept`); None when the budget is 0."""
    budget = ctx.settings.review_keep_mb * 2**20
    return PreviewKeep(ctx.settings.review_max_side, budget) if budget > 0 else None


def fail_job(ctx: WorkerContext, job: ClassifyJob, reason: str) -> None:
    """A permanent fault: every unfinished file of the job becomes ``failed`` with ``reason``."""
    files = resolve_files(ctx, job)
    for job_file in files:
        if not job_file.finished and not job_file.repeat:
            fail(ctx, job_file, reason)
    finish(ctx, files, job.on_done)
    finish_job(ctx.sessions, job.job_id, ctx.send_callback)


def fail(ctx: WorkerContext, job_file: JobFile, reason: str) -> None:
    if fail_file(ctx.sessions, job_file, reason):
        metrics.document_done("failed")
        log.warning(
            "document.failed", document_id=job_file.document_id, file=job_file.filename, reason=reason
        )


def finish(ctx: WorkerContext, files: list[JobFile], on_done: OnDone) -> int:
    """Step 8: the job's files moved where their outcomes send them; how many of them failed."""
    settings = ctx.settings
    return finish_files(
        ctx.sessions,
        files,
        on_done,
        settings.dir("archive"),
        settings.dir("error"),
        settings.dir("processing"),
    )


def _unreadable(decoded: DecodedFile) -> str:
    reasons = [p.error or "" for p in decoded.pages]
    if len(reasons) == 1:
        return reasons[0].removeprefix("page 1: ")
    return f"no page could be read ({'; '.join(reasons[:3])}{'; ...' if len(reasons) > 3 else ''})"


def _review_pages(
    plan: Assembly, scores: list[PageScores], pages: list[PreparedPage]
) -> dict[int, PageScores]:
    """The pages of the documents sent to review, with their scores."""
    found: dict[int, PageScores] = {}
    for page, page_scores in zip(pages, scores, strict=True):
        planned = plan.document_of(page.number)
        if planned is not None and planned.kind == DecisionKind.review:
            found[page.number] = page_scores
    return found


def _count(
    outcome: JobOutcome, model: LoadedModel, kinds: list[DecisionKind], scores: list[PageScores]
) -> None:
    outcome.pages += len(kinds)
    outcome.auto += sum(1 for k in kinds if k == DecisionKind.auto)
    outcome.review += sum(1 for k in kinds if k == DecisionKind.review)
    for kind, page_scores in zip(kinds, scores, strict=False):
        metrics.page_done(model.name, kind.value, page_scores.latency_ms / 1000.0)
    if kinds:
        metrics.document_done("done")
