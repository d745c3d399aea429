"""Step 1 of a job: the recorded files its message names, read from the database and marked ``processing``.

Every reference carries the ``document_id`` an ingest door recorded; a reference to a row that does not
exist is logged and skipped (there is nothing to record its outcome on). A job reads only regular files
in docsort's own processing or archive area: a path elsewhere, or a symlink, counts as not found.
"""

from __future__ import annotations

import os
import stat
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


def _own_file(ctx: WorkerContext, raw: str) -> bool:
    """A regular file (not a link) in docsort's processing or archive area: the only files a job reads,
    moves or deletes, whatever path a message names."""
    path = Path(raw)
    areas = [Path(os.path.realpath(ctx.settings.dir(name))) for name in ("processing", "archive")]
    try:
        if not stat.S_ISREG(path.lstat().st_mode):
            return False
    except OSError:
        return False
    real = Path(os.path.realpath(path))
    if not any(real.is_relative_to(area) for area in areas):
        log.warning("document.path_refused", path=raw[:500], reason="outside docsort's processing area")
        return False
    return True


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
            found = next((p for p in (ref.path, document.stored_path) if p and _own_file(ctx, p)), None)
            path = Path(found) if found else None
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
