"""The real pieces an end-to-end benchmark runs: a fresh database, worker processes, the watcher.

Workers and the watcher are started by the one launcher docsort has for its own processes
(:mod:`docsort.procs`). Every database,
queue and folder is new for the run and removed (or left in the work folder) at the end; shared
services are only used, never restarted or flushed.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import redis
from sqlalchemy import func, select
from sqlalchemy.engine import make_url

from docsort.bench.common import BenchError
from docsort.procs import Child, clean_env, docsort_command, settings_env, start_worker
from schema import db
from schema.enums import DocumentState
from schema.tables import Document


@contextmanager
def fresh_database(base_url: str, work: Path, tag: str) -> Iterator[str]:
    """A new, migrated database: a SQLite file in ``work``, or a new database on ``base_url``'s
    PostgreSQL server (dropped at the end)."""
    if not base_url or base_url.startswith("sqlite"):
        url = f"sqlite:///{work / f'{tag}.db'}"
        db.upgrade(url)
        yield url
        return
    import psycopg

    parsed = make_url(base_url)
    name = f"docsort_bench_{tag}_{uuid.uuid4().hex[:8]}"
    admin = parsed.set(drivername="postgresql", database="postgres").render_as_string(hide_password=False)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = parsed.set(database=name).render_as_string(hide_password=False)
    try:
        db.upgrade(url)
        yield url
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def finished_documents(url: str) -> int:
    engine = db.make_engine(url)
    try:
        with engine.connect() as conn:
            done = (DocumentState.done, DocumentState.failed)
            stmt = select(func.count()).select_from(Document).where(Document.state.in_(done))
            return int(conn.execute(stmt).scalar() or 0)
    finally:
        engine.dispose()


def wait_until(condition: Callable[[], bool], timeout: float, what: str, interval: float = 0.05) -> float:
    """Poll until ``condition`` holds; return the moment (perf_counter) it was first seen to hold."""
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        if condition():
            return time.perf_counter()
        time.sleep(interval)
    raise BenchError(f"{what}: not reached after {timeout:.0f} s")


@contextmanager
def workers(settings: Mapping[str, Any], queue: str, log_dir: Path, processes: int) -> Iterator[Any]:
    """One ``docsort worker`` with ``processes`` pool processes, ready (model loaded and warm)."""
    env = settings_env(dict(settings), concurrency=processes)
    worker = start_worker(env, queue, log_dir / f"worker-{queue}.log", concurrency=processes)
    try:
        worker.wait_for_log("inference.warm", timeout=120, count=processes)
        yield worker
    finally:
        worker.stop(grace=20)
        clean_queue(str(settings["broker_url"]), queue)


def clean_queue(broker_url: str, queue: str) -> None:
    client = redis.Redis.from_url(broker_url)
    try:
        suffixes = ("", ".unacked", ".unacked_index", ".unacked_mutex")
        client.delete(*[f"{queue}{s}" for s in suffixes], f"_kombu.binding.{queue}")
    finally:
        client.close()


@contextmanager
def watcher(settings: Mapping[str, Any], inbox: Path, log_path: Path) -> Iterator[Child]:
    """``docsort watch INBOX`` in its own process, watching."""
    env = clean_env(settings_env(dict(settings)))
    child = Child("watch", docsort_command("watch", str(inbox)), env, log_path.parent, log_path)
    try:
        child.wait_for_log("watching", timeout=60)
        yield child
    finally:
        child.stop(grace=20)


def unique_queue(kind: str) -> str:
    return f"docsort-bench-{kind}-{uuid.uuid4().hex[:8]}"


def tree_cpu_seconds(pid: int) -> float:
    """CPU seconds (user + system) a process and its living descendants have used (from /proc; 0 when
    gone): what a run costs in CPU, which a shared machine's load does not change much, unlike its time."""
    total = 0.0
    ticks = os.sysconf("SC_CLK_TCK")
    todo = [pid]
    while todo:
        current = todo.pop()
        try:
            fields = Path(f"/proc/{current}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / ticks
            for task in Path(f"/proc/{current}/task").iterdir():
                todo += [int(c) for c in (task / "children").read_text().split()]
        except (OSError, ValueError, IndexError):
            continue
    return total
