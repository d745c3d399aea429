"""Server-side sessions: a copied cookie stops working after logout, a new password, or its expiry."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import subprocess
import sys
from datetime import timedelta

from fastapi.testclient import TestClient
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, sessionmaker

from review.app import SESSION_COOKIE, create_app
from review.settings import ReviewSettings
from schema.tables import Operator, OperatorSession
from tests.support.review import login, sessions_for
from tests.support.review_items import make_operator
from tests.support.serve_proc import post_login


def _copy(app: object, cookie: str) -> TestClient:
    """Another browser holding a copy of the session cookie."""
    thief = TestClient(app, follow_redirects=False)  # type: ignore[arg-type]
    thief.cookies.set(SESSION_COOKIE, cookie)
    return thief


def _session_rows(sessions: sessionmaker[Session]) -> int:
    with sessions() as s:
        return int(s.scalar(select(func.count(OperatorSession.id))) or 0)


def _docsort(settings: ReviewSettings, *args: str, stdin: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DOCSORT_DATABASE_URL": settings.database_url}
    return subprocess.run(
        [sys.executable, "-m", "docsort.cli", *args],
        input=stdin, capture_output=True, text=True, env=env, timeout=120,
    )  # fmt: skip


def test_a_copied_cookie_fails_after_logout(any_rsettings: ReviewSettings) -> None:
    sessions = sessions_for(any_rsettings)
    with sessions() as s:
        make_operator(s, "alice")
    app = create_app(any_rsettings)
    with TestClient(app, follow_redirects=False) as client:
        token = login(client, "alice")
        cookie = client.cookies[SESSION_COOKIE]
        with _copy(app, cookie) as thief:
            assert thief.get("/queue").status_code == 200
            assert client.post("/logout", data={"csrf_token": token}).status_code == 303
            assert thief.get("/queue").status_code == 303
    assert _session_rows(sessions) == 0


def test_a_copied_cookie_fails_after_operator_passwd(any_rsettings: ReviewSettings) -> None:
    sessions = sessions_for(any_rsettings)
    with sessions() as s:
        make_operator(s, "alice")
        make_operator(s, "bob")
    app = create_app(any_rsettings)
    with TestClient(app, follow_redirects=False) as alice, TestClient(app, follow_redirects=False) as bob:
        login(alice, "alice")
        login(bob, "bob")
        with _copy(app, alice.cookies[SESSION_COOKIE]) as thief:
            out = _docsort(
                any_rsettings, "operator", "passwd", "alice", "--password-stdin", stdin="new secret 123\n"
            )
            assert out.returncode == 0, out.stderr
            assert "every session ended" in out.stdout
            assert thief.get("/queue").status_code == 303
            assert alice.get("/queue").status_code == 303
        assert bob.get("/queue").status_code == 200  # another operator's session goes on
        assert post_login(alice, "alice", "new secret 123").status_code == 303
        assert alice.get("/queue").status_code == 200


def test_operator_passwd_refuses_an_unknown_name_and_a_short_password(rsettings: ReviewSettings) -> None:
    with sessions_for(rsettings)() as s:
        make_operator(s, "alice")
    unknown = _docsort(
        rsettings, "operator", "passwd", "mallory", "--password-stdin", stdin="long enough pw\n"
    )
    assert unknown.returncode == 2 and "no operator named 'mallory'" in unknown.stderr
    short = _docsort(rsettings, "operator", "passwd", "alice", "--password-stdin", stdin="short\n")
    assert short.returncode == 2 and "at least 8 characters" in short.stderr
    assert "Traceback" not in unknown.stderr + short.stderr


def test_an_expired_or_disabled_session_is_refused(rsettings: ReviewSettings) -> None:
    sessions = sessions_for(rsettings)
    with sessions() as s:
        alice = make_operator(s, "alice")
    with TestClient(create_app(rsettings), follow_redirects=False) as client:
        login(client, "alice")
        with sessions() as s:  # the session's time is over (the signed cookie alone would still be valid)
            s.execute(
                update(OperatorSession).values(expires_at=OperatorSession.expires_at - timedelta(days=1))
            )
            s.commit()
        assert client.get("/queue").status_code == 303
        login(client, "alice")
        with sessions() as s:
            s.execute(update(Operator).where(Operator.id == alice.id).values(active=False))
            s.commit()
        assert client.get("/queue").status_code == 303


def test_the_database_keeps_only_a_hash_of_the_session_token(rsettings: ReviewSettings) -> None:
    sessions = sessions_for(rsettings)
    with sessions() as s:
        make_operator(s, "alice")
    app = create_app(rsettings)
    with TestClient(app, follow_redirects=False) as client:
        login(client, "alice")
        cookie = client.cookies[SESSION_COOKIE]
    sid = json.loads(base64.b64decode(cookie.split(".")[0]))["sid"]  # Starlette's signed session cookie
    with sessions() as s:
        (stored,) = s.scalars(select(OperatorSession.token_hash)).all()
    assert stored == hashlib.sha256(sid.encode()).hexdigest() and sid != stored
    with _copy(app, cookie) as same:  # the cookie itself still works until logout
        assert same.get("/queue").status_code == 200
