"""The review web app under test: database sessions, login with CSRF, a live server on a free port."""

from __future__ import annotations

import re
import socket
import threading
import time

import httpx
import uvicorn
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from schema import db
from schema.settings import DocsortSettings
from tests.support.review_items import PASSWORD

CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_of(html: str) -> str:
    found = CSRF_RE.search(html)
    assert found, "the page carries no CSRF token"
    return found.group(1)


def sessions_for(settings: DocsortSettings) -> sessionmaker[Session]:
    return db.make_sessionmaker(db.make_engine(settings.database_url))


def login(client: TestClient | httpx.Client, name: str, password: str = PASSWORD) -> str:
    """Log ``client`` in as ``name``; returns the session's CSRF token."""
    page = client.get("/login")
    assert page.status_code == 200
    response = client.post(
        "/login",
        data={"name": name, "password": password, "next": "/queue", "csrf_token": csrf_of(page.text)},
    )
    assert response.status_code == 303, response.text
    queue = client.get("/queue")
    assert queue.status_code == 200
    return csrf_of(queue.text)


class LiveServer:
    """A real uvicorn server for the app, in a thread, on a free 127.0.0.1 port."""

    def __init__(self, app: FastAPI) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(app, log_level="warning", lifespan="off", timeout_graceful_shutdown=2)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)

    def __enter__(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 15
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self.sock.close()
