"""Fixtures of the ingest suite: ingest settings on a unique Redis queue, an intake, a Redis client."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis

from ingest.intake import Intake
from ingest.settings import IngestSettings, get_ingest_settings
from schema import db
from schema.settings import DocsortSettings
from tests.support.intake import _clean_queue, close_intake, make_intake
from tests.support.worker_proc import docsort_worker  # noqa: F401  (the fixture, for this suite)


@pytest.fixture
def rclient(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


@pytest.fixture
def ingest_settings(
    settings: DocsortSettings, unique_queue: str, monkeypatch: pytest.MonkeyPatch, rclient: redis.Redis
) -> Iterator[IngestSettings]:
    """Ingest settings on the ``settings`` fixture (SQLite, tmp dirs), a unique queue, short windows."""
    monkeypatch.setenv("DOCSORT_QUEUE", unique_queue)
    monkeypatch.setenv("DOCSORT_WATCH_SETTLE_SECONDS", "0.5")
    monkeypatch.setenv("DOCSORT_WATCH_RESCAN_SECONDS", "5")
    monkeypatch.setenv("DOCSORT_RECOVER_AFTER_SECONDS", "2")
    monkeypatch.setenv("DOCSORT_SECRET_KEY", "ingest-test-secret-0123456789")
    get_ingest_settings.cache_clear()
    yield get_ingest_settings()
    get_ingest_settings.cache_clear()
    _clean_queue(rclient, unique_queue)


@pytest.fixture(params=["sqlite", "postgres"])
def any_ingest_settings(
    request: pytest.FixtureRequest, ingest_settings: IngestSettings, monkeypatch: pytest.MonkeyPatch
) -> IngestSettings:
    """The ingest settings once on SQLite and once on PostgreSQL (migrated)."""
    if request.param == "sqlite":
        return ingest_settings
    url = str(request.getfixturevalue("pg_url"))
    db.upgrade(url)
    monkeypatch.setenv("DOCSORT_DATABASE_URL", url)
    get_ingest_settings.cache_clear()
    return get_ingest_settings()


@pytest.fixture
def intake(any_ingest_settings: IngestSettings) -> Iterator[Intake]:
    made = make_intake(any_ingest_settings)
    yield made
    close_intake(made)
