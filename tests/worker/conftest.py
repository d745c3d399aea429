"""Fixtures of the worker suite: worker settings on a migrated database, the tiny model, page files."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from schema import db
from schema.settings import DocsortSettings
from tests.support.worker import (
    Sent,
    _clean_worker_settings,
    activate_model,
    make_context,
    make_worker_settings,
)
from worker.context import WorkerContext
from worker.settings import WorkerSettings, get_worker_settings


@pytest.fixture
def worker_settings(settings: DocsortSettings) -> Iterator[WorkerSettings]:
    """Worker settings over the ``settings`` fixture (SQLite, tmp dirs) with the tiny model active."""
    get_worker_settings.cache_clear()
    ws = make_worker_settings(settings, concurrency=1, threads=1)
    activate_model(ws)
    yield ws
    get_worker_settings.cache_clear()


@pytest.fixture
def sent() -> Sent:
    return Sent()


@pytest.fixture
def ctx(worker_settings: WorkerSettings, sent: Sent) -> Iterator[WorkerContext]:
    context = make_context(worker_settings, sent)
    yield context
    context.sessions.kw["bind"].dispose()


@pytest.fixture
def db_worker_settings(
    migrated_db_url: str, redis_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> WorkerSettings:
    """Worker settings on a migrated SQLite or PostgreSQL database (run on both); tiny model active."""
    return _clean_worker_settings(migrated_db_url, redis_url, tmp_path, monkeypatch)


@pytest.fixture
def sqlite_worker_settings(
    sqlite_url: str, redis_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> WorkerSettings:
    """Worker settings on a migrated SQLite database, for behaviour that does not depend on the database."""
    db.upgrade(sqlite_url)
    return _clean_worker_settings(sqlite_url, redis_url, tmp_path, monkeypatch)
