"""The Celery door: ``docsort.classify.v1``, a job message naming files by path, from any system.

The door records the job (its id: the sender's ``job_id`` when it names no other job's files, else the
message's task id, so a redelivered message is the same job), a document for each new content and a
receipt for every file, then hands the recorded job to the worker as ``docsort.run.v1``. Document ids
and hashes in the message are not trusted. A file is taken only when it is a regular file under one
of ``DOCSORT_CELERY_ROOTS`` (no symlink, FIFO or device; no larger than ``DOCSORT_MAX_FILE_BYTES``):
it is copied into ``processing/celery`` and hashed, and the copy is classified; the file the message
named is never moved or deleted. ``on_done`` applies to docsort's copy (``keep``: as
``DOCSORT_ON_DONE``). A file refused is recorded failed with the reason. A message naming more than
``DOCSORT_MAX_DOCUMENTS_PER_MESSAGE`` files is refused whole.
"""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from celery import Task, shared_task
from celery.signals import worker_ready
from kombu.exceptions import OperationalError as BrokerError
from pydantic import ValidationError
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from ingest.paths import PathRefused, open_regular, real_roots, resolve_under
from ingest.recovery import remove_unrecorded_copies
from ingest.rows import add_receipt, ensure_document, placeholder_sha, receipt_document
from ingest.settings import IngestSettings, get_ingest_settings
from ingest.staging import IntakeError, Staged, stage_copy_stream
from schema import db
from schema.enums import DocumentState, JobState
from schema.logs import get_logger
from schema.messages import CLASSIFY_TASK, RUN_TASK, ClassifyJob, DocumentRef, job_from_task_args
from schema.tables import Document, SubmissionJob
from worker.record import record_failure

log = get_logger(__name__)
SOURCE = "celery"
FINISHED = (DocumentState.done, DocumentState.failed)


@lru_cache(maxsize=4)
def _sessions(url: str) -> sessionmaker[Session]:
    return db.make_sessionmaker(db.make_engine(url))


def _job_id(session: Session, wanted: str | None, task_id: str | None) -> str:
    if wanted and len(wanted) <= 36:
        existing = session.get(SubmissionJob, wanted)
        if existing is None or existing.source == SOURCE:
            return wanted
    return task_id or str(uuid.uuid4())


@dataclass(frozen=True)
class Named:
    """A file a message names, after the door looked at it: its copy in the processing area, or why not."""

    ref: DocumentRef
    source_ref: str
    staged: Staged | None = None
    refused: str | None = None


def _storable(text: str) -> str:
    """Text a database stores as it is (PostgreSQL refuses NUL characters)."""
    return text.replace("\0", "\\0")


def take_named(ref: DocumentRef, settings: IngestSettings) -> Named:
    """Copy the named file into ``processing/celery`` if it is a regular file under the Celery roots.
    The file named is only read, never moved or deleted."""
    source_ref = _storable(ref.source_ref or ref.path)[:2000]
    try:
        if "\0" in ref.path:
            raise PathRefused(_storable(ref.path), "a path may not hold a NUL character")
        if not settings.celery_roots:
            raise PathRefused(ref.path, "this worker takes no paths: DOCSORT_CELERY_ROOTS is not set")
        if os.path.islink(ref.path):
            raise PathRefused(ref.path, "is a symbolic link (refused)")
        roots = real_roots(settings.celery_roots)
        real = resolve_under(ref.path, roots, what="DOCSORT_CELERY_ROOTS")
        area = settings.dir("processing") / SOURCE
        with open_regular(real, roots, settings.max_file_bytes, shown=ref.path) as (fh, _st):
            staged = stage_copy_stream(
                fh, area, _storable(ref.filename or real.name), source_ref, limit=settings.max_file_bytes
            )
    except PathRefused as exc:
        return Named(ref, source_ref, refused=exc.reason)
    except IntakeError as exc:  # grew past the limit while copied
        return Named(ref, source_ref, refused=str(exc))
    return Named(ref, source_ref, staged=staged)


def _refused_row(session: Session, named: Named, job_id: str, split: str | None) -> DocumentRef:
    """A file the door would not read: recorded failed with the reason (no path goes to the worker)."""
    ref, reason = named.ref, named.refused or "refused"
    earlier = receipt_document(session, named.source_ref, job_id)
    if earlier is not None and earlier.state in FINISHED:  # a redelivery after the sender moved the file
        return DocumentRef(path="", document_id=earlier.id, sha256=earlier.sha256, source=SOURCE)
    values = {
        "sha256": placeholder_sha(ref.path),
        "source": SOURCE,
        "source_ref": named.source_ref,
        "filename": _storable(ref.filename or Path(ref.path).name or "file")[:1000],
        "job_id": job_id,
        "split": ref.split or split,
    }
    document, created = ensure_document(session, values)
    add_receipt(
        session, document, job_id=job_id, source=SOURCE, source_ref=named.source_ref, duplicate=not created
    )
    if document.state not in FINISHED:
        record_failure(session, document, reason)
    log.warning("file.refused", job_id=job_id, path=_storable(ref.path)[:500], reason=reason)
    return DocumentRef(path="", document_id=document.id, sha256=document.sha256, source=SOURCE)


def _staged_row(session: Session, named: Named, job_id: str, split: str | None) -> DocumentRef:
    ref, staged = named.ref, named.staged
    assert staged is not None
    values = {
        "sha256": staged.sha256,
        "source": SOURCE,
        "source_ref": named.source_ref,
        "filename": staged.filename[:1000],
        "media_type": staged.media_type,
        "size_bytes": staged.size,
        "stored_path": str(staged.path),
        "job_id": job_id,
        "split": ref.split or split,
    }
    document, created = ensure_document(session, values)
    add_receipt(
        session, document, job_id=job_id, source=SOURCE, source_ref=named.source_ref, duplicate=not created
    )
    path: Path | None = staged.path
    if not created:
        stored = Path(document.stored_path) if document.stored_path else None
        if document.state not in FINISHED and (stored is None or not stored.is_file()):
            document.stored_path = str(staged.path)  # the earlier copy is gone: this one is classified
        else:
            staged.path.unlink(missing_ok=True)  # known content: our copy is not needed
            path = None  # nothing for the worker to read, move or delete
    return DocumentRef(
        path=str(path) if path else "",
        document_id=document.id,
        sha256=document.sha256,
        source=SOURCE,
        source_ref=named.source_ref,
        filename=document.filename,
    )


def record(
    session: Session, job: ClassifyJob, task_id: str | None, named: list[Named], settings: IngestSettings
) -> ClassifyJob:
    """Record a Celery door job and its files; the job to run, every reference with its document id."""
    job_id = _job_id(session, job.job_id, task_id)
    if session.get(SubmissionJob, job_id) is None:
        session.add(
            SubmissionJob(
                id=job_id,
                source=SOURCE,
                submitted_by=SOURCE,
                n_documents=len(job.documents),
                state=JobState.queued,
            )
        )
        session.flush()
    refs = [
        _staged_row(session, n, job_id, job.split)
        if n.staged
        else _refused_row(session, n, job_id, job.split)
        for n in named
    ]
    for ref in refs:
        document = session.get(Document, ref.document_id)
        if document is not None and document.state == DocumentState.received:
            document.state = DocumentState.processing
    on_done = settings.on_done if job.on_done == "keep" else job.on_done  # applies to docsort's copy
    return job.model_copy(update={"job_id": job_id, "documents": refs, "on_done": on_done})


def admit(
    sessions: sessionmaker[Session], job: ClassifyJob, task_id: str | None, settings: IngestSettings
) -> ClassifyJob:
    """Copy the named files in, then record them; on a failure to record, the copies are removed."""
    named = [take_named(ref, settings) for ref in job.documents]
    try:
        with db.session_scope(sessions) as session:
            return record(session, job, task_id, named, settings)
    except BaseException:
        for n in named:
            if n.staged is not None:
                n.staged.path.unlink(missing_ok=True)
        raise


def _queue(task: Task, settings: IngestSettings) -> str:
    delivery = getattr(task.request, "delivery_info", None) or {}
    return str(delivery.get("routing_key") or settings.job_queue)


@shared_task(
    name=CLASSIFY_TASK,
    bind=True,
    acks_late=True,
    ignore_result=True,
    autoretry_for=(SQLAlchemyError, BrokerError, OSError),
    retry_backoff=2,
    retry_backoff_max=300,
    max_retries=8,
)
def classify(self: Task, *args: Any, **kwargs: Any) -> dict[str, Any]:
    """Record the files a job message names and hand the job to the worker."""
    try:
        job = job_from_task_args(args, kwargs)
    except ValidationError as exc:
        log.error("job.invalid_message", task_id=self.request.id, error=str(exc)[:2000])
        return {"status": "invalid", "error": str(exc)[:2000]}
    settings = get_ingest_settings()
    limit = settings.max_documents_per_message
    if len(job.documents) > limit:
        error = f"{len(job.documents)} files in one message is more than the limit of {limit}"
        log.error("job.refused", task_id=self.request.id, error=error)
        return {"status": "refused", "error": error}
    recorded = admit(_sessions(settings.database_url), job, self.request.id, settings)
    self.app.send_task(
        RUN_TASK,
        kwargs={"job": recorded.model_dump(mode="json")},
        queue=_queue(self, settings),
        serializer="json",
    )
    log.info("job.admitted", job_id=recorded.job_id, files=len(recorded.documents))
    return {"status": "admitted", "job_id": recorded.job_id}


@worker_ready.connect
def remove_copies_left_behind(**_: Any) -> None:
    """When a worker starts, remove the door's copies that no document names (a worker killed between
    copying and recording leaves one; its message was redelivered). Older than
    ``DOCSORT_RECOVER_AFTER_SECONDS``, so another worker's copy about to be recorded is left alone. A
    fresh engine, disposed at once: the pool processes fork from this one."""
    settings = get_ingest_settings()
    area = settings.dir("processing") / SOURCE
    if not area.is_dir():
        return
    engine = db.make_engine(settings.database_url)
    try:
        remove_unrecorded_copies(area, db.make_sessionmaker(engine), settings.recover_after_seconds)
    except (OSError, SQLAlchemyError) as exc:
        log.error("recovery.copies_not_removed", area=str(area), error=str(exc)[:500])
    finally:
        engine.dispose()
