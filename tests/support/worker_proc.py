"""A real ``docsort worker`` per test (:mod:`docsort.procs`), on a unique queue, stopped at the end.

Reusable by any suite::

    from tests.support.worker_proc import docsort_worker  # noqa: F401  (the fixture)

    def test_x(docsort_worker, settings, unique_queue):
        w = docsort_worker(settings, queue=unique_queue)       # started and ready
        send_classify(settings.broker_url, w.queue, {...})     # or any sender on w.queue
        w.wait_for_log("job.processed")

The worker's Celery door reads files under the test's folder (``DOCSORT_CELERY_ROOTS``, unless the
test names other roots). The worker runs in its own process group with the settings given (every
``DOCSORT_*`` variable of the test process is replaced by them), logs to a file under the test's
folder, and is killed at the end of the test (by then its jobs are over; ``stop()`` gives a warm
shutdown where a test needs one).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from pydantic_settings import BaseSettings

from docsort.procs import WORKER_READY, WorkerProcess, settings_env, start_worker
from ingest.sender import send_classify

__all__ = ["StartWorker", "WorkerProcess", "docsort_worker", "send_classify", "settings_env"]

StartWorker = Callable[..., WorkerProcess]


@pytest.fixture
def docsort_worker(tmp_path: Path) -> Iterator[StartWorker]:
    """A factory: ``docsort_worker(settings, queue=..., concurrency=1, args=(), **setting_overrides)``.

    Every worker it started is killed when the test ends.
    """
    started: list[WorkerProcess] = []

    def start(
        settings: BaseSettings | Mapping[str, Any],
        *,
        queue: str,
        concurrency: int = 1,
        args: tuple[str, ...] = (),
        wait_for: tuple[str, ...] = (WORKER_READY,),
        **overrides: Any,
    ) -> WorkerProcess:
        log_path = tmp_path / "worker-logs" / f"worker-{len(started) + 1}.log"
        overrides.setdefault("celery_roots", str(tmp_path))  # the Celery door reads the test's files
        env = settings_env(settings, **overrides)
        worker = start_worker(env, queue, log_path, concurrency=concurrency, args=args, wait_for=wait_for)
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.kill()
