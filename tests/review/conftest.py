"""Fixtures of the review suite: the app on a migrated database, logged-in clients, a real uvicorn server."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from playwright.sync_api import Browser, sync_playwright
from sqlalchemy.orm import Session, sessionmaker

from review.app import create_app
from review.settings import ReviewSettings, review_settings
from schema import db
from schema.settings import DocsortSettings
from tests.support.browser import CHROMIUM
from tests.support.review import LiveServer, sessions_for


@pytest.fixture
def rsettings(settings: DocsortSettings) -> ReviewSettings:
    """Review settings on the ``settings`` fixture's migrated SQLite database and tmp directories, with
    no undo window (answers delivered at once); the undo tests set one."""
    return _delivered_at_once(review_settings(settings))


def _delivered_at_once(settings: ReviewSettings) -> ReviewSettings:
    return settings.model_copy(update={"review_undo_seconds": 0})


@pytest.fixture(params=["sqlite", "postgres"])
def any_rsettings(request: pytest.FixtureRequest, settings: DocsortSettings) -> ReviewSettings:
    """The review settings once on SQLite and once on PostgreSQL (migrated), with no undo window."""
    if request.param == "sqlite":
        return _delivered_at_once(review_settings(settings))
    url = str(request.getfixturevalue("pg_url"))
    db.upgrade(url)
    return _delivered_at_once(review_settings(settings.model_copy(update={"database_url": url})))


@pytest.fixture
def sessions(rsettings: ReviewSettings) -> sessionmaker[Session]:
    return sessions_for(rsettings)


@pytest.fixture
def app(rsettings: ReviewSettings) -> FastAPI:
    return create_app(rsettings)


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app, follow_redirects=False) as c:
        yield c


@pytest.fixture
def live_server(app: FastAPI) -> Iterator[LiveServer]:
    with LiveServer(app) as server:
        yield server


@pytest.fixture
def review_dir(rsettings: ReviewSettings) -> Path:
    return rsettings.dir("review")


@pytest.fixture(scope="module")
def chromium() -> Iterator[Browser]:
    """Headless Chromium for the browser tests of one module."""
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is not installed (apt-get install chromium)")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True)
        yield browser
        browser.close()
