"""Bad requests are answered as such (400, 404, 414), on SQLite and PostgreSQL, never with a 500."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from review.app import create_app
from review.settings import ReviewSettings
from schema.tables import LoginAttempt, Review
from tests.support.review import csrf_of, login, sessions_for
from tests.support.review_items import PASSWORD, make_item, make_operator
from tests.support.serve_proc import post_login

BAD_ADDRESSES = [
    ("/items/99999999999999999999", 404),  # beyond any row id (overflowed the driver)
    ("/items/0", 404),
    ("/items/99999999999999999999/page.png", 404),
    ("/items/%00", 400),
    ("/items/1%00", 400),
    ("/static/review.css%00", 400),
    ("/dashboard/plots/%00.svg", 400),
    ("/queue?class=%00", 400),
    ("/queue?class=invoice%00x", 400),
    ("/queue?page=99999999999999999999", 400),
    ("/dashboard?hours=99999999999999999999", 400),
    ("/items/" + "9" * 5000, 414),
    ("/static/" + "a" * 5000, 414),
]


@pytest.fixture
def logged_in(any_rsettings: ReviewSettings) -> Iterator[TestClient]:
    with sessions_for(any_rsettings)() as s:
        make_operator(s, "alice")
    with TestClient(create_app(any_rsettings), follow_redirects=False) as client:
        login(client, "alice")
        yield client


def test_bad_ids_nul_characters_and_long_paths_are_client_errors(logged_in: TestClient) -> None:
    for path, status in BAD_ADDRESSES:
        assert logged_in.get(path).status_code == status, path
    assert logged_in.get("/queue").status_code == 200  # the session goes on


def test_a_nul_character_in_a_form_field_is_a_bad_request(
    logged_in: TestClient, any_rsettings: ReviewSettings
) -> None:
    with sessions_for(any_rsettings)() as s:
        item = make_item(s, any_rsettings)
    token = csrf_of(logged_in.get("/queue").text)
    decide = f"/items/{item.prediction_id}/decide"
    for data in [
        {"label": "invoice\x00", "action": "decide"},
        {"label": "invoice", "action": "decide", "note": "see\x00page 2"},
        {"label": "invoice", "action": "decide\x00"},
    ]:
        response = logged_in.post(decide, data={**data, "csrf_token": token})
        assert response.status_code == 400, data
        assert "NUL" in response.text
    with sessions_for(any_rsettings)() as s:
        assert s.scalar(select(func.count(Review.id))) == 0
    big = logged_in.post("/items/99999999999999999999/decide", data={"csrf_token": token, "label": "invoice"})
    assert big.status_code == 404


def test_a_nul_character_in_the_login_name_is_refused_before_the_database(
    any_rsettings: ReviewSettings,
) -> None:
    sessions = sessions_for(any_rsettings)
    with sessions() as s:
        make_operator(s, "alice")
    with TestClient(create_app(any_rsettings), follow_redirects=False) as client:
        assert post_login(client, "al\x00ice", PASSWORD).status_code == 400
        assert post_login(client, "alice", "pass\x00word").status_code == 400
        assert post_login(client, "alice", PASSWORD).status_code == 303
    with sessions() as s:
        assert s.scalar(select(func.count(LoginAttempt.id))) == 1  # only the real one counted


def test_an_invalid_value_gets_a_page_that_names_it(logged_in: TestClient) -> None:
    response = logged_in.get("/queue?page=0")
    assert response.status_code == 400
    assert response.headers["content-type"].startswith("text/html")
    assert "Invalid value for: page" in response.text
