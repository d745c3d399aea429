"""Fixtures of the quality suite: a worker's settings on a migrated database with the tiny model
active, its target stated and its validation scores stored as the trainer stores them."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import numpy as np
import pytest

from schema import db
from schema.manifest import Thresholds, load_manifest, write_manifest
from tests.support.tiny_model import make_tiny_model
from tests.support.worker import write_page
from tests.support.worker_proc import docsort_worker
from trainer.calibration import save_scores
from worker.imaging import load_model_inputs
from worker.inference import LoadedModel
from worker.registry import activate
from worker.settings import WorkerSettings

__all__ = ["docsort_worker"]
TARGET = 0.99


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def tiny_with_reference(ws: WorkerSettings, tmp_path: Path) -> Path:
    """The tiny model (target 99%) with validation scores of clear pages (black-ish and white-ish)."""
    folder = make_tiny_model(ws.models_dir)
    manifest = load_manifest(folder)
    write_manifest(
        folder,
        manifest.model_copy(update={"thresholds": Thresholds(confidence=0.9, target_auto_accuracy=TARGET)}),
    )
    pages = [write_page(tmp_path / "val" / f"v{g}.png", g) for g in [*range(0, 60, 2), *range(196, 256, 2)]]
    model = LoadedModel(folder, threads=1)
    images = np.stack([load_model_inputs(p, model.input_size, "stretch", 255)[0] for p in pages])
    probs = model.run(images).probs
    save_scores(folder / "report", np.log(probs), probs.argmax(axis=1), manifest.class_names)
    return folder


@pytest.fixture
def quality_settings(
    sqlite_url: str, redis_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> WorkerSettings:
    for key in [k for k in os.environ if k.startswith("DOCSORT_") and not k.startswith("DOCSORT_TEST_")]:
        monkeypatch.delenv(key)
    db.upgrade(sqlite_url)
    ws = WorkerSettings(data_dir=tmp_path / "data", database_url=sqlite_url, broker_url=redis_url, threads=1)
    ws.ensure_dirs()
    (tmp_path / "val").mkdir()
    tiny_with_reference(ws, tmp_path)
    engine = db.make_engine(ws.database_url)
    with db.session_scope(db.make_sessionmaker(engine)) as session:
        activate(session, ws.models_dir, "tiny", "1")
    engine.dispose()
    return ws
