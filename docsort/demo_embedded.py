"""The demo's embedded mode, for a machine where no Redis answers and none can be started.

The watcher and the worker run as threads of the demo process. Jobs pass through an in-process queue
instead of Redis, and each one is run by the worker's own Celery task (``docsort.run.v1``, applied
in this process), so decoding, inference, CAM, decisions, records and routing are the same code a
``docsort worker`` runs. Only the transport differs; the jobs API of the web application cannot reach
this queue, so in this mode pages come in through the watch folder.

The worker reads its settings from the ``DOCSORT_*`` environment: set it before :meth:`start`.
"""

from __future__ import annotations

import importlib
import queue
import threading
from typing import Any

from ingest.intake import Intake
from ingest.sender import job_message
from ingest.settings import get_ingest_settings
from ingest.watch import Watcher
from schema import db
from schema.logs import get_logger
from schema.messages import CALLBACK_TASK, RUN_TASK, ClassifyJob
from worker.celery_app import INCLUDE, app
from worker.settings import get_worker_settings

log = get_logger(__name__)
STOP = object()
EMBEDDED_BROKER_URL = "memory://"


class InProcessSender:
    """A :class:`ingest.sender.JobSender` that hands jobs to the embedded worker thread."""

    def __init__(self, jobs: queue.Queue[Any]) -> None:
        self.jobs = jobs

    def send_job(self, job: ClassifyJob) -> None:
        self.jobs.put((RUN_TASK, job_message(job)))

    def send_callback(self, job_id: str) -> None:
        self.jobs.put((CALLBACK_TASK, {"job_id": job_id}))


class EmbeddedBroker:
    """A watcher thread and a worker thread joined by an in-process queue."""

    def __init__(self) -> None:
        self.jobs: queue.Queue[Any] = queue.Queue()
        self.stop_event = threading.Event()
        self.threads: list[threading.Thread] = []
        self.processed = 0
        self.errors: list[str] = []

    def start(self) -> None:
        get_worker_settings.cache_clear()
        get_ingest_settings.cache_clear()
        settings = get_ingest_settings()
        sessions = db.make_sessionmaker(db.make_engine(settings.database_url))
        intake = Intake(settings, sessions, InProcessSender(self.jobs))
        watcher = Watcher(intake, [settings.inbox_dir], stop=self.stop_event)
        self._spawn("docsort-embedded-worker", self._work)
        self._spawn("docsort-embedded-watch", watcher.run)
        log.info("demo.embedded_started", queue="in-process", inbox=str(settings.inbox_dir))

    def _spawn(self, name: str, target: Any) -> None:
        thread = threading.Thread(target=target, name=name, daemon=True)
        thread.start()
        self.threads.append(thread)

    def _work(self) -> None:
        """Run each queued message through the worker's Celery task, in this process."""

        for module in INCLUDE:  # registers the job task and the callback task, as a worker does
            importlib.import_module(module)

        while True:
            item = self.jobs.get()
            if item is STOP:
                return
            name, kwargs = item
            result = app.tasks[name].apply(kwargs=kwargs)
            if result.failed():
                self.errors.append(f"{name}: {result.result!r}")
                log.error("demo.embedded_task_failed", task=name, error=repr(result.result))
            self.processed += 1

    def stop(self, timeout: float = 30.0) -> None:
        """Stop the watcher, let the worker finish the job in hand, and join both threads."""
        self.stop_event.set()
        self.jobs.put(STOP)
        for thread in self.threads:
            thread.join(timeout)
        log.info("demo.embedded_stopped", processed=self.processed)
