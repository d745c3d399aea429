"""Jobs the way a Celery door message becomes one: recorded by ingest's door, then run by the worker."""

from __future__ import annotations

from sqlalchemy.orm import Session, sessionmaker

from ingest.celery_door import admit
from schema import db
from schema.messages import ClassifyJob
from worker.context import JobOutcome, WorkerContext
from worker.runner import run_job


def admitted(sessions: sessionmaker[Session], job: ClassifyJob) -> ClassifyJob:
    """``job`` recorded by the Celery door (documents, receipts, a job id): the job the worker runs."""
    with db.session_scope(sessions) as session:
        return admit(session, job, None)


def run_admitted(ctx: WorkerContext, job: ClassifyJob) -> JobOutcome:
    """Record ``job`` as the Celery door does, then run it in this process (no broker)."""
    return run_job(ctx, admitted(ctx.sessions, job))
