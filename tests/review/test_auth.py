"""Login, sessions and CSRF: nothing of the review page without an operator, no form without its token."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from review.errors import OperatorError
from review.security import create_operator
from review.settings import ReviewSettings
from schema.tables import Operator, Review
from tests.support.review import csrf_of, login
from tests.support.review_items import PASSWORD, make_item, make_operator

PAGES = [
    "/",
    "/queue",
    "/queue?class=invoice",
    "/items/{id}",
    "/items/{id}/page.png",
    "/items/{id}/cam.png",
    "/dashboard",
    "/dashboard/plots/throughput.svg",
]


def test_every_page_without_a_session_redirects_to_login(
    client: TestClient, sessions: sessionmaker[Session], rsettings: ReviewSettings
) -> None:
    with sessions() as s:
        item = make_item(s, rsettings)
    for page in PAGES:
        path = page.format(id=item.prediction_id)
        response = client.get(path)
        assert response.status_code == 303, path
        assert response.headers["location"].startswith("/login?next="), path
    assert client.get("/login").status_code == 200


def test_login_refuses_a_wrong_password_and_an_unknown_name(
    client: TestClient, sessions: sessionmaker[Session]
) -> None:
    with sessions() as s:
        make_operator(s, "alice")
    for name, password in [("alice", "wrong password"), ("mallory", PASSWORD)]:
        token = csrf_of(client.get("/login").text)
        response = client.post("/login", data={"name": name, "password": password, "csrf_token": token})
        assert response.status_code == 401
        assert "Unknown name or wrong password" in response.text
    assert client.get("/queue").status_code == 303


def test_password_is_stored_as_an_argon2_hash(sessions: sessionmaker[Session]) -> None:
    with sessions() as s:
        operator = make_operator(s, "alice")
        assert operator.password_hash.startswith("$argon2id$")
        assert PASSWORD not in operator.password_hash


def test_operator_refuses_a_short_password_and_a_taken_name(sessions: sessionmaker[Session]) -> None:
    with sessions() as s:
        with pytest.raises(OperatorError, match="at least 8 characters"):
            create_operator(s, "bob", "short")
        make_operator(s, "alice")
        with pytest.raises(OperatorError, match="exists already"):
            create_operator(s, "alice", "another password")
        assert s.scalar(select(func.count(Operator.id))) == 1


def test_login_then_logout_ends_the_session(client: TestClient, sessions: sessionmaker[Session]) -> None:
    with sessions() as s:
        make_operator(s, "alice")
    token = login(client, "alice")
    assert "alice" in client.get("/queue").text
    assert client.post("/logout", data={"csrf_token": token}).status_code == 303
    assert client.get("/queue").status_code == 303


def test_disabled_operator_loses_access_at_the_next_request(
    client: TestClient, sessions: sessionmaker[Session]
) -> None:
    with sessions() as s:
        operator = make_operator(s, "alice")
    login(client, "alice")
    with sessions() as s:
        s.get(Operator, operator.id).active = False  # type: ignore[union-attr]
        s.commit()
    assert client.get("/queue").status_code == 303


def test_login_next_cannot_send_the_operator_to_another_site(
    client: TestClient, sessions: sessionmaker[Session]
) -> None:
    with sessions() as s:
        make_operator(s, "alice")
    for target in ["//evil.example/x", "https://evil.example/", "/\\evil.example"]:
        token = csrf_of(client.get("/login").text)
        response = client.post(
            "/login", data={"name": "alice", "password": PASSWORD, "next": target, "csrf_token": token}
        )
        assert response.headers["location"] == "/queue", target


def test_form_without_its_csrf_token_is_refused(
    client: TestClient, sessions: sessionmaker[Session], rsettings: ReviewSettings
) -> None:
    with sessions() as s:
        make_operator(s, "alice")
        item = make_item(s, rsettings)
    token = login(client, "alice")
    assert client.get(f"/items/{item.prediction_id}").status_code == 200
    decide = f"/items/{item.prediction_id}/decide"
    for data in [
        {"label": "letter", "action": "decide"},
        {"label": "letter", "action": "decide", "csrf_token": ""},
        {"label": "letter", "action": "decide", "csrf_token": token[:-2] + "xx"},
    ]:
        response = client.post(decide, data=data)
        assert response.status_code == 403
        assert "Form refused" in response.text
    assert client.post("/logout", data={}).status_code == 403
    assert client.post(f"/items/{item.prediction_id}/release", data={"next": "/queue"}).status_code == 403
    with sessions() as s:
        assert s.scalar(select(func.count(Review.id))) == 0
    assert client.get("/queue").status_code == 200  # still logged in: the refused logout did nothing


def test_login_form_without_csrf_token_is_refused(
    client: TestClient, sessions: sessionmaker[Session]
) -> None:
    with sessions() as s:
        make_operator(s, "alice")
    client.get("/login")
    response = client.post("/login", data={"name": "alice", "password": PASSWORD})
    assert response.status_code == 403
    assert client.get("/queue").status_code == 303


def test_token_of_another_session_is_refused(
    app: object, client: TestClient, sessions: sessionmaker[Session], rsettings: ReviewSettings
) -> None:
    with sessions() as s:
        make_operator(s, "alice")
        make_operator(s, "bob")
        item = make_item(s, rsettings)
    alice_token = login(client, "alice")
    with TestClient(app, follow_redirects=False) as bob:  # type: ignore[arg-type]
        bob_token = login(bob, "bob")
        assert bob_token != alice_token
        data = {"label": "letter", "action": "decide", "csrf_token": alice_token}
        assert bob.post(f"/items/{item.prediction_id}/decide", data=data).status_code == 403


def test_operator_pages_forbid_framing_and_foreign_scripts(client: TestClient) -> None:
    headers = client.get("/login").headers
    assert headers["x-frame-options"] == "DENY"
    assert "script-src 'self'" in headers["content-security-policy"]
    assert "frame-ancestors 'none'" in headers["content-security-policy"]
