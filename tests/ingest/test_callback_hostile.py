"""Callbacks aimed inside the network, through a real worker: loopback, link-local and names that resolve
to them are refused when the callback would be sent (no request made); a redirect is not followed; an
allowed network is reached, at the address that was checked, with the name kept in ``Host``."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from ipaddress import ip_network
from pathlib import Path

import pytest

from ingest.callback_target import check_target
from ingest.callbacks import post_callback
from ingest.intake import Intake
from ingest.settings import IngestSettings, get_ingest_settings
from ingest.staging import stage_copy
from schema.db import session_scope
from schema.tables import SubmissionJob
from tests.support.ingest import png_bytes, wait_until
from tests.support.intake import activate_tiny_model, close_intake, make_intake
from tests.support.worker_proc import StartWorker


@dataclass
class Listener:
    """An HTTP server on every local address; each request's path and Host header are kept."""

    port: int = 0
    hits: list[tuple[str, str]] = field(default_factory=list)


@pytest.fixture
def listener() -> Iterator[Listener]:
    rec = Listener()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers["Content-Length"]))
            rec.hits.append((self.path, self.headers.get("Host", "")))
            if self.path == "/redirect":
                self.send_response(302)
                self.send_header("Location", f"http://127.0.0.1:{rec.port}/private")
            else:
                self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("0.0.0.0", 0), Handler)
    rec.port = int(server.server_address[1])
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield rec
    server.shutdown()
    server.server_close()


@pytest.fixture
def guarded(ingest_settings: IngestSettings, monkeypatch: pytest.MonkeyPatch) -> IngestSettings:
    """Callbacks may reach public addresses and 127.0.0.2 only."""
    monkeypatch.setenv("DOCSORT_CALLBACK_ALLOWED_NETWORKS", "127.0.0.2/32")
    monkeypatch.setenv("DOCSORT_CALLBACK_MAX_RETRIES", "1")
    monkeypatch.setenv("DOCSORT_CALLBACK_BACKOFF_SECONDS", "0.2")
    get_ingest_settings.cache_clear()
    settings = get_ingest_settings()
    activate_tiny_model(settings)
    return settings


def _submit(intake: Intake, tmp_path: Path, seed: int, callback_url: str) -> str:
    src = tmp_path / "src" / f"p{seed}.png"
    src.parent.mkdir(parents=True, exist_ok=True)
    src.write_bytes(png_bytes(seed, grey=0))
    staged = [stage_copy(src, intake.area("api"))]
    return intake.take(staged, source="api", submitted_by="erp", callback_url=callback_url).job_id


def _state(intake: Intake, job_id: str) -> str | None:
    with session_scope(intake.sessions) as s:
        job = s.get(SubmissionJob, job_id)
        assert job is not None
        return job.callback_state


def test_callbacks_to_inner_addresses_are_refused_and_an_allowed_network_is_reached(
    guarded: IngestSettings, docsort_worker: StartWorker, listener: Listener, tmp_path: Path
) -> None:
    intake = make_intake(guarded)
    worker = docsort_worker(guarded, queue=guarded.job_queue)
    port = listener.port
    jobs = {
        "loopback": _submit(intake, tmp_path, 1, f"http://127.0.0.1:{port}/private"),
        "name": _submit(intake, tmp_path, 2, f"http://localhost:{port}/private"),
        "metadata": _submit(intake, tmp_path, 3, "http://169.254.169.254/latest/meta-data/"),
        "mapped": _submit(intake, tmp_path, 4, f"http://[::ffff:127.0.0.1]:{port}/private"),
        "redirect": _submit(intake, tmp_path, 5, f"http://127.0.0.2:{port}/redirect"),
        "allowed": _submit(intake, tmp_path, 6, f"http://127.0.0.2:{port}/ok"),
    }
    wait_until(lambda: _state(intake, jobs["allowed"]) == "delivered", 60, what="the allowed callback")
    for what in ("loopback", "name", "metadata", "mapped", "redirect"):
        wait_until(lambda w=what: _state(intake, jobs[w]) == "failed", 60, what=f"{what} callback failed")
    assert worker.log().count("refused:") >= 4
    assert "/private" not in [path for path, _host in listener.hits]  # no request ever reached it
    assert sorted(path for path, _host in listener.hits) == ["/ok", "/redirect"]  # the 302 was final
    close_intake(intake)


def test_the_checked_address_is_the_one_connected_to_with_the_name_kept(listener: Listener) -> None:
    allowed = [ip_network("127.0.0.0/8"), ip_network("::1/128")]
    target = check_target(f"http://localhost:{listener.port}/hook", allowed)
    assert {u.host for u in target.urls} <= {"127.0.0.1", "::1"} and target.headers == {
        "Host": f"localhost:{listener.port}"
    }
    delivered, _retry, what = post_callback(
        f"http://localhost:{listener.port}/hook", b"{}", "secret", "job", 10.0, allowed
    )
    assert delivered, what
    assert listener.hits == [("/hook", f"localhost:{listener.port}")]
    refused, retry, what = post_callback(
        f"http://localhost:{listener.port}/hook", b"{}", "s", "job", 10.0, []
    )
    assert not refused and not retry and what.startswith("refused:") and len(listener.hits) == 1
