"""Hostile drops into a watched folder against a real ``docsort watch``: a symlink to a secret, a link to a
folder, a FIFO and a file over the size limit are refused (logged with their reason, left where they
are, their targets never read); the ordinary file beside them is taken."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from ingest.settings import IngestSettings
from schema import db
from schema.db import session_scope
from schema.tables import Document
from tests.support.ingest import docsort_env, png_bytes, start_docsort, stop, wait_until

MAX_FILE = 64 * 1024


@pytest.fixture
def sessions(ingest_settings: IngestSettings) -> Iterator[sessionmaker[Session]]:
    made = db.make_sessionmaker(db.make_engine(ingest_settings.database_url))
    yield made
    made.kw["bind"].dispose()


def _filenames(sessions: sessionmaker[Session]) -> list[str]:
    with session_scope(sessions) as s:
        return sorted(s.scalars(select(Document.filename)))


def test_links_fifos_and_oversize_files_are_refused_and_left_where_they_are(
    ingest_settings: IngestSettings, sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    inbox = ingest_settings.dir("inbox")
    secret_dir = tmp_path / "secret"
    secret_dir.mkdir()
    secret = secret_dir / "payroll.png"
    secret.write_bytes(png_bytes(42))
    (inbox / "link.png").symlink_to(secret)
    (inbox / "linked-folder").symlink_to(secret_dir, target_is_directory=True)
    os.mkfifo(inbox / "pipe.png")
    with (inbox / "huge.png").open("wb") as fh:
        fh.truncate(10 * 1024**3)  # sparse: refused by its size, never moved or read
    (inbox / "scan.png").write_bytes(png_bytes(1))
    proc = start_docsort(
        ["watch", str(inbox)], docsort_env({"DOCSORT_MAX_FILE_BYTES": str(MAX_FILE)}), tmp_path / "watch.log"
    )
    try:
        wait_until(lambda: _filenames(sessions) == ["scan.png"], 60, what="the ordinary file taken")
        log = tmp_path / "watch.log"
        wait_until(lambda: log.read_text().count("file.refused") >= 4, 30, what="four refusals logged")
        text = log.read_text()
    finally:
        stop(proc)
    assert "symbolic link" in text and "a FIFO" in text and "larger than the limit" in text, text
    assert _filenames(sessions) == ["scan.png"]
    assert (inbox / "link.png").is_symlink() and (inbox / "linked-folder").is_symlink()
    assert (inbox / "pipe.png").exists() and (inbox / "huge.png").stat().st_size == 10 * 1024**3
    assert secret.read_bytes() == png_bytes(42)
    staged = [p for p in ingest_settings.dir("processing").rglob("*") if p.is_file() or p.is_symlink()]
    assert [p.name.split("-", 1)[1] for p in staged] == ["scan.png"], staged
