"""Fixtures of the ingest suite: ingest settings on a unique Redis queue, an intake, a Redis client."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis

from ingest.intake import Intake
from ingest.sender import CelerySender
from ingest.settings import IngestSettings, get_ingest_settings
from schema import db
from schema.settings import DocsortSettings
from tests.support.worker_proc import docsort_worker  # noqa: F401  (the fixture, for this suite)


@pytest.fixture
def rclient(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


def _clean_queue(client: redis.Redis, queue: str) -> None:
    client.delete(queue, f"_kombu.binding.{queue}", f"{queue}.unacked", f"{queue}.unacked_index")


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


def make_intake(settings: IngestSettings) -> Intake:
    sessions = db.make_sessionmaker(db.make_engine(settings.database_url))
    return Intake(settings, sessions, CelerySender(settings.broker_url, settings.job_queue))


@pytest.fixture
def intake(any_ingest_settings: IngestSettings) -> Iterator[Intake]:
    made = make_intake(any_ingest_settings)
    yield made
    close_intake(made)


def close_intake(made: Intake) -> None:
    made.sessions.kw["bind"].dispose()
    if isinstance(made.sender, CelerySender):
        made.sender.close()


def activate_tiny_model(settings: IngestSettings) -> None:
    """The tiny test model (dark/light) written into the models folder and made the active version."""
    from tests.support.tiny_model import make_tiny_model
    from worker.registry import activate

    make_tiny_model(settings.models_dir)
    engine = db.make_engine(settings.database_url)
    try:
        with db.session_scope(db.make_sessionmaker(engine)) as session:
            activate(session, settings.models_dir, "tiny", "1")
    finally:
        engine.dispose()
