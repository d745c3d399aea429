"""Starting a worker: settings validated, database migrated, a model to serve, then Celery."""

from __future__ import annotations

from pathlib import Path

from schema import db
from schema.errors import DocsortError
from schema.logs import configure_logging, get_logger
from schema.manifest import load_manifest
from worker import metrics
from worker.celery_app import app, configure
from worker.registry import ModelUnavailable, active_version, sync_registry
from worker.settings import WorkerSettings, get_worker_settings

log = get_logger(__name__)


class WorkerNotReady(DocsortError):
    """The worker cannot start: the message says what to fix."""


def check_ready() -> WorkerSettings:
    """Validate settings, database and model before any process is forked; raise WorkerNotReady."""
    get_worker_settings.cache_clear()
    settings = get_worker_settings()
    settings.ensure_dirs()
    configure_logging(settings.log_level, settings.log_format)
    current = db.current_revision(settings.database_url)
    if current != db.head_revision():
        raise WorkerNotReady(f"database is at {current or 'no revision'}: run `docsort db upgrade` first")
    if settings.model_dir is not None:
        manifest = load_manifest(settings.model_dir)
        log.info("worker.model", name=manifest.name, version=manifest.version, path=str(settings.model_dir))
        return settings
    engine = db.make_engine(settings.database_url)
    try:
        with db.session_scope(db.make_sessionmaker(engine)) as session:
            for problem in sync_registry(session, settings.models_dir):
                log.warning("models.unusable", problem=problem)
            row = active_version(session, settings.model_name)
            if row is None:
                raise ModelUnavailable(
                    f"no active version of model {settings.model_name or '(any)'}: "
                    "run `docsort models activate NAME VERSION` (or pass --model-dir)"
                )
            load_manifest(Path(row.path))
            log.info("worker.model", name=row.name, version=row.version, path=row.path)
    finally:
        engine.dispose()
    return settings


def start_worker(settings: WorkerSettings, hostname: str = "docsort@%h", pool: str = "prefork") -> None:
    """Run the Celery worker in this process until it is stopped (SIGTERM: finish the job, then exit)."""
    configure(settings)
    if settings.metrics_port:
        metrics.serve(settings.metrics_port)
    argv = [
        "worker",
        f"--loglevel={settings.log_level}",
        f"--concurrency={settings.processes()}",
        f"--queues={','.join(settings.queues)}",
        f"--hostname={hostname}",
        f"--pool={pool}",
        "--without-gossip",
        "--without-mingle",
        "--without-heartbeat",
    ]
    log.info(
        "worker.starting",
        queues=settings.queues,
        concurrency=settings.processes(),
        threads=settings.intra_op_threads(),
        provider=settings.provider,
        pool=pool,
    )
    app.worker_main(argv)
