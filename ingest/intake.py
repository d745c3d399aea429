"""The one intake every door uses: record the arrival, then send the classify job.

The order is what makes a restart safe:

1. the door brings each file into the processing area (:mod:`ingest.staging`): a file in the
   inbox is never taken twice because it is no longer in the inbox;
2. one transaction records the :class:`SubmissionJob`, a :class:`Document` for each new content
   (unique sha256, state ``received``) and a :class:`Receipt` for every arrival (``duplicate`` when the
   content was already known; a duplicate is not classified again);
3. the classify jobs are sent, then the documents are marked ``processing``.

A door interrupted between 1 and 2 leaves a file in the processing area that no document names; one
interrupted between 2 and 3 leaves documents in ``received``. :mod:`ingest.recovery` finds both.
"""

from __future__ import annotations

import shutil
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from sqlalchemy import update
from sqlalchemy.exc import OperationalError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from ingest.rows import add_receipts, ensure_documents
from ingest.sender import JobSender
from ingest.settings import IngestSettings
from ingest.staging import IntakeError, Staged
from schema.db import session_scope
from schema.enums import DocumentState, JobState
from schema.logs import get_logger
from schema.messages import ClassifyJob, DocumentRef
from schema.tables import Document, SubmissionJob, utcnow
from worker.jobs import mark_callback_queued, refresh_job

log = get_logger(__name__)


class NotRecorded(IntakeError):
    """The job could not be recorded: nothing of it exists; its staged files may be removed."""


class NotSent(IntakeError):
    """The job is recorded but its classify messages could not be sent; recovery sends them later."""


DOORS = ("watch", "api", "submit", "celery")
RECORD_ATTEMPTS = 5


@dataclass(frozen=True)
class Arrival:
    """One file of a job, as recorded."""

    document_id: int
    filename: str
    source_ref: str
    duplicate: bool


@dataclass
class IntakeResult:
    job_id: str
    arrivals: list[Arrival] = field(default_factory=list)

    @property
    def n_duplicate(self) -> int:
        return sum(a.duplicate for a in self.arrivals)

    @property
    def n_new(self) -> int:
        return len(self.arrivals) - self.n_duplicate


@dataclass(frozen=True)
class NewDocument:
    """A recorded document still to be sent for classification."""

    document_id: int
    staged: Staged
    source: str


class Intake:
    """Records arrivals and sends their jobs. Holds no state of its own: threads may share one."""

    def __init__(self, settings: IngestSettings, sessions: sessionmaker[Session], sender: JobSender) -> None:
        self.settings = settings
        self.sessions = sessions
        self.sender = sender

    def area(self, door: str) -> Path:
        """The processing area of one door."""
        if door not in DOORS:
            raise ValueError(f"unknown door {door!r}")
        path = self.settings.dir("processing") / door
        path.mkdir(parents=True, exist_ok=True)
        return path

    def take(
        self,
        staged: Sequence[Staged],
        *,
        source: str,
        submitted_by: str,
        client_id: int | None = None,
        callback_url: str | None = None,
        split: str | None = None,
    ) -> IntakeResult:
        """Record ``staged`` files as one job and send what is new for classification. ``split``: the
        separation rules of files that bring none of their own."""
        if split is not None:
            staged = [s if s.split is not None else replace(s, split=split) for s in staged]
        if not staged:
            raise IntakeError("a job needs at least one file")
        job_id = str(uuid.uuid4())
        result, new_docs = self._record_retrying(
            job_id, staged, source, submitted_by, client_id, callback_url
        )
        self._dispose_duplicates(staged, result)
        log.info(
            "job recorded", job_id=job_id, source=source, new=result.n_new, duplicates=result.n_duplicate
        )
        if new_docs:
            self.send_documents(job_id, new_docs)
        elif callback_url:
            self._send_callback(job_id)
        return result

    def _record_retrying(
        self,
        job_id: str,
        staged: Sequence[Staged],
        source: str,
        submitted_by: str,
        client_id: int | None,
        callback_url: str | None,
    ) -> tuple[IntakeResult, list[NewDocument]]:
        for attempt in range(1, RECORD_ATTEMPTS + 1):
            try:
                with session_scope(self.sessions) as session:
                    return self._record(
                        session, job_id, staged, source, submitted_by, client_id, callback_url
                    )
            except OperationalError as exc:  # SQLite "database is locked" under concurrent writers
                if attempt == RECORD_ATTEMPTS:
                    raise NotRecorded(f"job {job_id} could not be recorded: {exc.orig}") from exc
                time.sleep(0.2 * attempt)
            except SQLAlchemyError as exc:
                raise NotRecorded(f"job {job_id} could not be recorded: {exc}") from exc
        raise AssertionError("unreachable")

    def _record(
        self,
        session: Session,
        job_id: str,
        staged: Sequence[Staged],
        source: str,
        submitted_by: str,
        client_id: int | None,
        callback_url: str | None,
    ) -> tuple[IntakeResult, list[NewDocument]]:
        job = SubmissionJob(
            id=job_id,
            source=source,
            submitted_by=submitted_by[:100],
            client_id=client_id,
            callback_url=callback_url,
            n_documents=len(staged),
            state=JobState.queued,
        )
        session.add(job)
        session.flush()
        result = IntakeResult(job_id)
        new_docs: list[NewDocument] = []
        ids = ensure_documents(session, [self._document_values(job_id, item, source) for item in staged])
        receipts = []
        for item, (document_id, created) in zip(staged, ids, strict=True):
            receipts.append(
                {
                    "document_id": document_id,
                    "job_id": job_id,
                    "source": source,
                    "source_ref": item.source_ref[:2000],
                    "duplicate": not created,
                }
            )
            result.arrivals.append(Arrival(document_id, item.filename, item.source_ref, not created))
            if created:
                new_docs.append(NewDocument(document_id, item, source))
        add_receipts(session, receipts)
        job.n_duplicate = result.n_duplicate
        if not new_docs:  # nothing to classify: the job ends now, with its duplicates' outcomes so far
            session.flush()
            refresh_job(session, job_id)
            job.state = JobState.done
            job.finished_at = job.finished_at or utcnow()
        return result, new_docs

    @staticmethod
    def _document_values(job_id: str, item: Staged, source: str) -> dict[str, object]:
        """The row of a new document for ``item``."""
        return {
            "sha256": item.sha256,
            "source": source,
            "source_ref": item.source_ref[:2000],
            "filename": item.filename[:1000],
            "media_type": item.media_type,
            "size_bytes": item.size,
            "state": DocumentState.received,
            "job_id": job_id,
            "stored_path": str(item.path),
            "split": item.split,
        }

    def _dispose_duplicates(self, staged: Sequence[Staged], result: IntakeResult) -> None:
        """A duplicate's bytes are already recorded: archive the copy (or delete it, by setting)."""
        for item, arrival in zip(staged, result.arrivals, strict=True):
            if not arrival.duplicate:
                continue
            if self.settings.on_done == "delete":
                item.path.unlink(missing_ok=True)
                continue
            folder = self.settings.dir("archive") / "duplicates"
            try:
                folder.mkdir(parents=True, exist_ok=True)
                shutil.move(str(item.path), folder / item.path.name)
            except OSError as exc:  # recorded already: the copy stays in the processing area
                log.error("duplicate copy not archived", path=str(item.path), error=str(exc))

    def _send_callback(self, job_id: str) -> None:
        try:
            self.sender.send_callback(job_id)
        except Exception as exc:
            raise NotSent(f"job {job_id} is recorded but its callback could not be sent ({exc})") from exc
        with session_scope(self.sessions) as session:
            mark_callback_queued(session, job_id)

    def send_documents(self, job_id: str, docs: Sequence[NewDocument]) -> None:
        """Send the classify jobs of ``docs`` (chunked by setting), then mark the sent ones ``processing``
        in one transaction. A crash between the two leaves sent documents ``received``, as it did when
        each chunk was marked on its own: recovery sends them again."""
        size = self.settings.docs_per_message
        sent: list[int] = []
        try:
            for start in range(0, len(docs), size):
                chunk = docs[start : start + size]
                self._send_chunk(job_id, chunk)
                sent += [d.document_id for d in chunk]
        finally:
            if sent:
                self.mark_sent(sent)

    def _send_chunk(self, job_id: str, chunk: Sequence[NewDocument]) -> None:
        message = ClassifyJob(
            job_id=job_id,
            documents=[
                DocumentRef(
                    path=str(d.staged.path),
                    document_id=d.document_id,
                    sha256=d.staged.sha256,
                    source=d.source,
                    source_ref=d.staged.source_ref,
                    filename=d.staged.filename,
                )
                for d in chunk
            ],
            on_done=self.settings.on_done,
        )
        try:
            self.sender.send_job(message)
        except Exception as exc:
            raise NotSent(
                f"job {job_id} is recorded but could not be sent to the broker ({exc}); "
                "`docsort watch` sends it again once the broker is back"
            ) from exc

    def mark_sent(self, document_ids: Sequence[int]) -> None:
        """``received`` -> ``processing``; a worker that already moved a document on is not undone."""
        with session_scope(self.sessions) as session:
            session.execute(
                update(Document)
                .where(Document.id.in_(document_ids), Document.state == DocumentState.received)
                .values(state=DocumentState.processing)
            )
