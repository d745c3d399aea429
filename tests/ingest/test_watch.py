"""`docsort watch` as a real process on real folders, Redis and SQLite."""

from __future__ import annotations

import hashlib
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from ingest.settings import IngestSettings
from schema import db
from schema.db import session_scope
from schema.tables import Document, Receipt
from tests.support.ingest import docsort_env, png_bytes, queued_document_ids, start_docsort, stop, wait_until

Start = Callable[..., subprocess.Popen[bytes]]


@pytest.fixture
def sessions(ingest_settings: IngestSettings) -> Iterator[sessionmaker[Session]]:
    made = db.make_sessionmaker(db.make_engine(ingest_settings.database_url))
    yield made
    made.kw["bind"].dispose()


@pytest.fixture
def inbox(ingest_settings: IngestSettings) -> Path:
    return ingest_settings.dir("inbox")


@pytest.fixture
def start_watch(ingest_settings: IngestSettings, tmp_path: Path, inbox: Path) -> Iterator[Start]:
    procs: list[subprocess.Popen[bytes]] = []

    def start(*args: str, **env: str) -> subprocess.Popen[bytes]:
        proc = start_docsort(["watch", str(inbox), *args], docsort_env(env), tmp_path / "watch.log")
        procs.append(proc)
        return proc

    yield start
    for proc in procs:
        stop(proc)


def count_docs(sessions: sessionmaker[Session]) -> int:
    with session_scope(sessions) as s:
        return int(s.scalar(select(func.count(Document.id))) or 0)


def _write_slowly(path: Path, data: bytes, chunks: int, pause: float, done: threading.Event) -> None:
    """Write ``data`` in ``chunks`` steps ``pause`` apart; ``done`` is set once the last byte is written."""
    step = -(-len(data) // chunks)
    with path.open("wb") as fh:
        for start in range(0, len(data), step):
            if start:
                time.sleep(pause)
            fh.write(data[start : start + step])
            fh.flush()
    done.set()


@pytest.mark.parametrize("mode", ["inotify", "poll"])
def test_file_written_slowly_is_never_taken_before_it_is_complete(
    mode: str,
    start_watch: Start,
    inbox: Path,
    sessions: sessionmaker[Session],
    rclient: redis.Redis,
    ingest_settings: IngestSettings,
) -> None:
    args = ("--poll",) if mode == "poll" else ()
    # Pauses of 0.5 s against a settle window of 3 s: a wide margin, so a loaded machine that delays the
    # writer thread does not make a still-growing file look settled.
    proc = start_watch(*args, DOCSORT_WATCH_SETTLE_SECONDS="3.0", DOCSORT_WATCH_POLL_MS="200")
    time.sleep(1.5)  # the watcher is up and has scanned
    data = png_bytes(1, size=300) * 3  # ~ a few hundred KB, written in 10 steps over 5 s
    target = inbox / "scan.png"
    complete = threading.Event()
    writer = threading.Thread(target=_write_slowly, args=(target, data, 10, 0.5, complete))
    writer.start()
    wait_until(target.exists, 10, what="the writer to create the file")
    while not complete.is_set():  # the whole time the file is still growing
        assert count_docs(sessions) == 0, "a growing file was taken"
        assert target.exists(), "a growing file was moved away"
        time.sleep(0.1)
    wait_until(lambda: count_docs(sessions) == 1, 20, what="the completed file to be taken")
    with session_scope(sessions) as s:
        doc = s.scalars(select(Document)).one()
        assert doc.size_bytes == len(data)
        assert doc.sha256 == hashlib.sha256(data).hexdigest()
        assert Path(doc.stored_path or "").read_bytes() == data
    assert not target.exists()
    queued = wait_until(lambda: queued_document_ids(rclient, ingest_settings.job_queue), 10, what="message")
    assert queued == [doc.id]
    assert proc.poll() is None


def test_temporary_and_hidden_names_are_ignored_and_subfolders_become_the_tag(
    start_watch: Start, inbox: Path, sessions: sessionmaker[Session]
) -> None:
    ignored = ["a.part", "b.TMP", "~c.png", ".d.png", ".hidden/e.png"]
    for i, name in enumerate(ignored):
        (inbox / name).parent.mkdir(parents=True, exist_ok=True)
        (inbox / name).write_bytes(png_bytes(50 + i))
    (inbox / "invoices" / "2024").mkdir(parents=True)
    (inbox / "invoices" / "2024" / "f.png").write_bytes(png_bytes(60))
    (inbox / "top.png").write_bytes(png_bytes(61))
    start_watch()
    wait_until(lambda: count_docs(sessions) == 2, 20, what="the two real files")
    time.sleep(1.5)  # well past the settle window: nothing more is taken
    with session_scope(sessions) as s:
        tags = sorted((d.filename, d.source_ref, d.source) for d in s.scalars(select(Document)))
    assert tags == [("f.png", "invoices/2024", "watch"), ("top.png", "", "watch")]
    assert all((inbox / name).exists() for name in ignored)
    assert count_docs(sessions) == 2


def test_files_dropped_while_the_watcher_was_down_are_taken_at_start_and_stop_is_clean(
    start_watch: Start, inbox: Path, sessions: sessionmaker[Session]
) -> None:
    for i in range(5):
        (inbox / f"early{i}.png").write_bytes(png_bytes(70 + i))
    proc = start_watch()
    wait_until(lambda: count_docs(sessions) == 5, 20, what="files present at start")
    (inbox / "late.png").write_bytes(png_bytes(80))
    wait_until(lambda: count_docs(sessions) == 6, 20, what="a file dropped while running")
    assert stop(proc) == 0
    assert sorted(p.name for p in inbox.iterdir()) == []


def test_same_content_dropped_twice_is_taken_once_and_the_copy_recorded_as_duplicate(
    start_watch: Start,
    inbox: Path,
    sessions: sessionmaker[Session],
    rclient: redis.Redis,
    ingest_settings: IngestSettings,
) -> None:
    data = png_bytes(90)
    start_watch()
    (inbox / "first.png").write_bytes(data)
    wait_until(lambda: count_docs(sessions) == 1, 20, what="the first copy")
    (inbox / "scanner2").mkdir()
    (inbox / "scanner2" / "second.png").write_bytes(data)
    wait_until(lambda: not (inbox / "scanner2" / "second.png").exists(), 20, what="the second copy taken")
    with session_scope(sessions) as s:
        wait_until(lambda: s.scalar(select(func.count(Receipt.id))) == 2, 10, what="the second receipt")
        receipts = list(s.scalars(select(Receipt).order_by(Receipt.id)))
        assert [(r.duplicate, r.source_ref) for r in receipts] == [(False, ""), (True, "scanner2")]
    assert count_docs(sessions) == 1
    assert len(queued_document_ids(rclient, ingest_settings.job_queue)) == 1
    time.sleep(1.0)
    assert len(queued_document_ids(rclient, ingest_settings.job_queue)) == 1
    duplicates = list((ingest_settings.dir("archive") / "duplicates").iterdir())
    assert [p.read_bytes() for p in duplicates] == [data]
