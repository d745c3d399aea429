"""Login throttling: failed logins lock the name and the address, counted in the database (SQLite and
PostgreSQL), so that the right password is refused during a lockout and parallel tries cannot race it."""

from __future__ import annotations

import threading
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from fastapi.testclient import TestClient
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from review.app import create_app
from review.settings import ReviewSettings
from review.throttle import ThrottleRules, address_key, lock_end
from schema.tables import LoginAttempt, LoginOutcome
from tests.support.review import LiveServer, sessions_for
from tests.support.review_items import PASSWORD, make_operator
from tests.support.serve_proc import post_login


def _settings(base: ReviewSettings, **changes: Any) -> ReviewSettings:
    return base.model_copy(update=changes)


def _outcomes(sessions: sessionmaker[Session]) -> Counter[str]:
    with sessions() as s:
        return Counter(str(o) for o in s.scalars(select(LoginAttempt.outcome)))


def test_fifty_wrong_passwords_lock_the_name_and_then_the_right_one_is_refused(
    any_rsettings: ReviewSettings,
) -> None:
    sessions = sessions_for(any_rsettings)
    with sessions() as s:
        make_operator(s, "alice")
    with TestClient(create_app(any_rsettings), follow_redirects=False) as client:
        codes = [post_login(client, "alice", f"wrong password {i}").status_code for i in range(50)]
        assert codes == [401] * 5 + [429] * 45
        right = post_login(client, "alice", PASSWORD)
        assert right.status_code == 429
        assert "Too many failed logins" in right.text and "even with the right password" in right.text
        assert 14 * 60 < int(right.headers["retry-after"]) <= 15 * 60
        assert client.get("/queue").status_code == 303  # not logged in
    assert _outcomes(sessions) == {"failed": 5, "locked": 46}  # 5 passwords checked, no more


def test_lockout_ends_after_its_time_and_a_success_clears_the_count(any_rsettings: ReviewSettings) -> None:
    sessions = sessions_for(any_rsettings)
    with sessions() as s:
        make_operator(s, "alice")
    with TestClient(create_app(any_rsettings), follow_redirects=False) as client:
        for _ in range(5):
            post_login(client, "alice", "wrong password")
        assert post_login(client, "alice", PASSWORD).status_code == 429
        with sessions() as s:  # 16 minutes pass
            s.execute(update(LoginAttempt).values(at=LoginAttempt.at - timedelta(minutes=16)))
            s.commit()
        assert post_login(client, "alice", PASSWORD).status_code == 303
        for _ in range(4):  # the count started again at the success
            assert post_login(client, "alice", "wrong password").status_code == 401
        assert post_login(client, "alice", PASSWORD).status_code == 303


def test_an_address_trying_many_names_is_locked_but_others_are_not(any_rsettings: ReviewSettings) -> None:
    settings = _settings(any_rsettings, review_login_max_failures_per_address=6)
    with sessions_for(settings)() as s:
        make_operator(s, "alice")
    app = create_app(settings)
    with TestClient(app, follow_redirects=False, client=("203.0.113.7", 40000)) as sprayer:
        for i in range(6):
            assert post_login(sprayer, f"user{i}", "wrong password").status_code == 401
        assert post_login(sprayer, "alice", PASSWORD).status_code == 429
    with TestClient(app, follow_redirects=False, client=("198.51.100.9", 40000)) as colleague:
        assert post_login(colleague, "alice", PASSWORD).status_code == 303


def test_two_server_processes_count_the_same_failures(any_rsettings: ReviewSettings) -> None:
    """Two apps with their own engines stand for two `docsort serve` processes on one database."""
    with sessions_for(any_rsettings)() as s:
        make_operator(s, "alice")
    with (
        TestClient(create_app(any_rsettings), follow_redirects=False) as first,
        TestClient(create_app(any_rsettings), follow_redirects=False) as second,
    ):
        for client in (first, second, first, second, first):
            assert post_login(client, "alice", "wrong password").status_code == 401
        assert post_login(second, "alice", PASSWORD).status_code == 429
        assert post_login(first, "alice", PASSWORD).status_code == 429


def test_parallel_wrong_passwords_get_no_more_checks_than_the_limit(any_rsettings: ReviewSettings) -> None:
    sessions = sessions_for(any_rsettings)
    with sessions() as s:
        make_operator(s, "alice")
    codes: list[int] = []
    with LiveServer(create_app(any_rsettings)) as server:
        start = threading.Barrier(20)

        def attack(i: int) -> None:
            with httpx.Client(base_url=server.url, timeout=120) as client:
                start.wait()
                codes.append(post_login(client, "alice", f"guess {i}").status_code)

        threads = [threading.Thread(target=attack, args=(i,)) for i in range(20)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        during = _outcomes(sessions)
        with httpx.Client(base_url=server.url, timeout=60) as client:
            # tries that raced were refused unchecked: they leave the rest of the count to later tries
            later = [post_login(client, "alice", "wrong password").status_code for _ in range(6)]
            assert post_login(client, "alice", PASSWORD).status_code == 429
    assert during["failed"] <= 5 and during["pending"] == 0, during  # no more checks than the limit
    assert codes.count(401) == during["failed"] and codes.count(429) == 20 - during["failed"]
    assert later == [401] * (5 - during["failed"]) + [429] * (1 + during["failed"])
    assert _outcomes(sessions)["failed"] == 5


def test_failures_spread_wider_than_the_window_do_not_lock() -> None:
    rules = ThrottleRules(5, 20, window=timedelta(minutes=15), lockout=timedelta(minutes=15))
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    spread = [(t0 + timedelta(minutes=4 * i), LoginOutcome.failed) for i in range(6)]
    assert lock_end(spread, rules, 5, success_clears=True) is None
    close = [(t0 + timedelta(minutes=3 * i), LoginOutcome.failed) for i in range(5)]
    assert lock_end(close, rules, 5, success_clears=True) == t0 + timedelta(minutes=12 + 15)
    cleared = [*close[:4], (t0 + timedelta(minutes=10), LoginOutcome.ok), close[4]]
    assert lock_end(cleared, rules, 5, success_clears=True) is None
    assert lock_end(cleared, rules, 5, success_clears=False) is not None


def test_an_ipv6_client_is_throttled_by_its_64_network() -> None:
    assert address_key("2001:db8:1:2::1") == address_key("2001:db8:1:2:ffff::9") == "2001:db8:1:2::/64"
    assert address_key("2001:db8:1:3::1") != address_key("2001:db8:1:2::1")
    assert address_key("::ffff:192.0.2.1") == address_key("192.0.2.1") == "192.0.2.1"
    assert address_key(None) == "unknown"
