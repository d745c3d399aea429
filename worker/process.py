"""One classify job against the database: resolve documents, run the pipeline's steps, finish each file.

Every effect is idempotent, so a redelivered or retried job redoes only what is missing:
documents already finished are not classified again, decisions already delivered are not delivered
again, and files already moved are found where they went. Transient faults (database, broker, file
system) propagate so that the task retries; a file that cannot be read becomes a ``failed`` record.
"""

from __future__ import annotations

import hashlib
import os
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image
from sqlalchemy.orm import Session, sessionmaker

from schema.db import session_scope
from schema.enums import DecisionKind, DecisionOrigin, DocumentState
from schema.logs import get_logger
from schema.manifest import sha256_file
from schema.messages import ClassifyJob, DocumentRef
from schema.tables import Document, SubmissionJob
from worker import metrics
from worker.decide import Decision
from worker.imaging import UnreadableImage, media_type_of
from worker.inference import LoadedModel
from worker.pipeline import (
    DecodedDocument,
    PageScores,
    PreparedPage,
    decide_page,
    decode_document,
    explain,
    policy_for,
    render_previews,
)
from worker.poison import MAX_DECODE_CRASHES, DecodeGuard, dead_letter_reason
from worker.record import (
    add_receipt,
    ensure_decision,
    ensure_document,
    ensure_page,
    ensure_prediction,
    is_finished,
    now,
    receipt_document,
    record_failure,
)
from worker.registry import ModelCache
from worker.routing import QueueSender
from worker.settings import WorkerSettings

log = get_logger(__name__)


@dataclass
class WorkerContext:
    """What a job needs besides its message; one per worker process."""

    settings: WorkerSettings
    sessions: sessionmaker[Session]
    models: ModelCache
    worker_name: str = field(default_factory=lambda: f"{socket.gethostname()}:{os.getpid()}")
    sender: QueueSender | None = None
    send_callback: Callable[[str], None] | None = None
    pid: int = field(default_factory=os.getpid)
    decode_guard: DecodeGuard | None = None  # counts decoding attempts that killed the process


@dataclass
class Work:
    """One document of a job, as resolved against the database."""

    ref: DocumentRef
    document_id: int
    sha256: str
    filename: str
    path: Path | None  # the file this message brought, if it still exists
    finished: bool
    repeat: bool = False  # the same content appeared earlier in this job


@dataclass
class JobOutcome:
    documents: int = 0
    pages: int = 0
    auto: int = 0
    review: int = 0
    failed: int = 0
    already_done: int = 0


def placeholder_sha(path: str) -> str:
    """A stable key for a file that cannot be read at all (missing), so its failure can be recorded."""
    return hashlib.sha256(b"docsort-unreadable\0" + path.encode("utf-8", "surrogateescape")).hexdigest()


def _job_exists(session: Session, job_id: str | None) -> str | None:
    if job_id is None:
        return None
    if session.get(SubmissionJob, job_id) is None:
        log.warning("job.unknown", job_id=job_id)
        return None
    return job_id


def _resolve_known(session: Session, ref: DocumentRef, document: Document) -> Work:
    candidates = [Path(p) for p in (ref.path, document.stored_path) if p]
    path = next((p for p in candidates if p.is_file()), None)
    return Work(ref, document.id, document.sha256, document.filename, path, is_finished(document))


def resolve(session: Session, ref: DocumentRef, job_id: str | None) -> Work:
    """Find or create the document a reference names (document_id, or a path hashed and deduplicated)."""
    if ref.document_id is not None:
        document = session.get(Document, ref.document_id)
        if document is not None:
            return _resolve_known(session, ref, document)
        log.warning("document.unknown_id", document_id=ref.document_id, path=ref.path)
    path = Path(ref.path)
    source_ref = ref.source_ref or str(path)
    readable = path.is_file()
    if not readable:
        earlier = receipt_document(session, source_ref, job_id)
        if earlier is not None and is_finished(earlier):  # a redelivery after the file was moved on
            return _resolve_known(session, ref, earlier)
    try:
        sha = sha256_file(path) if readable else placeholder_sha(str(path))
    except OSError:
        sha, readable = placeholder_sha(str(path)), False
    values = {
        "sha256": sha,
        "source": ref.source[:32],
        "source_ref": source_ref[:2000],
        "filename": (ref.filename or path.name)[:1000],
        "size_bytes": path.stat().st_size if readable else None,
        "stored_path": str(path),
        "job_id": job_id,
    }
    document, created = ensure_document(session, values)
    add_receipt(
        session, document, job_id=job_id, source=ref.source[:32], source_ref=source_ref, duplicate=not created
    )
    return Work(ref, document.id, sha, document.filename, path if readable else None, is_finished(document))


def resolve_all(ctx: WorkerContext, job: ClassifyJob) -> list[Work]:
    works: list[Work] = []
    seen: set[int] = set()
    for ref in job.documents:
        with session_scope(ctx.sessions) as session:
            job_id = _job_exists(session, job.job_id)
            work = resolve(session, ref, job_id)
            document = session.get(Document, work.document_id)
            if document is not None and not work.finished and work.document_id not in seen:
                document.state = DocumentState.processing
        work.repeat = work.document_id in seen
        seen.add(work.document_id)
        works.append(work)
    return works


def fail_document(ctx: WorkerContext, work: Work, reason: str) -> None:
    """Record a document as failed (a ``failed`` decision and state), once."""
    with session_scope(ctx.sessions) as session:
        document = session.get(Document, work.document_id)
        if document is None or document.state == DocumentState.done:
            return
        record_failure(session, document, reason)
    work.finished = True
    metrics.document_done("failed")
    log.warning("document.failed", document_id=work.document_id, file=work.filename, reason=reason)


def decode_all(
    ctx: WorkerContext, works: list[Work], model: LoadedModel
) -> list[tuple[Work, DecodedDocument]]:
    decoded: list[tuple[Work, DecodedDocument]] = []
    for work in works:
        if work.finished or work.repeat:
            continue
        doc = _decode_guarded(ctx, work, model)
        if doc is not None:
            decoded.append((work, doc))
    return decoded


def _decode_guarded(ctx: WorkerContext, work: Work, model: LoadedModel) -> DecodedDocument | None:
    """One document decoded, or failed with its reason (None): unreadable, an unexpected decoder error,
    or content that killed the worker process ``MAX_DECODE_CRASHES`` times (dead-lettered)."""
    guard = ctx.decode_guard
    crashes = guard.start(work.sha256) if guard is not None else 0
    if crashes >= MAX_DECODE_CRASHES:
        metrics.error("poison")
        fail_document(ctx, work, dead_letter_reason(crashes))
        return None
    try:
        if work.path is None:
            raise UnreadableImage(work.ref.path, "file not found")
        media_type_of(work.path)
        return decode_document(work.path, model.manifest.input)
    except UnreadableImage as exc:
        metrics.error("unreadable")
        fail_document(ctx, work, exc.reason)
    except OSError:
        raise  # a file system fault: transient, the task retries
    except Exception as exc:  # the decoder failed in a way it does not report itself: this file only
        metrics.error("decoder")
        log.exception("decode.unexpected_error", document_id=work.document_id, file=work.filename)
        fail_document(ctx, work, f"the decoder failed on this file ({type(exc).__name__}: {exc})")
    finally:
        if guard is not None:
            guard.finish(work.sha256)
    return None


def _record_page(
    session: Session,
    ctx: WorkerContext,
    work: Work,
    page: PreparedPage,
    scores: PageScores,
    model: LoadedModel,
    decision: Decision,
    page_image: Image.Image | None,
) -> DecisionKind:
    row = ensure_page(session, work.document_id, page.number, page.width, page.height)
    prediction, _ = ensure_prediction(
        session,
        row,
        model_name=model.name,
        model_version=model.version,
        decision=decision,
        latency_ms=scores.latency_ms,
        worker=ctx.worker_name,
    )
    values = {
        "document_id": work.document_id,
        "page_id": row.id,
        "prediction_id": prediction.id,
        "origin": DecisionOrigin.model,
        "kind": decision.kind,
        "label": decision.label,
        "reason": decision.reason,
    }
    if decision.kind == DecisionKind.review and page_image is not None:
        review_dir = ctx.settings.dir("review")
        image_path, cam_path = explain(
            page_image, page.number, scores, decision, model, review_dir, work.sha256
        )
        row.image_path = str(image_path)
        values["cam_path"] = str(cam_path) if cam_path else None
    recorded, _ = ensure_decision(session, values)
    return recorded.kind


def _review_images(ctx: WorkerContext, work: Work, numbers: set[int]) -> dict[int, Image.Image]:
    """The review pages decoded again at review size (only they are kept in memory, only now)."""
    if not numbers or work.path is None:
        return {}
    try:
        return render_previews(work.path, numbers, ctx.settings.review_max_side)
    except UnreadableImage as exc:  # it decoded a moment ago: the file changed under us
        metrics.error("review_image")
        log.error("review.image_failed", document_id=work.document_id, reason=exc.reason)
        return {}


def record_document(
    ctx: WorkerContext, work: Work, doc: DecodedDocument, scores: list[PageScores], model: LoadedModel
) -> list[DecisionKind]:
    """Record one document's pages, predictions and decisions in one transaction; the decision kinds."""
    policy = policy_for(model, ctx.settings)
    decisions = [decide_page(page_scores, model, policy) for page_scores in scores]
    review = {p.number for p, d in zip(doc.pages, decisions, strict=True) if d.kind == DecisionKind.review}
    images = _review_images(ctx, work, review)
    kinds: list[DecisionKind] = []
    with session_scope(ctx.sessions) as session:
        document = session.get(Document, work.document_id)
        if document is None or is_finished(document):
            return kinds  # another worker finished it meanwhile
        document.page_count = len(doc.pages)
        document.media_type = doc.media_type
        for page, page_scores, decision in zip(doc.pages, scores, decisions, strict=True):
            image = images.get(page.number)
            kinds.append(_record_page(session, ctx, work, page, page_scores, model, decision, image))
        document.state = DocumentState.done
        document.error = None
        document.finished_at = now()
    work.finished = True
    for kind, page_scores in zip(kinds, scores, strict=True):
        metrics.page_done(model.name, kind.value, page_scores.latency_ms / 1000.0)
    metrics.document_done("done")
    return kinds
