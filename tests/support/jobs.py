"""Jobs the way a Celery door message becomes one: recorded by ingest's door, then run by the worker."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker

from ingest.celery_door import admit
from ingest.settings import IngestSettings, ingest_settings_from
from schema.messages import ClassifyJob
from schema.settings import DocsortSettings
from worker.context import JobOutcome, WorkerContext
from worker.runner import run_job


def door_settings(settings: DocsortSettings, job: ClassifyJob) -> IngestSettings:
    """Ingest settings whose Celery roots are the folders ``job`` names files in."""
    roots = sorted({Path(ref.path).parent for ref in job.documents if Path(ref.path).is_absolute()})
    return ingest_settings_from(settings).model_copy(update={"celery_roots": roots})


def admitted(sessions: sessionmaker[Session], job: ClassifyJob, settings: DocsortSettings) -> ClassifyJob:
    """``job`` recorded by the Celery door (copies, documents, receipts, a job id), as the worker runs it."""
    return admit(sessions, job, None, door_settings(settings, job))


def run_admitted(ctx: WorkerContext, job: ClassifyJob) -> JobOutcome:
    """Record ``job`` as the Celery door does, then run it in this process (no broker)."""
    return run_job(ctx, admitted(ctx.sessions, job, ctx.settings))
