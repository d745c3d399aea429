"""Step 1 of a job: the recorded files its message names, read from the database and marked ``processing``.

Every reference carries the ``document_id`` an ingest door recorded; a reference to a row that does not
exist is logged and skipped (there is nothing to record its outcome on).
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select

from schema.db import session_scope
from schema.enums import DocumentState
from schema.logs import get_logger
from schema.messages import ClassifyJob
from schema.tables import Document
from worker import metrics
from worker.context import JobFile, WorkerContext
from worker.record import is_finished

log = get_logger(__name__)


def resolve_files(ctx: WorkerContext, job: ClassifyJob) -> list[JobFile]:
    """The job's files in message order (read in one statement); a content seen earlier in the job is
    marked ``repeat``."""
    files: list[JobFile] = []
    seen: set[int] = set()
    with session_scope(ctx.sessions) as session:
        ids = [ref.document_id for ref in job.documents if ref.document_id is not None]
        documents = {d.id: d for d in session.scalars(select(Document).where(Document.id.in_(ids)))}
        for ref in job.documents:
            document = documents.get(ref.document_id) if ref.document_id is not None else None
            if document is None:
                metrics.error("unknown_document")
                log.error("document.unknown", document_id=ref.document_id, path=ref.path, job_id=job.job_id)
                continue
            candidates = [Path(p) for p in (ref.path, document.stored_path) if p]
            path = next((p for p in candidates if p.is_file()), None)
            finished = is_finished(document)
            if not finished and document.id not in seen:
                document.state = DocumentState.processing
            job_file = JobFile(
                document.id, document.sha256, document.filename, path, finished, split=document.split
            )
            job_file.repeat = document.id in seen
            seen.add(document.id)
            files.append(job_file)
    return files
