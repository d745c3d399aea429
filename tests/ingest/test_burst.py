"""A burst of 1,000 files dropped at once into a watched folder, with the watcher stopped midway and
started again: each file is taken exactly once and none is lost."""

from __future__ import annotations

import hashlib
import signal
import subprocess
import time
from pathlib import Path

import pytest
import redis
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from ingest.settings import IngestSettings
from schema import db
from schema.db import session_scope
from schema.enums import DocumentState
from schema.tables import Document, Page, Prediction, Receipt
from tests.support.ingest import docsort_env, png_bytes, queued_document_ids, start_docsort, stop, wait_until
from tests.support.intake import activate_tiny_model
from tests.support.worker_proc import StartWorker

N = 1000
FOLDERS = ("scanner1", "scanner2", "mailroom/in", "")


def _drop(inbox: Path, n: int) -> set[str]:
    """Write ``n`` distinct pages straight into the watch folder, as fast as possible."""
    shas = set()
    for i in range(n):
        data = png_bytes(10_000 + i)
        folder = inbox / FOLDERS[i % len(FOLDERS)]
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"page{i:04d}.png").write_bytes(data)
        shas.add(hashlib.sha256(data).hexdigest())
    return shas


def _inbox_files(inbox: Path) -> list[Path]:
    return [p for p in inbox.rglob("*") if p.is_file()]


def _count(sessions: sessionmaker[Session], model: type, *where: object) -> int:
    with session_scope(sessions) as s:
        return int(s.scalar(select(func.count()).select_from(model).where(*where)) or 0)  # type: ignore[arg-type]


def _watch(settings: IngestSettings, tmp_path: Path, n: int) -> subprocess.Popen[bytes]:
    env = docsort_env({"DOCSORT_WATCH_BATCH_FILES": "20", "DOCSORT_WATCH_SETTLE_SECONDS": "0.5"})
    return start_docsort(["watch", str(settings.dir("inbox"))], env, tmp_path / f"watch{n}.log")


def _stop_midway(
    proc: subprocess.Popen[bytes], sessions: sessionmaker[Session], sig: int, inbox: Path
) -> tuple[int, int]:
    wait_until(lambda: _count(sessions, Document) >= 150, 120, interval=0.02, what="150 files taken")
    if sig == signal.SIGKILL:
        proc.kill()
        proc.wait(30)
    else:
        assert stop(proc, sig) == 0
    return _count(sessions, Document), len(_inbox_files(inbox))


@pytest.mark.slow
def test_burst_of_1000_files_with_a_restart_midway_is_taken_exactly_once(
    ingest_settings: IngestSettings, tmp_path: Path, rclient: redis.Redis
) -> None:
    inbox = ingest_settings.dir("inbox")
    sessions = db.make_sessionmaker(db.make_engine(ingest_settings.database_url))
    first = _watch(ingest_settings, tmp_path, 1)
    time.sleep(2.0)  # up and watching
    started = time.monotonic()
    shas = _drop(inbox, N)
    taken, left = _stop_midway(first, sessions, signal.SIGTERM, inbox)
    assert 0 < taken < N and left > 0, (taken, left)  # stopped in the middle of the burst
    second = _watch(ingest_settings, tmp_path, 2)
    wait_until(lambda: _count(sessions, Document) == N and not _inbox_files(inbox), 180, what="all taken")
    elapsed = time.monotonic() - started
    time.sleep(2.0)  # a later look finds nothing more to take or send
    assert stop(second) == 0

    with session_scope(sessions) as s:
        docs = list(s.scalars(select(Document)))
        assert {d.sha256 for d in docs} == shas
        assert all(d.state == DocumentState.processing for d in docs)
        assert {d.source_ref for d in docs} == {"scanner1", "scanner2", "mailroom/in", ""}
    assert _count(sessions, Receipt) == N and _count(sessions, Receipt, Receipt.duplicate.is_(True)) == 0
    queued = queued_document_ids(rclient, ingest_settings.job_queue)
    assert len(queued) == N and set(queued) == {d.id for d in docs}  # each sent once, none twice
    assert len([p for p in ingest_settings.dir("processing").rglob("*") if p.is_file()]) == N
    print(f"burst: {N} files taken in {elapsed:.1f} s ({taken} before the restart)")
    sessions.kw["bind"].dispose()


@pytest.mark.slow
def test_burst_with_the_watcher_killed_midway_is_classified_exactly_once_by_a_real_worker(
    ingest_settings: IngestSettings, docsort_worker: StartWorker, tmp_path: Path
) -> None:
    activate_tiny_model(ingest_settings)
    inbox = ingest_settings.dir("inbox")
    sessions = db.make_sessionmaker(db.make_engine(ingest_settings.database_url))
    docsort_worker(ingest_settings, queue=ingest_settings.job_queue)
    first = _watch(ingest_settings, tmp_path, 1)
    time.sleep(2.0)
    started = time.monotonic()
    shas = _drop(inbox, N)
    taken, left = _stop_midway(first, sessions, signal.SIGKILL, inbox)
    assert 0 < taken < N and left > 0, (taken, left)
    second = _watch(ingest_settings, tmp_path, 2)
    wait_until(
        lambda: _count(sessions, Document, Document.state == DocumentState.done) == N,
        240,
        interval=0.5,
        what="every file classified",
    )
    elapsed = time.monotonic() - started
    assert stop(second) == 0

    with session_scope(sessions) as s:
        assert {d.sha256 for d in s.scalars(select(Document))} == shas
    assert _count(sessions, Page) == N
    assert _count(sessions, Prediction) == N  # one prediction per page: nothing classified twice
    assert _count(sessions, Receipt) == N
    assert not _inbox_files(inbox)
    assert not [p for p in (ingest_settings.dir("processing") / "watch").rglob("*") if p.is_file()]
    assert len(list(ingest_settings.dir("archive").glob("*.png"))) == N
    print(f"burst end to end: {N} files classified in {elapsed:.1f} s ({taken} taken before the kill)")
    sessions.kw["bind"].dispose()
