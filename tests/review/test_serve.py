"""``docsort serve`` as a real process under a hostile client: an error costs its request only, parallel
logins are bounded in memory, and SIGTERM stops the server even with a request hanging."""

from __future__ import annotations

import json
import signal
import socket
import sqlite3
import threading
import time
from pathlib import Path

import httpx
from sqlalchemy.orm import Session, sessionmaker

from review.settings import ReviewSettings
from tests.support.review_items import PASSWORD, make_operator
from tests.support.serve_proc import ServeProcess, post_login

ARGON2_MIB = 64  # memory of one password check (argon2-cffi's default)
NO_THROTTLE = {
    "DOCSORT_REVIEW_LOGIN_MAX_FAILURES": "1000",
    "DOCSORT_REVIEW_LOGIN_MAX_FAILURES_PER_ADDRESS": "10000",
}


def _break_the_queue_and_ask(server: ServeProcess, rsettings: ReviewSettings) -> tuple[int, float]:
    """Log in, make the queue's table disappear, load the queue (a real 500); then how long the next
    request waited."""
    with httpx.Client(base_url=server.url, timeout=60) as client:
        assert post_login(client, "alice", PASSWORD).status_code == 303
        with sqlite3.connect(rsettings.database_url.removeprefix("sqlite:///")) as db:
            db.execute("ALTER TABLE predictions RENAME TO predictions_gone")
        status = client.get("/queue").status_code
    start = time.monotonic()
    assert httpx.get(server.url + "/login", timeout=60).status_code == 200
    return status, time.monotonic() - start


def test_a_server_error_is_logged_once_in_plain_text_and_holds_no_other_request(
    rsettings: ReviewSettings, sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    with sessions() as s:
        make_operator(s, "alice")
    with ServeProcess(tmp_path / "serve.log") as server:
        with httpx.Client(base_url=server.url, timeout=60) as client:  # a name written to forge log lines
            post_login(client, "mallory\n2026-01-01 [info     ] login operator=admin\u202e", "wrong password")
        status, wait = _break_the_queue_and_ask(server, rsettings)
        time.sleep(0.5)
        log = server.log()
    assert status == 500
    assert wait < 2.0, f"the next request waited {wait:.1f}s"  # 8.2 s with the traceback's locals rendered
    assert log.count("[error") == 1 and log.count("Exception in ASGI application") == 1  # logged once
    assert "Traceback (most recent call last)" in log
    assert "no such table: predictions" in log and "╭" not in log  # plain, without local variables
    (refused,) = [line for line in log.splitlines() if "login.refused" in line]
    assert "mallory\\" in refused and "admin\\" in refused  # the newline and the override escaped
    assert not any(line.startswith("2026-01-01") for line in log.splitlines()) and "\u202e" not in log


def test_json_logs_keep_the_traceback(
    rsettings: ReviewSettings, sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    with sessions() as s:
        make_operator(s, "alice")
    with ServeProcess(tmp_path / "serve.log", DOCSORT_LOG_FORMAT="json") as server:
        status, _ = _break_the_queue_and_ask(server, rsettings)
        time.sleep(0.5)
        lines = [json.loads(line) for line in server.log().splitlines() if line.startswith("{")]
    assert status == 500
    errors = [r for r in lines if r.get("level") == "error"]
    assert len(errors) == 1, errors
    assert errors[0]["exception"].startswith("Traceback (most recent call last)")
    assert "no such table: predictions" in errors[0]["exception"]


def test_parallel_logins_hold_the_memory_of_two_password_checks_not_forty(
    sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    with sessions() as s:
        make_operator(s, "alice")
    env = {"DOCSORT_REVIEW_HASH_CONCURRENCY": "2", **NO_THROTTLE}
    with ServeProcess(tmp_path / "serve.log", **env) as server:
        with httpx.Client(base_url=server.url, timeout=60) as client:
            assert post_login(client, "alice", PASSWORD).status_code == 303  # warm
        server.reset_peak_memory()
        before = server.memory_mib("VmHWM")
        finished: list[tuple[float, int]] = []
        start = threading.Barrier(41)

        def log_in() -> None:
            with httpx.Client(base_url=server.url, timeout=300) as client:
                start.wait()
                status = post_login(client, "alice", PASSWORD).status_code
                finished.append((time.monotonic(), status))

        threads = [threading.Thread(target=log_in) for _ in range(40)]
        for t in threads:
            t.start()
        start.wait()
        time.sleep(0.3)
        assert httpx.get(server.url + "/login", timeout=60).status_code == 200
        page_served = time.monotonic()
        for t in threads:
            t.join()
        peak = server.memory_mib("VmHWM")
    assert [status for _, status in finished] == [303] * 40
    assert page_served < max(at for at, _ in finished)  # the page did not wait for the logins
    # unbounded (40 checks at once) the peak grew by 897-955 MiB here
    assert peak - before <= 3 * ARGON2_MIB, f"peak grew by {peak - before} MiB"


def test_sigterm_stops_the_server_while_a_request_hangs(rsettings: ReviewSettings, tmp_path: Path) -> None:
    with ServeProcess(tmp_path / "serve.log", DOCSORT_REVIEW_SHUTDOWN_SECONDS="2") as server:
        hanging = socket.create_connection(("127.0.0.1", server.port))
        hanging.sendall(  # a form announced at 1000 bytes, of which 6 ever come
            b"POST /login HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n"
            b"Content-Length: 1000\r\n\r\nname=a"
        )
        idle = httpx.Client(base_url=server.url)  # a browser's keep-alive connection
        assert idle.get("/login").status_code == 200
        time.sleep(0.5)
        assert server.proc is not None
        start = time.monotonic()
        server.proc.send_signal(signal.SIGTERM)
        server.proc.wait(timeout=30)  # before: still running after 70 s
        took = time.monotonic() - start
        hanging.close()
        idle.close()
        log = server.log()
    assert took < 10, f"stopped after {took:.1f}s"
    assert "timeout graceful shutdown exceeded" in log and "Finished server process" in log
