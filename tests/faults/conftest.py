"""Fixtures of the fault-injection suite: a clean environment, a migrated PostgreSQL database, and the
real-worker launcher shared with the other suites."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
import redis

from schema import db
from tests.support.worker_proc import docsort_worker  # noqa: F401  (the fixture, for this suite)


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No DOCSORT_* setting of the calling shell leaks into a test (the worker gets the test's own)."""
    for key in list(os.environ):
        if key.startswith("DOCSORT_") and not key.startswith("DOCSORT_TEST_"):
            monkeypatch.delenv(key)


@pytest.fixture
def pg_db_url(pg_url: str) -> str:
    """The session's database on the shared PostgreSQL server, emptied and migrated."""
    db.upgrade(pg_url)
    return pg_url


@pytest.fixture
def shared_queue(unique_queue: str, redis_url: str) -> Iterator[str]:
    """A unique queue on the shared Redis; its keys are removed at the end."""
    yield unique_queue
    client = redis.Redis.from_url(redis_url)
    try:
        client.delete(
            unique_queue,
            f"_kombu.binding.{unique_queue}",
            f"{unique_queue}.unacked",
            f"{unique_queue}.unacked_index",
            f"{unique_queue}.unacked_mutex",
        )
    finally:
        client.close()
