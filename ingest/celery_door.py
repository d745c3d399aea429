"""The Celery door: ``docsort.classify.v1``, a job message naming files by path, from any system.

The door records the job (its id: the sender's ``job_id`` when it names no other job's files, else the
message's task id, so a redelivered message is the same job), a document for each new content and a
receipt for every file, then hands the recorded job to the worker as ``docsort.run.v1``. Document ids
and hashes in the message are not trusted: each file is read and hashed here. Files are classified
where they are; ``on_done`` (default ``keep``) says what the worker does with them afterwards.
"""

from __future__ import annotations

import uuid
from functools import lru_cache
from pathlib import Path
from typing import Any

from celery import Task, shared_task
from kombu.exceptions import OperationalError as BrokerError
from pydantic import ValidationError
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from ingest.rows import add_receipt, ensure_document, placeholder_sha, receipt_document
from ingest.settings import IngestSettings, get_ingest_settings
from schema import db
from schema.enums import DocumentState, JobState
from schema.files import sha256_file
from schema.logs import get_logger
from schema.messages import CLASSIFY_TASK, RUN_TASK, ClassifyJob, DocumentRef, job_from_task_args
from schema.tables import Document, SubmissionJob

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


def _admit_file(session: Session, ref: DocumentRef, job_id: str, split: str | None) -> DocumentRef:
    path = Path(ref.path)
    source_ref = (ref.source_ref or str(path))[:2000]
    readable = path.is_file()
    if not readable:
        earlier = receipt_document(session, source_ref, job_id)
        if earlier is not None and earlier.state in FINISHED:  # a redelivery after the file moved on
            return DocumentRef(path=ref.path, document_id=earlier.id, sha256=earlier.sha256, source=SOURCE)
    try:
        sha = sha256_file(path) if readable else placeholder_sha(str(path))
    except OSError:
        sha, readable = placeholder_sha(str(path)), False
    values = {
        "sha256": sha,
        "source": SOURCE,
        "source_ref": source_ref,
        "filename": (ref.filename or path.name)[:1000],
        "size_bytes": path.stat().st_size if readable else None,
        "stored_path": str(path),
        "job_id": job_id,
        "split": ref.split or split,
    }
    document, created = ensure_document(session, values)
    add_receipt(session, document, job_id=job_id, source=SOURCE, source_ref=source_ref, duplicate=not created)
    return DocumentRef(
        path=str(path),
        document_id=document.id,
        sha256=sha,
        source=SOURCE,
        source_ref=source_ref,
        filename=document.filename,
    )


def admit(session: Session, job: ClassifyJob, task_id: str | None) -> ClassifyJob:
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
    refs = [_admit_file(session, ref, job_id, job.split) for ref in job.documents]
    for ref in refs:
        document = session.get(Document, ref.document_id)
        if document is not None and document.state == DocumentState.received:
            document.state = DocumentState.processing
    return job.model_copy(update={"job_id": job_id, "documents": refs})


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
    with db.session_scope(_sessions(settings.database_url)) as session:
        recorded = admit(session, job, self.request.id)
    self.app.send_task(
        RUN_TASK,
        kwargs={"job": recorded.model_dump(mode="json")},
        queue=_queue(self, settings),
        serializer="json",
    )
    log.info("job.admitted", job_id=recorded.job_id, files=len(recorded.documents))
    return {"status": "admitted", "job_id": recorded.job_id}
