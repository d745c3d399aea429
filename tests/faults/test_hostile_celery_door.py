"""Hostile Celery messages against a real worker: no file outside DOCSORT_CELERY_ROOTS is read, moved or
deleted; links, FIFOs and oversize files are refused with their reason; a message naming too many files
is refused whole; a ``docsort.run.v1`` message naming a path of its own acts on nothing."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from celery import Celery
from sqlalchemy import select

from schema import db
from schema.enums import DocumentState
from schema.messages import RUN_TASK
from schema.tables import Document
from tests.support.faults import fault_settings, finished_count, read_outcomes, wait_for, write_scan
from tests.support.worker_proc import StartWorker, send_classify

pytestmark = pytest.mark.faults

MAX_BYTES = 2_000_000


def _send_run(broker_url: str, queue: str, job: dict[str, object]) -> None:
    client = Celery("hostile", broker=broker_url, set_as_current=False)
    try:
        client.send_task(RUN_TASK, kwargs={"job": job}, queue=queue, serializer="json")
    finally:
        client.close()


def _middle(data: bytes) -> bytes:
    """64 bytes from the middle of a file: its own compressed pixels, not a header every PNG shares."""
    return data[len(data) // 2 : len(data) // 2 + 64]


def _document_ids(database_url: str) -> dict[str, int]:
    engine = db.make_engine(database_url)
    try:
        with db.make_sessionmaker(engine)() as s:
            return {d.filename: d.id for d in s.scalars(select(Document))}
    finally:
        engine.dispose()


def test_hostile_paths_are_refused_with_their_reason_and_no_file_outside_the_roots_is_touched(
    docsort_worker: StartWorker, pg_db_url: str, redis_url: str, shared_queue: str, tmp_path: Path
) -> None:
    ws = fault_settings(tmp_path / "data", pg_db_url, redis_url)
    roots = tmp_path / "in"
    roots.mkdir()
    secret_dir = tmp_path / "secret"
    secret_dir.mkdir()
    secret = write_scan(secret_dir / "payroll.png", 0, 11, (600, 800))
    secret_bytes = secret.read_bytes()
    good = write_scan(roots / "good.png", 255, 1, (600, 800))
    (roots / "link.png").symlink_to(secret)
    (roots / "inner-link.png").symlink_to(good)
    os.mkfifo(roots / "pipe.png")
    with (roots / "huge.png").open("wb") as fh:
        fh.truncate(10 * MAX_BYTES)  # sparse: costs nothing on disk, refused before any copy
    named = [
        good,
        secret,
        roots / "link.png",
        roots / "inner-link.png",
        roots / "pipe.png",
        roots / "huge.png",
        Path("/proc/self/environ"),
    ]
    worker = docsort_worker(
        ws,
        queue=shared_queue,
        celery_roots=str(roots),
        max_file_bytes=MAX_BYTES,
        max_documents_per_message=len(named) + 1,
    )
    nul = {"path": f"{roots}/nul\0name.png", "filename": "evil\0.png"}  # PostgreSQL refuses NUL in text
    documents = [{"path": str(p)} for p in named] + [nul]
    send_classify(ws.broker_url, shared_queue, {"documents": documents, "on_done": "delete"})
    wait_for(lambda: finished_count(ws) == len(documents), 120, "every named file has an outcome")
    worker.wait_for_log("job.processed")
    outcomes = read_outcomes(ws)
    assert outcomes["good.png"].state == DocumentState.done
    reasons = {
        name: outcomes[name].error or ""
        for name in ("payroll.png", "link.png", "inner-link.png", "pipe.png", "huge.png")
    }
    assert "outside DOCSORT_CELERY_ROOTS" in reasons["payroll.png"], reasons
    assert "symbolic link" in reasons["link.png"] and "symbolic link" in reasons["inner-link.png"], reasons
    assert "FIFO" in reasons["pipe.png"], reasons
    assert "larger than the limit" in reasons["huge.png"], reasons
    assert "outside DOCSORT_CELERY_ROOTS" in (outcomes["environ"].error or "")
    assert "NUL character" in (outcomes["evil\\0.png"].error or ""), sorted(outcomes)
    for name in reasons:
        assert outcomes[name].state == DocumentState.failed
        assert outcomes[name].stored_path is None  # nothing of it was copied in
    # the files named are where they were, untouched, even the one classified with on_done=delete
    assert good.is_file() and secret.read_bytes() == secret_bytes and (roots / "link.png").is_symlink()
    assert (roots / "pipe.png").exists() and (roots / "huge.png").stat().st_size == 10 * MAX_BYTES
    error_files = [p for p in ws.error_dir.rglob("*") if p.is_file()]
    assert error_files and all(p.name.endswith(".reason.txt") for p in error_files), error_files
    assert not any(_middle(secret_bytes) in p.read_bytes() for p in ws.data_dir.rglob("*") if p.is_file())
    assert not any(p.is_file() for p in (ws.processing_dir / "celery").rglob("*"))  # its copy was deleted

    # one file too many: the message is refused whole, nothing is read or recorded
    before = _document_ids(ws.database_url)
    too_many = [write_scan(roots / f"n{i}.png", 255, 20 + i, (600, 800)) for i in range(len(documents) + 1)]
    send_classify(ws.broker_url, shared_queue, {"documents": [{"path": str(p)} for p in too_many]})
    worker.wait_for_log("job.refused")
    assert "more than the limit" in worker.log()
    assert _document_ids(ws.database_url) == before

    # a run message naming a path of its own for a recorded document: the path is never used
    _send_run(
        ws.broker_url,
        shared_queue,
        {"documents": [{"path": str(secret), "document_id": before["good.png"]}], "on_done": "delete"},
    )
    worker.wait_for_log("job.processed", count=2)
    assert "document.path_refused" in worker.log()
    assert secret.read_bytes() == secret_bytes
    assert worker.alive()
