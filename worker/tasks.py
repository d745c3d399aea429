"""The Celery task ``docsort.run.v1``: a thin shell over :func:`worker.runner.run_job`.

Message: task name ``docsort.run.v1``, sent by the ingest doors once they recorded the job's files,
JSON serializer, kwargs ``{"job": <schema.messages.ClassifyJob as JSON>}`` whose every reference has
its ``document_id`` (a single positional argument, or the job's fields as kwargs, are accepted too).
One task = several files = all their pages in one ONNX batch.

Faults: a transient one (database, broker, file system) is retried with exponential backoff up to
``max_retries`` times, then the job's unfinished documents are recorded as failed. A permanent one
(no usable model, an internal error, the soft time limit) records them as failed at once. A job whose
process died ``MAX_DELIVERIES`` times (crash, out of memory, killed) is failed instead of being run
again; the deaths are counted in the database (:mod:`worker.crashes`), so on every broker.
"""

from __future__ import annotations

import contextlib
import os
import random
from typing import Any

import redis
from celery import Task
from celery.exceptions import SoftTimeLimitExceeded
from celery.signals import setup_logging, worker_process_init, worker_process_shutdown, worker_ready
from kombu.exceptions import OperationalError as BrokerError
from pydantic import ValidationError
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError, SQLAlchemyError

from schema import db
from schema.files import remove_dead_writers_temps
from schema.logs import configure_logging, get_logger
from schema.messages import CALLBACK_TASK, CLASSIFY_TASK, RUN_TASK, ClassifyJob, job_from_task_args
from worker import crashes, metrics
from worker.celery_app import app
from worker.context import WorkerContext
from worker.delivery import celery_queue_sender
from worker.poison import DatabaseDecodeGuard
from worker.registry import ModelCache, ModelUnavailable
from worker.runner import fail_job, run_job
from worker.settings import get_worker_settings

log = get_logger(__name__)

TRANSIENT: tuple[type[BaseException], ...] = (
    OperationalError,
    InterfaceError,
    BrokerError,
    redis.RedisError,
    OSError,
)
MAX_DELIVERIES = 3
_context: WorkerContext | None = None


def _send_callback(job_id: str) -> None:
    app.send_task(CALLBACK_TASK, kwargs={"job_id": job_id}, serializer="json")


def get_context() -> WorkerContext:
    """This process's context (database engine, model cache), made on first use after the fork."""
    global _context
    if _context is None or _context.pid != os.getpid():
        settings = get_worker_settings()
        engine = db.make_engine(settings.database_url)
        sessions = db.make_sessionmaker(engine)
        _context = WorkerContext(
            settings=settings,
            sessions=sessions,
            models=ModelCache(settings),
            sender=celery_queue_sender(app.send_task),
            send_callback=_send_callback,
            decode_guard=DatabaseDecodeGuard(sessions),
        )
    return _context


@setup_logging.connect
def _logging(**_: Any) -> None:
    settings = get_worker_settings()
    configure_logging(settings.log_level, settings.log_format)


@worker_process_init.connect
def _process_init(**_: Any) -> None:
    """After the fork: the temporary files of killed processes removed, a fresh engine and the model
    session, warmed up before the first job arrives."""
    ctx = get_context()
    _remove_dead_writers_temps(ctx)
    try:
        if ctx.settings.model_dir is not None:
            ctx.models.fixed()
        else:
            with db.session_scope(ctx.sessions) as session:
                ctx.models.get(session)
    except Exception as exc:  # the first job reports it as a failure with the reason
        log.error("worker.model_not_ready", error=str(exc))


def _remove_dead_writers_temps(ctx: WorkerContext) -> None:
    """A process killed in the middle of writing a delivered document or a review image leaves its
    hidden ``.part`` file (``schema.files.temp_name``); each process starting removes those whose
    writer is gone (a pool process is started again after one is killed)."""
    for area in (ctx.settings.outbox_dir, ctx.settings.dir("review")):
        try:
            removed = remove_dead_writers_temps(area)
        except OSError as exc:
            log.error("worker.partial_files_not_removed", area=str(area), error=str(exc))
            continue
        if removed:
            log.warning("worker.partial_files_removed", area=str(area), files=removed)


@worker_ready.connect
def _ready(sender: Any = None, **_: Any) -> None:
    settings = get_worker_settings()
    log.info(
        "worker.ready", hostname=getattr(sender, "hostname", None), queues=settings.queues, pid=os.getpid()
    )


@worker_process_shutdown.connect
def _process_shutdown(pid: int | None = None, **_: Any) -> None:
    metrics.child_exited(pid or os.getpid())


def delivery_key(task_id: str | None, retries: int) -> str | None:
    return f"run:{task_id}:{retries}"[:200] if task_id else None


def count_delivery(ctx: WorkerContext, key: str | None) -> int:
    """How many times this message (this retry of it) has started without ending; 1 on a first delivery.
    Counted in the database (:mod:`worker.crashes`), so on every broker."""
    if key is None:
        return 1
    try:
        return crashes.begin(ctx.sessions, key)
    except SQLAlchemyError as exc:
        log.warning("job.delivery_count_unavailable", error=str(exc)[:500])
        return 1


def _ended(ctx: WorkerContext, key: str | None) -> None:
    if key is not None:
        with contextlib.suppress(SQLAlchemyError):
            crashes.end(ctx.sessions, key)


def is_transient(exc: BaseException) -> bool:
    """A fault worth retrying: the database, the broker or the file system, not the job's content."""
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    return isinstance(exc, TRANSIENT)


def _give_up(ctx: WorkerContext, job: ClassifyJob, reason: str) -> dict[str, Any]:
    metrics.error("job_failed")
    log.error("job.failed", job_id=job.job_id, reason=reason)
    fail_job(ctx, job, reason)
    return {"status": "failed", "reason": reason}


def _backoff(retries: int) -> float:
    base = get_worker_settings().retry_backoff_s * (2**retries)
    return float(min(300.0, base * random.uniform(0.8, 1.2)))


@app.task(name=RUN_TASK, bind=True, acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def run(self: Task, *args: Any, **kwargs: Any) -> dict[str, Any]:
    """Classify, record and deliver the recorded files of one job message."""
    try:
        job = job_from_task_args(args, kwargs)
    except ValidationError as exc:
        metrics.error("invalid_message")
        log.error("job.invalid_message", task_id=self.request.id, error=str(exc)[:2000])
        return {"status": "invalid", "error": str(exc)[:2000]}
    unrecorded = [ref.path for ref in job.documents if ref.document_id is None]
    if unrecorded:
        metrics.error("invalid_message")
        error = f"{len(unrecorded)} file(s) not recorded by a door (send the job as {CLASSIFY_TASK})"
        log.error("job.invalid_message", task_id=self.request.id, error=error)
        return {"status": "invalid", "error": error}
    ctx = get_context()
    retries = int(self.request.retries or 0)
    key = delivery_key(self.request.id, retries)
    deliveries = count_delivery(ctx, key)
    try:
        if deliveries > MAX_DELIVERIES:
            reason = f"the worker died {deliveries - 1} times while classifying this job"
            outcome = _give_up(ctx, job, reason)
        else:
            outcome = _run(self, ctx, job, retries)
    except Exception:  # a retry, or a fault the process survives; a kill (SystemExit) keeps the count
        _ended(ctx, key)
        raise
    _ended(ctx, key)
    return outcome


def _run(self: Task, ctx: WorkerContext, job: ClassifyJob, retries: int) -> dict[str, Any]:
    try:
        outcome = run_job(ctx, job)
    except ModelUnavailable as exc:
        return _give_up(ctx, job, str(exc))
    except SoftTimeLimitExceeded:
        return _give_up(ctx, job, f"classifying took longer than {ctx.settings.task_time_limit} s")
    except Exception as exc:
        if not is_transient(exc):
            if isinstance(exc, DBAPIError):
                return _give_up(ctx, job, f"database refused the records: {exc.orig}")
            log.exception("job.internal_error", job_id=job.job_id)
            return _give_up(ctx, job, f"internal error: {type(exc).__name__}: {exc}")
        metrics.error("transient")
        if retries >= ctx.settings.max_retries:
            return _give_up(ctx, job, f"gave up after {retries} retries: {type(exc).__name__}: {exc}")
        log.warning("job.retry", job_id=job.job_id, retries=retries, error=f"{type(exc).__name__}: {exc}")
        raise self.retry(exc=exc, countdown=_backoff(retries), max_retries=ctx.settings.max_retries) from exc
    return {"status": "ok", **vars(outcome)}
