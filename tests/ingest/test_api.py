"""The jobs API over a real uvicorn server: keys, limits, the shared root, jobs and documents."""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import redis
import uvicorn
from sqlalchemy import func, select

from docsort.serve import create_app
from ingest.api_keys import create_client, revoke_client
from ingest.settings import IngestSettings, get_ingest_settings
from schema import db
from schema.tables import ApiClient, Document, SubmissionJob
from tests.support.ingest import png_bytes, queued_document_ids

LIMIT = 64 * 1024
MAX_FILES = 4


@dataclass
class Api:
    url: str
    key: str
    other_key: str
    settings: IngestSettings
    shared: Path
    sessions: db.sessionmaker[db.Session]

    def client(self, key: str | None = None) -> httpx.Client:
        headers = {"X-API-Key": key if key is not None else self.key}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def api(
    any_ingest_settings: IngestSettings, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Iterator[Api]:
    shared = tmp_path / "shared"
    shared.mkdir()
    monkeypatch.setenv("DOCSORT_SHARED_ROOT", str(shared))
    monkeypatch.setenv("DOCSORT_API_MAX_UPLOAD_BYTES", str(LIMIT))
    monkeypatch.setenv("DOCSORT_API_MAX_FILES", str(MAX_FILES))
    get_ingest_settings.cache_clear()
    settings = get_ingest_settings()
    sessions = db.make_sessionmaker(db.make_engine(settings.database_url))
    with db.session_scope(sessions) as s:
        _c, key = create_client(s, "erp")
        _o, other = create_client(s, "other")
    port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    yield Api(f"http://127.0.0.1:{port}", key, other, settings, shared, sessions)
    server.should_exit = True
    thread.join(10)
    sessions.kw["bind"].dispose()


def _count(api: Api, model: type) -> int:
    with db.session_scope(api.sessions) as s:
        return int(s.scalar(select(func.count()).select_from(model)) or 0)


def _api_area(api: Api) -> list[Path]:
    area = api.settings.dir("processing") / "api"
    return [p for p in area.rglob("*") if p.is_file()] if area.exists() else []


def test_every_route_answers_401_without_a_valid_key(api: Api) -> None:
    routes = [("POST", "/v1/jobs"), ("GET", "/v1/jobs/some-id"), ("GET", "/v1/documents/1")]
    with db.session_scope(api.sessions) as s:
        revoke_client(s, "other")
    for key in (None, "", "dsk_00000000_not-a-key", api.key[:-1] + "x", api.other_key):
        headers = {} if key is None else {"X-API-Key": key}
        for method, path in routes:
            r = httpx.request(method, api.url + path, headers=headers, files={"files": ("a.png", b"x")})
            assert r.status_code == 401, (key, method, path, r.text)
            assert r.headers["www-authenticate"].startswith("Bearer")
    assert _count(api, SubmissionJob) == 0


def test_key_is_accepted_as_bearer_token_and_only_its_hash_is_stored(api: Api) -> None:
    r = httpx.get(api.url + "/v1/jobs/none", headers={"Authorization": f"Bearer {api.key}"})
    assert r.status_code == 404
    with db.session_scope(api.sessions) as s:
        stored = s.scalar(select(ApiClient).where(ApiClient.name == "erp"))
        assert stored is not None
        assert api.key not in (stored.key_hash, stored.key_prefix)
        assert stored.key_hash.startswith("sha256:") and api.key.startswith(stored.key_prefix)


def test_upload_over_the_size_limit_is_refused_413_and_leaves_nothing(api: Api) -> None:
    big = os.urandom(LIMIT + 1024)
    with api.client() as c:
        r = c.post("/v1/jobs", files={"files": ("big.png", big, "image/png")})
    assert r.status_code == 413, r.text
    assert _count(api, Document) == 0 and _count(api, SubmissionJob) == 0
    assert _api_area(api) == []


def test_chunked_upload_without_length_is_cut_off_at_the_limit_with_413(api: Api) -> None:
    boundary = "docsortboundary"
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="files"; filename="big.png"\r\n'
        "Content-Type: image/png\r\n\r\n"
    ).encode()

    def body() -> Iterator[bytes]:
        yield head
        for _ in range(LIMIT // 4096 + 8):
            yield os.urandom(4096)
        yield f"\r\n--{boundary}--\r\n".encode()

    with api.client() as c:
        r = c.post(
            "/v1/jobs", content=body(), headers={"Content-Type": f"multipart/form-data; boundary={boundary}"}
        )
    assert r.status_code == 413, r.text
    assert _count(api, Document) == 0 and _api_area(api) == []


def test_more_files_than_the_limit_is_refused_413(api: Api) -> None:
    files = [("files", (f"p{i}.png", png_bytes(i), "image/png")) for i in range(MAX_FILES + 1)]
    with api.client() as c:
        r = c.post("/v1/jobs", files=files)
    assert r.status_code == 413, r.text
    assert _count(api, Document) == 0


@pytest.mark.parametrize("kind", ["dotdot", "absolute", "symlink", "symlinked-folder-file"])
def test_path_outside_the_shared_root_is_refused_400(api: Api, tmp_path: Path, kind: str) -> None:
    outside = tmp_path / "secret"
    outside.mkdir()
    (outside / "payroll.png").write_bytes(png_bytes(7))
    (api.shared / "inside.png").write_bytes(png_bytes(8))
    if kind == "dotdot":
        path = "../secret/payroll.png"
    elif kind == "absolute":
        path = str(outside / "payroll.png")
    elif kind == "symlink":
        (api.shared / "link.png").symlink_to(outside / "payroll.png")
        path = "link.png"
    else:
        (api.shared / "linked").symlink_to(outside)
        path = "linked"
    with api.client() as c:
        r = c.post("/v1/jobs", json={"paths": ["inside.png", path]})
    assert r.status_code == 400, r.text
    assert "outside the shared root" in r.json()["detail"]
    assert _count(api, Document) == 0 and _api_area(api) == []


def test_uploaded_files_become_one_job_whose_pages_and_documents_the_client_can_read(
    api: Api, rclient: redis.Redis
) -> None:
    files = [("files", (f"scan{i}.png", png_bytes(100 + i), "image/png")) for i in range(2)]
    files.append(("files", ("again.png", png_bytes(100), "image/png")))
    with api.client() as c:
        r = c.post("/v1/jobs", files=files)
        assert r.status_code == 202, r.text
        accepted = r.json()
        assert accepted["n_documents"] == 3 and accepted["n_duplicate"] == 1
        job = c.get(accepted["status_url"]).json()
        doc_id = accepted["documents"][0]["document_id"]
        document = c.get(f"/v1/documents/{doc_id}")
    assert job["state"] == "queued" and job["source"] == "api" and job["submitted_by"] == "erp"
    assert [p["path"] for p in job["pages"]] == ["scan0.png", "scan1.png", "again.png"]
    assert [p["status"] for p in job["pages"]] == ["pending"] * 3
    assert [p["duplicate"] for p in job["pages"]] == [False, False, True]
    assert document.status_code == 200 and document.json()["filename"] == "scan0.png"
    assert sorted(queued_document_ids(rclient, api.settings.job_queue)) == sorted(
        d["document_id"] for d in accepted["documents"][:2]
    )
    with api.client(api.other_key) as other:
        assert other.get(accepted["status_url"]).status_code == 404
        assert other.get(f"/v1/documents/{doc_id}").status_code == 404


def test_paths_under_the_shared_root_are_copied_and_the_originals_stay(api: Api) -> None:
    folder = api.shared / "batch"
    (folder / "sub").mkdir(parents=True)
    (folder / "a.png").write_bytes(png_bytes(201))
    (folder / "sub" / "b.png").write_bytes(png_bytes(202))
    (folder / "b.png.part").write_bytes(b"half")
    with api.client() as c:
        r = c.post("/v1/jobs", data={"paths": ["batch"], "callback_url": "http://127.0.0.1:9/cb"})
    assert r.status_code == 202, r.text
    refs = sorted(d["source_ref"] for d in r.json()["documents"])
    assert refs == ["batch/a.png", "batch/sub/b.png"]
    assert (folder / "a.png").read_bytes() == png_bytes(201)
    with db.session_scope(api.sessions) as s:
        job = s.get(SubmissionJob, r.json()["job_id"])
        assert job is not None and job.callback_url == "http://127.0.0.1:9/cb"
        docs = list(s.scalars(select(Document)))
        assert all(Path(d.stored_path or "").is_file() for d in docs)
        assert all(Path(d.stored_path or "").is_relative_to(api.settings.dir("processing")) for d in docs)


def test_openapi_docs_are_served_with_the_jobs_routes(api: Api) -> None:
    assert httpx.get(api.url + "/docs").status_code == 200
    schema = httpx.get(api.url + "/openapi.json").json()
    assert {"/v1/jobs", "/v1/jobs/{job_id}", "/v1/documents/{document_id}"} <= set(schema["paths"])
    assert "multipart/form-data" in schema["paths"]["/v1/jobs"]["post"]["requestBody"]["content"]
