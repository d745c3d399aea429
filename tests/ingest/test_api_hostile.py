"""Hostile requests against the jobs API on a real server: FIFOs, links and huge folders under the shared
root, oversize files and bodies; each refused at once with its reason, nothing staged or recorded."""

from __future__ import annotations

import os
import time

import pytest

from schema.settings import DocsortSettings
from schema.tables import Document
from tests.ingest.test_api import MAX_FILES, Api, _api_area, _count
from tests.ingest.test_api import api as api  # the fixture
from tests.support.ingest import png_bytes

MAX_FILE = 16 * 1024
MAX_JSON = 4096


@pytest.fixture(autouse=True)
def _limits(settings: DocsortSettings, monkeypatch: pytest.MonkeyPatch) -> None:
    """Small limits, set after ``settings`` cleared the environment and before ``api`` reads it."""
    monkeypatch.setenv("DOCSORT_MAX_FILE_BYTES", str(MAX_FILE))
    monkeypatch.setenv("DOCSORT_API_MAX_JSON_BYTES", str(MAX_JSON))


def _refused(api: Api, paths: list[str], status: int, words: str) -> None:
    started = time.monotonic()
    with api.client() as c:
        r = c.post("/v1/jobs", json={"paths": paths})
    assert r.status_code == status, r.text
    assert words in r.json()["detail"], r.json()
    assert time.monotonic() - started < 10  # answered, not hung
    assert _count(api, Document) == 0 and _api_area(api) == []


def test_a_fifo_named_or_inside_a_folder_is_refused_without_hanging(api: Api) -> None:
    (api.shared / "batch").mkdir()
    (api.shared / "batch" / "a.png").write_bytes(png_bytes(1))
    os.mkfifo(api.shared / "batch" / "b.png")
    os.mkfifo(api.shared / "pipe.png")
    _refused(api, ["batch"], 400, "is a FIFO")
    _refused(api, ["pipe.png"], 400, "is a FIFO")


def test_a_link_inside_a_folder_is_refused_even_when_it_points_inside(api: Api) -> None:
    (api.shared / "batch").mkdir()
    (api.shared / "batch" / "a.png").write_bytes(png_bytes(2))
    (api.shared / "batch" / "again.png").symlink_to(api.shared / "batch" / "a.png")
    _refused(api, ["batch"], 400, "symbolic link")


def test_a_folder_with_many_files_is_refused_once_the_limit_is_passed(api: Api) -> None:
    folder = api.shared / "many"
    folder.mkdir()
    for i in range(MAX_FILES * 50):
        (folder / f"{i:05d}.png").write_bytes(b"x")
    _refused(api, ["many"], 413, f"more than the limit of {MAX_FILES} files")


def test_files_over_the_size_limit_are_refused_before_a_byte_is_copied(api: Api) -> None:
    with (api.shared / "sparse.png").open("wb") as fh:
        fh.truncate(10 * 1024**3)  # 10 GB that takes no disk: never copied dense
    _refused(api, ["sparse.png"], 413, "larger than the limit")
    with api.client() as c:
        r = c.post("/v1/jobs", files={"files": ("big.png", b"\0" * (MAX_FILE + 1), "image/png")})
    assert r.status_code == 413, r.text
    assert _count(api, Document) == 0 and _api_area(api) == []


def test_a_json_body_over_its_own_limit_is_refused_413(api: Api) -> None:
    paths = [f"file-{i:06d}.png" for i in range(MAX_JSON // 10)]
    with api.client() as c:
        r = c.post("/v1/jobs", json={"paths": paths})
    assert r.status_code == 413, r.text
    assert f"limit of {MAX_JSON} bytes" in r.json()["detail"]
