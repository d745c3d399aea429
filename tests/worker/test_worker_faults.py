"""A worker killed with SIGKILL in the middle of a batch loses nothing once a worker runs again.

The batch is interrupted at a known point: its `dark` pages go to a webhook served by the test, which
holds the second delivery until the worker has been killed. At that moment every page of the job is
recorded (the runner records a job's files before it delivers them), the first dark page is delivered,
the second is in flight and the rest wait.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from sqlalchemy import select

from schema import db
from schema.enums import DocumentState
from schema.tables import Document
from tests.support.worker import count_rows, files_under, write_page
from tests.support.worker_proc import StartWorker, WorkerProcess, docsort_worker, send_classify
from worker.settings import WorkerSettings

__all__ = ["docsort_worker"]

N_DOCS = 6  # dark, grey, dark, grey, dark, grey


class Hook:
    """A webhook that records deliveries and holds delivery number ``hold_at`` until released."""

    def __init__(self, hold_at: int) -> None:
        self.hold_at = hold_at
        self.received: list[dict[str, object]] = []
        self.held = threading.Event()
        self.release = threading.Event()
        self.lock = threading.Lock()

    def handle(self, payload: dict[str, object]) -> None:
        with self.lock:
            self.received.append(payload)
            n = len(self.received)
        if n == self.hold_at:
            self.held.set()
            self.release.wait(timeout=120)


@pytest.fixture
def hook() -> Iterator[tuple[Hook, str]]:
    state = Hook(hold_at=2)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", 0)))
            state.handle(json.loads(body))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *_: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state, f"http://127.0.0.1:{server.server_address[1]}/hook"
    state.release.set()
    server.shutdown()


def _setup(ws: WorkerSettings, tmp_path: Path, url: str) -> tuple[WorkerSettings, list[Path]]:
    rules = tmp_path / "routes.yaml"
    rules.write_text(f"classes:\n  dark: {{webhook: '{url}'}}\n")
    inbox = tmp_path / "in"
    inbox.mkdir()
    paths = [write_page(inbox / f"page{i}.png", 0 if i % 2 == 0 else 128) for i in range(N_DOCS)]
    return ws.model_copy(update={"routes_file": rules}), paths


def _send_and_kill(
    worker: WorkerProcess, ws: WorkerSettings, paths: list[Path], hook: Hook, whole: bool
) -> None:
    job = {"documents": [{"path": str(p)} for p in paths], "on_done": "archive"}
    send_classify(ws.broker_url, worker.queue, job)
    worker.wait_until(hook.held.is_set, timeout=120, what="second webhook delivery")
    if whole:
        worker.kill()
    else:
        (child,) = worker.children()
        os.kill(child, signal.SIGKILL)
    assert count_rows(ws)["documents"] == N_DOCS
    assert count_rows(ws)["pages"] == N_DOCS  # recorded, not all delivered
    hook.release.set()


def _assert_nothing_lost(ws: WorkerSettings, paths: list[Path], hook: Hook) -> None:
    assert count_rows(ws) == {
        "documents": N_DOCS,
        "pages": N_DOCS,
        "predictions": N_DOCS,
        "routing_decisions": N_DOCS,
    }
    engine = db.make_engine(ws.database_url)
    try:
        with db.make_sessionmaker(engine)() as s:
            docs = list(s.scalars(select(Document)))
            assert {d.state for d in docs} == {DocumentState.done}
            assert all(d.stored_path and Path(d.stored_path).parent == ws.archive_dir for d in docs)
            decisions = [p.predictions[0].decisions[0] for d in docs for p in d.pages]
            assert all(d.applied_at for d in decisions if d.kind.value == "auto")
    finally:
        engine.dispose()
    delivered = [str(p["filename"]) for p in hook.received]
    # each dark page reached the webhook; only the one in flight at the kill may have come twice
    assert sorted(set(delivered)) == ["page0.png", "page2.png", "page4.png"]
    assert len(delivered) <= 4
    assert len(files_under(ws.archive_dir)) == N_DOCS
    assert all(p.exists() for p in paths)  # the files named stay; docsort's copies were archived


def test_pool_process_killed_mid_batch_loses_nothing(
    docsort_worker: StartWorker,
    db_worker_settings: WorkerSettings,
    unique_queue: str,
    tmp_path: Path,
    hook: tuple[Hook, str],
) -> None:
    state, url = hook
    ws, paths = _setup(db_worker_settings, tmp_path, url)
    worker = docsort_worker(ws, queue=unique_queue, wait_for=("worker.ready", "inference.warm"))
    _send_and_kill(worker, ws, paths, state, whole=False)
    # the main process sees its pool process lost, puts the job back, and a new pool process runs it
    worker.wait_for_log("job.processed", timeout=120)
    _assert_nothing_lost(ws, paths, state)


@pytest.mark.slow
def test_whole_worker_killed_mid_batch_loses_nothing_after_restart(
    docsort_worker: StartWorker,
    db_worker_settings: WorkerSettings,
    unique_queue: str,
    tmp_path: Path,
    hook: tuple[Hook, str],
) -> None:
    state, url = hook
    ws, paths = _setup(db_worker_settings, tmp_path, url)
    limits = {"task_time_limit": 12, "visibility_timeout": 14}
    first = docsort_worker(ws, queue=unique_queue, **limits)
    _send_and_kill(first, ws, paths, state, whole=True)
    killed_at = time.monotonic()
    assert not first.alive()
    # the unacknowledged job returns to the queue once its visibility timeout has passed
    time.sleep(max(0.0, 14.5 - (time.monotonic() - killed_at)))
    second = docsort_worker(ws, queue=unique_queue, **limits)
    second.wait_for_log("job.processed", timeout=120)
    _assert_nothing_lost(ws, paths, state)
