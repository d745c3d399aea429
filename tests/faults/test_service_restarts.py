"""Redis and PostgreSQL restarted while a worker is busy: nothing is lost, nothing is routed twice.

Each test runs its own server (a private ``redis-server`` with an append-only file, a private
PostgreSQL cluster) on a free port, so the shared services are never touched.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from schema import db
from tests.support.faults import (
    OutboxWatch,
    assert_one_outcome_each,
    fault_settings,
    finished_count,
    job_payload,
    wait_for,
    write_scan,
)
from tests.support.services import PrivatePostgres, PrivateRedis
from tests.support.worker_proc import StartWorker, WorkerProcess, send_classify
from worker.settings import WorkerSettings

pytestmark = pytest.mark.faults


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[PrivateRedis]:
    server = PrivateRedis(tmp_path / "redis")
    server.start()
    yield server
    server.stop()


@pytest.fixture
def private_pg() -> Iterator[PrivatePostgres]:
    server = PrivatePostgres()
    try:
        server.init()
        server.start()
        yield server
    finally:
        server.remove()


def _pages(inbox: Path, n: int, start: int = 0) -> list[Path]:
    inbox.mkdir(parents=True, exist_ok=True)
    return [
        write_scan(inbox / f"page{i:03d}.png", (0, 255, 128)[i % 3], i, (600, 800))
        for i in range(start, start + n)
    ]


def _send(ws: WorkerSettings, queue: str, paths: list[Path], per_job: int = 3) -> None:
    for i in range(0, len(paths), per_job):
        send_classify(ws.broker_url, queue, job_payload(paths[i : i + per_job]))


def _finish_and_check(
    ws: WorkerSettings, worker: WorkerProcess, outbox: OutboxWatch, paths: list[Path], timeout: float = 180
) -> None:
    wait_for(lambda: finished_count(ws) == len(paths), timeout, f"{len(paths)} documents finished", 0.2)
    staged = ws.processing_dir / "celery"
    worker.wait_until(lambda: not any(p.is_file() for p in staged.rglob("*")), 30, "every copy archived")
    assert all(p.exists() for p in paths)  # the files the messages named are never moved


def test_redis_killed_and_restarted_under_load_loses_no_job(
    private_redis: PrivateRedis, docsort_worker: StartWorker, pg_db_url: str, tmp_path: Path
) -> None:
    ws = fault_settings(tmp_path / "data", pg_db_url, private_redis.url)
    queue = f"faults-{uuid.uuid4().hex[:8]}"
    first, later = _pages(tmp_path / "in", 36), _pages(tmp_path / "in", 9, start=36)
    worker = docsort_worker(ws, queue=queue)
    with OutboxWatch(ws.outbox_dir) as outbox:
        _send(ws, queue, first)
        for restart in (1, 2):
            wait_for(
                lambda r=restart: finished_count(ws) >= 9 * r, 120, f"work before restart {restart}", 0.05
            )
            private_redis.restart(down_for=2.0)  # SIGKILL: only the append-only file survives
        _send(ws, queue, later)  # the worker has reconnected and takes new jobs as well
        _finish_and_check(ws, worker, outbox, first + later)
    assert_one_outcome_each(ws, {p.name: 1 for p in first + later})
    assert outbox.written_twice() == {}
    assert worker.alive()
    assert "Connection to broker lost" in worker.log() or "Cannot connect" in worker.log()


def test_postgres_restarted_under_load_tasks_retry_and_nothing_is_lost(
    private_pg: PrivatePostgres,
    docsort_worker: StartWorker,
    redis_url: str,
    shared_queue: str,
    tmp_path: Path,
) -> None:
    url = private_pg.create_database("docsort")
    db.upgrade(url)
    ws = fault_settings(tmp_path / "data", url, redis_url)
    paths = _pages(tmp_path / "in", 36)
    worker = docsort_worker(ws, queue=shared_queue)
    with OutboxWatch(ws.outbox_dir) as outbox:
        _send(ws, shared_queue, paths)
        wait_for(lambda: finished_count(ws) >= 6, 120, "work before the restart", 0.05)
        private_pg.restart(down_for=3.0, mode="immediate")  # every connection cut, as in a crash
        _finish_and_check(ws, worker, outbox, paths)
    assert_one_outcome_each(ws, {p.name: 1 for p in paths})
    assert outbox.written_twice() == {}
    log = worker.log()
    assert "job.retry" in log, "no task met the outage"
    assert "job.failed" not in log and worker.alive()
