"""What the fault tests share: worker settings with short timeouts, scan-like pages, and the checks that
every page ended with exactly one outcome and that no file was routed twice."""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import numpy as np
from PIL import Image
from sqlalchemy import func, select

from schema import db
from schema.enums import DecisionKind, DecisionOrigin, DocumentState
from schema.tables import Document, Page, Prediction, RoutingDecision
from tests.support.tiny_model import make_tiny_model
from worker.registry import activate
from worker.settings import WorkerSettings

T = TypeVar("T")


def fault_settings(data_dir: Path, database_url: str, broker_url: str, **overrides: object) -> WorkerSettings:
    """Worker settings for a fault test: one process, one thread, short time limits and retry delays,
    the tiny model (black page: ``dark``, white: ``light``, grey: review) active."""
    values: dict[str, object] = {
        "data_dir": data_dir,
        "database_url": database_url,
        "broker_url": broker_url,
        "concurrency": 1,
        "threads": 1,
        "visibility_timeout": 8,
        "task_time_limit": 6,
        "retry_backoff_s": 0.5,
        "max_retries": 8,
        **overrides,
    }
    ws = WorkerSettings(**values)  # type: ignore[arg-type]
    ws.ensure_dirs()
    make_tiny_model(ws.models_dir)
    engine = db.make_engine(ws.database_url)
    try:
        with db.session_scope(db.make_sessionmaker(engine)) as session:
            activate(session, ws.models_dir, "tiny", "1")
    finally:
        engine.dispose()
    return ws


def write_scan(path: Path, level: int, seed: int, size: tuple[int, int] = (1240, 1754)) -> Path:
    """A page of about A4 at 150 dpi: a ground of ``level`` with lines of noisy "text" (each seed differs)."""
    rng = np.random.default_rng(seed)
    width, height = size
    arr = np.full((height, width), level, dtype=np.uint8)
    ink = 255 - level
    for top in range(120, height - 120, 40):
        length = int(rng.integers(width // 3, width - 200))
        line = rng.random((12, length)) < 0.45
        arr[top : top + 12, 100 : 100 + length][line] = ink
    Image.fromarray(arr, "L").save(path)
    return path


def write_two_page_tiff(path: Path, levels: tuple[int, int], seed: int) -> Path:
    pages = []
    for i, level in enumerate(levels):
        arr = np.full((800, 600), level, dtype=np.uint8)
        arr[100 + 10 * (seed % 20) : 120 + 10 * (seed % 20), 50 : 50 + 5 * (i + 1 + seed % 50)] = 255 - level
        pages.append(Image.fromarray(arr, "L"))
    pages[0].save(path, save_all=True, append_images=pages[1:], compression="tiff_lzw")
    return path


def job_payload(paths: list[Path], on_done: str = "archive") -> dict[str, object]:
    return {"documents": [{"path": str(p)} for p in paths], "on_done": on_done}


def finished_count(ws: WorkerSettings) -> int:
    engine = db.make_engine(ws.database_url)
    try:
        with engine.connect() as conn:
            finished = (DocumentState.done, DocumentState.failed)
            stmt = select(func.count()).select_from(Document).where(Document.state.in_(finished))
            return int(conn.execute(stmt).scalar() or 0)
    finally:
        engine.dispose()


def wait_for(condition: Callable[[], T], timeout: float, what: str, interval: float = 0.1) -> T:
    """Poll ``condition`` until it returns something true, and return that."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"{what}: not reached after {timeout:.0f}s")


@dataclass
class DocumentOutcome:
    filename: str
    state: str
    error: str | None
    stored_path: str | None
    pages: dict[int, list[tuple[str, str | None, str | None]]] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)  # reasons of document-level failed decisions


def read_outcomes(ws: WorkerSettings) -> dict[str, DocumentOutcome]:
    """Every document by file name, with each page's model decisions (kind, destination, applied?)."""
    engine = db.make_engine(ws.database_url)
    try:
        with db.make_sessionmaker(engine)() as session:
            out: dict[str, DocumentOutcome] = {}
            for doc in session.scalars(select(Document)):
                outcome = DocumentOutcome(doc.filename, doc.state.value, doc.error, doc.stored_path)
                for page in session.scalars(select(Page).where(Page.document_id == doc.id)):
                    decisions = session.scalars(
                        select(RoutingDecision)
                        .join(Prediction, Prediction.id == RoutingDecision.prediction_id)
                        .where(Prediction.page_id == page.id, RoutingDecision.origin == DecisionOrigin.model)
                    )
                    outcome.pages[page.page_number] = [
                        (d.kind.value, d.destination, d.applied_at.isoformat() if d.applied_at else None)
                        for d in decisions
                    ]
                failed = session.scalars(
                    select(RoutingDecision).where(
                        RoutingDecision.document_id == doc.id,
                        RoutingDecision.kind == DecisionKind.failed,
                        RoutingDecision.prediction_id.is_(None),
                    )
                )
                outcome.failures = [d.reason or "" for d in failed]
                assert doc.filename not in out, f"two documents named {doc.filename}"
                out[doc.filename] = outcome
            return out
    finally:
        engine.dispose()


def assert_one_outcome_each(
    ws: WorkerSettings, expected_pages: dict[str, int], allow_failed: bool = False
) -> dict[str, DocumentOutcome]:
    """Every file is one document that ended done (or failed, with a reason, if allowed), each of its
    pages with exactly one model decision; every automatic decision delivered to a file that exists."""
    outcomes = read_outcomes(ws)
    missing, extra = set(expected_pages) - set(outcomes), set(outcomes) - set(expected_pages)
    assert not missing and not extra, f"missing: {sorted(missing)}, extra: {sorted(extra)}"
    for name, n_pages in expected_pages.items():
        doc = outcomes[name]
        if doc.state == DocumentState.failed:
            assert allow_failed, f"{name} failed: {doc.error}"
            assert len(doc.failures) == 1 and doc.failures[0], (name, doc.failures)
            continue
        assert doc.state == DocumentState.done, (name, doc.state, doc.error)
        assert sorted(doc.pages) == list(range(1, n_pages + 1)), (name, doc.pages)
        assert not doc.failures, (name, doc.failures)
        for number, decisions in doc.pages.items():
            assert len(decisions) == 1, f"{name} page {number}: {len(decisions)} decisions {decisions}"
            kind, destination, applied = decisions[0]
            if kind == DecisionKind.auto:
                assert applied and destination and Path(destination).is_file(), (name, number, decisions)
    return outcomes


def routed_files(ws: WorkerSettings) -> list[Path]:
    return sorted(p for p in ws.outbox_dir.rglob("*") if p.is_file())


class OutboxWatch:
    """Records every (path, inode) that appears under the outbox while a test runs.

    Delivery writes a temporary file and renames it into place, so each delivery of a page makes a new
    inode: a page routed twice shows as one path seen with two inodes (a redelivered task that finds
    the file already there writes nothing).
    """

    def __init__(self, root: Path, interval: float = 0.02) -> None:
        self.root = root
        self.interval = interval
        self.seen: dict[Path, set[int]] = defaultdict(set)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="outbox-watch", daemon=True)

    def _scan(self) -> None:
        for folder, _dirs, files in os.walk(self.root):
            for name in files:
                if name.startswith("."):
                    continue  # a delivery in progress
                path = Path(folder) / name
                with contextlib.suppress(FileNotFoundError):
                    self.seen[path].add(os.stat(path).st_ino)

    def _run(self) -> None:
        while not self._stop.is_set():
            self._scan()
            time.sleep(self.interval)

    def __enter__(self) -> OutboxWatch:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._scan()

    def written_twice(self) -> dict[Path, set[int]]:
        return {p: inodes for p, inodes in self.seen.items() if len(inodes) > 1}
