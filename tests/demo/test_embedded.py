"""The embedded mode runs the worker's own Celery task in this process: pages get the same outcomes."""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import worker.tasks
from docsort.demo_embedded import EMBEDDED_BROKER_URL, EmbeddedBroker
from docsort.demo_report import all_pages, collect
from schema import db
from schema.settings import DocsortSettings
from tests.support.demo import prediction_workers
from tests.support.tiny_model import make_tiny_model
from worker.registry import activate


def _page(path: Path, grey: int) -> None:
    Image.fromarray(np.full((48, 40, 3), grey, dtype=np.uint8)).save(path)


@pytest.fixture
def embedded_env(
    settings: DocsortSettings, monkeypatch: pytest.MonkeyPatch, unique_queue: str
) -> DocsortSettings:
    monkeypatch.setenv("DOCSORT_BROKER_URL", EMBEDDED_BROKER_URL)
    monkeypatch.setenv("DOCSORT_QUEUE", unique_queue)
    monkeypatch.setenv("DOCSORT_WATCH_SETTLE_SECONDS", "0.3")
    monkeypatch.setattr(worker.tasks, "_context", None)  # this test's settings, not an earlier test's
    make_tiny_model(settings.models_dir)
    sessions = db.make_sessionmaker(db.make_engine(settings.database_url))
    with db.session_scope(sessions) as session:
        activate(session, settings.models_dir, "tiny", "1")
    return settings


def test_embedded_mode_gives_auto_review_and_failed_outcomes_from_this_process(
    embedded_env: DocsortSettings,
) -> None:
    inbox = embedded_env.dir("inbox")
    labels = {"black.png": "dark", "white.png": "light", "grey.png": "dark", "empty.png": "broken"}
    broker = EmbeddedBroker()
    broker.start()
    try:
        _page(inbox / "black.png", 0)
        _page(inbox / "white.png", 255)
        _page(inbox / "grey.png", 128)
        (inbox / "empty.png").write_bytes(b"")
        sessions = db.make_sessionmaker(db.make_engine(embedded_env.database_url))
        deadline = time.monotonic() + 60
        while True:
            with sessions() as session:
                outcomes = collect(all_pages(session), labels)
            if len(outcomes.files_done) == len(labels) or time.monotonic() > deadline:
                break
            time.sleep(0.2)
    finally:
        broker.stop()
    assert outcomes.kinds == {"auto": 2, "review": 1, "failed": 1}
    assert outcomes.by_class["dark"].auto_right == 1 and outcomes.by_class["light"].auto_right == 1
    assert broker.errors == [] and broker.processed >= 1
    assert all(not t.is_alive() for t in broker.threads)
    db_file = Path(embedded_env.database_url.removeprefix("sqlite:///"))
    assert prediction_workers(db_file) == {f"{socket.gethostname()}:{os.getpid()}"}
