"""Worker settings on a real database, the tiny model made active, page files, and row counts."""

from __future__ import annotations

import os
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from sqlalchemy import func, select

from schema import db
from schema.settings import DocsortSettings
from schema.tables import Document, OutputDocument, Page, Prediction, RoutingDecision
from tests.support.tiny_model import make_tiny_model
from tests.support.worker_proc import WorkerProcess
from worker.context import WorkerContext
from worker.record import FINISHED
from worker.registry import ModelCache, activate
from worker.settings import WorkerSettings


def write_page(path: Path, grey: int, size: tuple[int, int] = (120, 160), fmt: str | None = None) -> Path:
    """A page of one grey level (0 black: `dark`, 255 white: `light`, 128: unsure) with a little texture.

    The texture depends on the file name, so two pages of one level are two different documents.
    """
    rng = np.random.default_rng([grey, zlib.crc32(path.name.encode())])
    arr = np.full((size[1], size[0], 3), grey, dtype=np.int16)
    arr[10:20, 10 : size[0] - 10] += rng.integers(-8, 8, size=(10, size[0] - 20, 3), dtype=np.int16)
    Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8), "RGB").save(path, format=fmt)
    return path


def make_worker_settings(base: DocsortSettings, **overrides: object) -> WorkerSettings:
    shared = {name: getattr(base, name) for name in DocsortSettings.model_fields}
    return WorkerSettings(**{**shared, **overrides})  # type: ignore[arg-type]


def activate_model(
    ws: WorkerSettings, name: str = "tiny", version: str = "1", **model_kwargs: object
) -> Path:
    """Write the tiny model into the models folder and make it the active version."""
    folder = make_tiny_model(ws.models_dir, name=name, version=version, **model_kwargs)  # type: ignore[arg-type]
    engine = db.make_engine(ws.database_url)
    try:
        with db.session_scope(db.make_sessionmaker(engine)) as session:
            activate(session, ws.models_dir, name, version)
    finally:
        engine.dispose()
    return folder


class Sent:
    """What a context sent to queues and callbacks (a real in-process recorder, no broker)."""

    def __init__(self) -> None:
        self.queue: list[tuple[str, dict[str, object]]] = []
        self.callbacks: list[str] = []


def make_context(ws: WorkerSettings, sent: Sent | None = None) -> WorkerContext:
    engine = db.make_engine(ws.database_url)
    sent = sent or Sent()
    return WorkerContext(
        settings=ws,
        sessions=db.make_sessionmaker(engine),
        models=ModelCache(ws),
        sender=lambda q, p: sent.queue.append((q, p)),
        send_callback=sent.callbacks.append,
    )


def _clean_worker_settings(
    url: str, redis_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> WorkerSettings:
    for key in list(os.environ):
        if key.startswith("DOCSORT_") and not key.startswith("DOCSORT_TEST_"):
            monkeypatch.delenv(key)
    ws = WorkerSettings(
        data_dir=tmp_path / "data", database_url=url, broker_url=redis_url, concurrency=1, threads=1
    )
    ws.ensure_dirs()
    activate_model(ws)
    return ws


def finished_count(ws: WorkerSettings) -> int:
    engine = db.make_engine(ws.database_url)
    try:
        with engine.connect() as conn:
            stmt = select(func.count()).select_from(Document).where(Document.state.in_(FINISHED))
            return int(conn.execute(stmt).scalar() or 0)
    finally:
        engine.dispose()


def wait_finished(ws: WorkerSettings, n: int, worker: WorkerProcess, timeout: float = 90.0) -> None:
    """Wait until ``n`` documents are done or failed (the worker's log tail shows if not)."""
    worker.wait_until(lambda: finished_count(ws) >= n, timeout=timeout, what=f"{n} documents finished")


def count_rows(ws: WorkerSettings) -> dict[str, int]:
    engine = db.make_engine(ws.database_url)
    try:
        with engine.connect() as conn:
            return {
                m.__tablename__: int(conn.execute(select(func.count()).select_from(m)).scalar() or 0)
                for m in (Document, Page, Prediction, RoutingDecision)
            }
    finally:
        engine.dispose()


def files_under(folder: Path | None) -> list[Path]:
    assert folder is not None
    return sorted(p for p in folder.rglob("*") if p.is_file() and not p.name.startswith("."))


def output_documents(ws: WorkerSettings) -> list[OutputDocument]:
    """Every output document in force (not replaced by an operator's), in file and page order."""
    engine = db.make_engine(ws.database_url)
    try:
        with db.make_sessionmaker(engine)() as s:
            rows = s.scalars(select(OutputDocument).where(OutputDocument.superseded_at.is_(None)))
            return sorted(rows, key=lambda o: (o.document_id, min(o.pages or [0]), o.generation))
    finally:
        engine.dispose()
