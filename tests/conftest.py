"""Fixtures shared by every suite: real PostgreSQL, real SQLite, real Redis, isolated settings.

Each test session gets its own PostgreSQL database and its own Redis key space, so several suites
can run at once on one machine.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
import redis

from schema import db
from schema.settings import DocsortSettings, get_settings
from tests.support.services_env import ARTIFACTS, PG_ADMIN_URL, REDIS_URL, sqlalchemy_pg


@pytest.fixture(scope="session")
def pg_server_url() -> Iterator[str]:
    """A fresh, empty PostgreSQL database for this test session (SQLAlchemy URL); dropped at the end."""
    name = f"docsort_t_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base = PG_ADMIN_URL.rsplit("/", 1)[0]
    yield sqlalchemy_pg(f"{base}/{name}")
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def pg_url(pg_server_url: str) -> Iterator[str]:
    """The session's PostgreSQL database, emptied (downgraded to base) before each test."""
    db.downgrade(pg_server_url, "base")
    with psycopg.connect(pg_server_url.replace("+psycopg", ""), autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS alembic_version")
    yield pg_server_url


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'docsort.db'}"


@pytest.fixture(params=["sqlite", "postgres"])
def any_db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty database of each kind: the test runs once on SQLite and once on PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'docsort.db'}"
    return str(request.getfixturevalue("pg_url"))


@pytest.fixture
def migrated_db_url(any_db_url: str) -> str:
    db.upgrade(any_db_url)
    return any_db_url


@pytest.fixture(scope="session")
def redis_url() -> str:
    client = redis.Redis.from_url(REDIS_URL)
    client.ping()
    return REDIS_URL


@pytest.fixture
def unique_queue() -> str:
    """A queue name no other test (or concurrent test session) uses."""
    return f"docsort-test-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sqlite_url: str) -> Iterator[DocsortSettings]:
    """Settings pointing every directory into ``tmp_path`` and the database at a migrated SQLite file."""
    for key in list(os.environ):
        if key.startswith("DOCSORT_") and not key.startswith("DOCSORT_TEST_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("DOCSORT_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("DOCSORT_DATABASE_URL", sqlite_url)
    monkeypatch.setenv("DOCSORT_BROKER_URL", REDIS_URL)
    monkeypatch.chdir(tmp_path)
    get_settings.cache_clear()
    s = get_settings()
    s.ensure_dirs()
    db.upgrade(s.database_url)
    yield s
    get_settings.cache_clear()


@pytest.fixture(scope="session")
def artifacts_dir() -> Path:
    """Where tests save screenshots, plots and reports for a person to look at."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS
