"""SIGKILL a worker in the middle of a batch, ten times over a run of pages."""

from __future__ import annotations

import os
import random
import signal
import time
from pathlib import Path

import pytest
from sqlalchemy import select

from ingest.recovery import remove_unrecorded_copies
from schema import db
from schema.enums import DecisionKind, DocumentState
from schema.tables import Document
from tests.support.faults import (
    OutboxWatch,
    assert_one_outcome_each,
    fault_settings,
    finished_count,
    job_payload,
    routed_files,
    wait_for,
    write_scan,
    write_two_page_tiff,
)
from tests.support.worker_proc import StartWorker, WorkerProcess, send_classify
from worker.settings import WorkerSettings

pytestmark = pytest.mark.faults

KILLS = 10


def _make_jobs(
    inbox: Path, n_jobs: int = 2 * KILLS + 2, per_job: int = 2
) -> tuple[list[list[Path]], dict[str, int]]:
    """Jobs of single-page scans (black, white, grey) and two-page TIFFs; {file name: pages}."""
    inbox.mkdir(parents=True)
    jobs: list[list[Path]] = []
    pages: dict[str, int] = {}
    for j in range(n_jobs):
        paths = []
        for k in range(per_job):
            i = per_job * j + k
            if i % 7 == 6:
                path = write_two_page_tiff(inbox / f"doc{i:02d}.tif", (0, 255), i)
                pages[path.name] = 2
            else:
                path = write_scan(inbox / f"doc{i:02d}.png", (0, 255, 128)[i % 3], i, (850, 1100))
                pages[path.name] = 1
            paths.append(path)
        jobs.append(paths)
    return jobs, pages


def _in_progress(ws: WorkerSettings) -> set[int]:
    engine = db.make_engine(ws.database_url)
    try:
        with engine.connect() as conn:
            stmt = select(Document.id).where(Document.state == DocumentState.processing)
            return {int(i) for i in conn.execute(stmt).scalars()}
    finally:
        engine.dispose()


def _kill_pool_child(worker: WorkerProcess) -> None:
    """SIGKILL the process running the job; the worker's main process stays and forks a new one."""
    children = worker.children()
    assert children, "the worker has no pool process"
    os.kill(children[0], signal.SIGKILL)
    worker.wait_until(
        lambda: bool(worker.children()) and worker.children()[0] != children[0], 60, "a new pool process"
    )


def test_worker_killed_ten_times_mid_batch_leaves_one_outcome_per_page_and_routes_nothing_twice(
    docsort_worker: StartWorker, pg_db_url: str, redis_url: str, shared_queue: str, tmp_path: Path
) -> None:
    ws = fault_settings(tmp_path / "data", pg_db_url, redis_url)
    jobs, pages = _make_jobs(tmp_path / "in")
    worker = docsort_worker(ws, queue=shared_queue)
    unsent = list(jobs)

    def send(n: int) -> None:
        """Jobs are fed two per kill (one to interrupt, one waiting behind it), so a fresh job is always
        on its way however fast the worker runs on the machine at hand."""
        for paths in unsent[:n]:
            send_classify(ws.broker_url, shared_queue, job_payload(paths))
        del unsent[:n]

    rng = random.Random(7)
    hit: set[int] = set()  # documents of jobs already interrupted once
    kills: list[str] = []
    with OutboxWatch(ws.outbox_dir) as outbox:
        while len(kills) < KILLS:
            send(2)
            fresh = wait_for(
                lambda: _in_progress(ws) - hit, 90, f"a job in progress for kill {len(kills) + 1}", 0.02
            )
            time.sleep(rng.uniform(0.0, 0.25))  # somewhere in decode, inference, record or routing
            hit.update(fresh)
            if len(kills) % 2 == 0:
                _kill_pool_child(worker)
                kills.append("pool process")
            else:
                killed_at = time.monotonic()
                worker.kill()
                # The job waits, unacknowledged, until its visibility timeout; a worker restores it.
                time.sleep(max(0.0, ws.visibility_timeout + 0.5 - (time.monotonic() - killed_at)))
                worker = docsort_worker(ws, queue=shared_queue)
                kills.append("whole worker")
        send(len(unsent))
        wait_for(lambda: finished_count(ws) == len(pages), 180, f"{len(pages)} documents finished")
        logs = [p.read_text() for p in (tmp_path / "worker-logs").glob("*.log")]
        assert len(logs) == 1 + KILLS // 2 and not any("delivery failed" in log for log in logs)
        time.sleep(1.0)  # anything still in flight would route now
    outcomes = assert_one_outcome_each(ws, pages)
    assert len(kills) == KILLS
    assert outbox.written_twice() == {}, f"routed twice: {outbox.written_twice()}"
    auto = [
        d[1]
        for o in outcomes.values()
        for decisions in o.pages.values()
        for d in decisions
        if d[0] == DecisionKind.auto
    ]
    assert sorted(Path(p) for p in auto if p) == routed_files(ws), "outbox holds other files than routed"
    assert len(auto) == len(set(auto)) >= len(pages) // 2
    archived = sorted(p.name for p in ws.archive_dir.iterdir())
    assert len(archived) == len(pages), archived  # each file archived once, under its stable name
    # A worker killed between the door's copy and its record leaves a copy no document names (the
    # redelivered message made another); a worker starting removes those once they are old enough.
    staged = ws.dir("processing") / "celery"
    engine = db.make_engine(ws.database_url)
    try:
        removed = remove_unrecorded_copies(staged, db.make_sessionmaker(engine), 0.0)
    finally:
        engine.dispose()
    assert not any(staged.iterdir()), f"recorded copies left in the processing area: {list(staged.iterdir())}"
    assert removed <= KILLS * 2  # at most the files of the job being admitted at each kill
    assert len(list((tmp_path / "in").iterdir())) == len(pages)  # the named files are never moved


def test_a_starting_worker_removes_door_copies_that_no_document_names(
    docsort_worker: StartWorker, pg_db_url: str, redis_url: str, shared_queue: str, tmp_path: Path
) -> None:
    ws = fault_settings(tmp_path / "data", pg_db_url, redis_url)
    staged = ws.dir("processing") / "celery"
    staged.mkdir(parents=True, exist_ok=True)
    orphan, kept = staged / "0123456789ab-orphan.png", staged / "ba9876543210-kept.png"
    for path in (orphan, kept):
        write_scan(path, 0, 1, (60, 80))
    engine = db.make_engine(ws.database_url)
    try:
        with db.session_scope(db.make_sessionmaker(engine)) as s:
            s.add(Document(sha256="c" * 64, source="celery", filename="kept.png", stored_path=str(kept)))
    finally:
        engine.dispose()
    worker = docsort_worker(ws, queue=shared_queue, recover_after_seconds=0)
    worker.wait_for_log("recovery.copies_removed")
    assert not orphan.exists() and kept.is_file()
