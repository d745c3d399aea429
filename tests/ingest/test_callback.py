"""Job callbacks through a real `docsort worker`: signed with the client's secret, retried with backoff,
and a final answer recorded on the job. A tiny HTTP receiver on 127.0.0.1 checks each signature."""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from ingest.api_keys import create_client
from ingest.intake import Intake
from ingest.settings import IngestSettings, get_ingest_settings
from ingest.signing import SIGNATURE_HEADER, callback_secret, sign_body, verify_signature
from ingest.staging import stage_copy
from schema.db import session_scope
from schema.tables import SubmissionJob
from tests.support.ingest import png_bytes, wait_until
from tests.support.intake import activate_tiny_model, close_intake, make_intake
from tests.support.worker_proc import StartWorker


@dataclass
class Hit:
    path: str
    at: float
    body: bytes
    signature: str | None


@dataclass
class Receiver:
    """Answers each path with its scripted statuses in turn (the last one repeats)."""

    url: str
    script: dict[str, list[int]]
    hits: list[Hit] = field(default_factory=list)

    def of(self, path: str) -> list[Hit]:
        return [h for h in self.hits if h.path == path]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    rec = Receiver("", {})
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            with lock:
                rec.hits.append(Hit(self.path, time.monotonic(), body, self.headers.get(SIGNATURE_HEADER)))
                statuses = rec.script.get(self.path, [200])
                status = statuses.pop(0) if len(statuses) > 1 else statuses[0]
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    rec.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield rec
    server.shutdown()
    server.server_close()


@pytest.fixture
def cb_settings(ingest_settings: IngestSettings, monkeypatch: pytest.MonkeyPatch) -> IngestSettings:
    monkeypatch.setenv("DOCSORT_CALLBACK_BACKOFF_SECONDS", "0.5")
    monkeypatch.setenv("DOCSORT_CALLBACK_MAX_RETRIES", "2")
    monkeypatch.setenv("DOCSORT_CALLBACK_ALLOWED_NETWORKS", "127.0.0.0/8")  # the receiver is local
    get_ingest_settings.cache_clear()
    settings = get_ingest_settings()
    activate_tiny_model(settings)
    return settings


def _submit(intake: Intake, tmp_path: Path, seed: int, callback_url: str, client_id: int | None) -> str:
    src = tmp_path / "src" / f"p{seed}.png"
    src.parent.mkdir(parents=True, exist_ok=True)
    src.write_bytes(png_bytes(seed, grey=0))
    staged = [stage_copy(src, intake.area("api"))]
    result = intake.take(
        staged, source="api", submitted_by="erp", client_id=client_id, callback_url=callback_url
    )
    return result.job_id


def _callback_state(intake: Intake, job_id: str) -> str | None:
    with session_scope(intake.sessions) as s:
        job = s.get(SubmissionJob, job_id)
        assert job is not None
        return job.callback_state


def test_callback_is_signed_with_the_clients_secret_retried_with_backoff_and_recorded(
    cb_settings: IngestSettings, docsort_worker: StartWorker, receiver: Receiver, tmp_path: Path
) -> None:
    intake = make_intake(cb_settings)
    with session_scope(intake.sessions) as s:
        client, _key = create_client(s, "erp")
        client_id = client.id
    receiver.script = {"/flaky": [503, 500, 200], "/gone": [404], "/down": [502]}
    worker = docsort_worker(cb_settings, queue=cb_settings.job_queue)
    flaky = _submit(intake, tmp_path, 1, receiver.url + "/flaky", client_id)
    gone = _submit(intake, tmp_path, 2, receiver.url + "/gone", client_id)
    down = _submit(intake, tmp_path, 3, receiver.url + "/down", None)

    wait_until(lambda: _callback_state(intake, flaky) == "delivered", 60, what="flaky callback delivered")
    wait_until(lambda: _callback_state(intake, gone) == "failed", 30, what="404 callback failed")
    wait_until(lambda: _callback_state(intake, down) == "failed", 60, what="down callback failed")
    assert worker.alive()

    secret = callback_secret(cb_settings.secret_key, "erp")
    hits = receiver.of("/flaky")
    assert len(hits) == 3
    assert all(verify_signature(secret, h.body, h.signature) for h in hits)
    assert not verify_signature(
        callback_secret(cb_settings.secret_key, ""), hits[-1].body, hits[-1].signature
    )
    assert not verify_signature(secret, hits[-1].body + b" ", hits[-1].signature)
    gaps = [b.at - a.at for a, b in itertools.pairwise(hits)]
    assert gaps[0] >= 0.4 and gaps[1] >= 0.9, gaps  # 0.5 s, then 1 s: exponential backoff

    payload = json.loads(hits[-1].body)
    assert payload["event"] == "job.finished" and payload["job_id"] == flaky
    assert payload["state"] == "done"
    assert [(p["page"], p["status"], p["label"], p["decision"]) for p in payload["pages"]] == [
        (1, "ok", "dark", "auto")
    ]
    (document,) = payload["documents"]  # the same per-document list as GET /v1/jobs/{id}
    assert (document["pages"], document["label"], document["outcome"]) == ([1], "dark", "auto")
    assert document["delivered"] and document["delivered"].endswith(".png")
    assert len(receiver.of("/gone")) == 1  # a 404 is final: no retry
    down_hits = receiver.of("/down")
    assert len(down_hits) == 3  # the first attempt and two retries, then given up
    assert all(
        h.signature == sign_body(callback_secret(cb_settings.secret_key, ""), h.body) for h in down_hits
    )
    close_intake(intake)
