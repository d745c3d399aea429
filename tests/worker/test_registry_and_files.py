from __future__ import annotations

import os
from pathlib import Path

import pytest
from sqlalchemy import select

from schema import db
from schema.tables import ModelVersion
from tests.support.tiny_model import make_tiny_model
from worker.files import apply_on_done, move_to_error
from worker.registry import ModelCache, ModelUnavailable, activate, active_version, scan_models_dir
from worker.settings import WorkerSettings


def test_one_active_version_per_name(worker_settings: WorkerSettings) -> None:
    models = worker_settings.models_dir
    assert models is not None
    make_tiny_model(models, version="2")
    make_tiny_model(models, name="other", version="1")
    sessions = db.make_sessionmaker(db.make_engine(worker_settings.database_url))
    with db.session_scope(sessions) as s:
        activate(s, models, "tiny", "2")
        activate(s, models, "other", "1")
    with sessions() as s:
        active = {(r.name, r.version) for r in s.scalars(select(ModelVersion).where(ModelVersion.active))}
        assert active == {("tiny", "2"), ("other", "1")}
        assert (row := active_version(s, "tiny")) is not None and row.version == "2"
        with pytest.raises(ModelUnavailable, match="no model version tiny/7"):
            activate(s, models, "tiny", "7")


def test_model_cache_switches_when_another_version_is_activated(worker_settings: WorkerSettings) -> None:
    models = worker_settings.models_dir
    assert models is not None
    sessions = db.make_sessionmaker(db.make_engine(worker_settings.database_url))
    cache = ModelCache(worker_settings)
    with sessions() as s:
        first = cache.get(s)
        assert cache.get(s) is first and first.version == "1"
    make_tiny_model(models, version="2")
    with db.session_scope(sessions) as s:
        activate(s, models, "tiny", "2")
    with sessions() as s:
        assert cache.get(s).version == "2"
        with pytest.raises(ModelUnavailable, match="no active version of model ghost"):
            cache.get(s, "ghost")


def test_scan_reports_broken_version_folders(tmp_path: Path) -> None:
    make_tiny_model(tmp_path, version="1")
    broken = make_tiny_model(tmp_path, version="2")
    (broken / "manifest.json").write_text("{not json")
    found, problems = scan_models_dir(tmp_path)
    assert [f.manifest.version for f in found] == ["1"]
    assert len(problems) == 1 and "unreadable manifest" in problems[0]


def test_archive_is_idempotent_and_names_are_stable(tmp_path: Path) -> None:
    src = tmp_path / "in" / "scan 1.png"
    src.parent.mkdir()
    src.write_bytes(b"abc")
    archive = tmp_path / "archive"
    moved = apply_on_done(src, "archive", archive, "scan 1.png", "f" * 64)
    assert moved == archive / f"scan 1-{'f' * 10}.png" and moved.read_bytes() == b"abc" and not src.exists()
    assert apply_on_done(src, "archive", archive, "scan 1.png", "f" * 64) == moved  # redelivered: found
    assert apply_on_done(src, "keep", archive, "scan 1.png", "f" * 64) == src


def test_archive_renames_on_one_file_system_and_copies_across(tmp_path: Path) -> None:
    src = tmp_path / "in" / "scan.png"
    src.parent.mkdir()
    src.write_bytes(b"scan bytes")
    inode = src.stat().st_ino
    moved = apply_on_done(src, "archive", tmp_path / "archive", "scan.png", "a" * 64)
    assert moved is not None and moved.stat().st_ino == inode and not src.exists()  # renamed, not copied
    shm = Path("/dev/shm")
    if not shm.is_dir() or shm.stat().st_dev == tmp_path.stat().st_dev:
        pytest.skip("no second file system (/dev/shm) to archive across")
    far = shm / f"docsort-test-{os.getpid()}-scan.png"
    far.write_bytes(b"far bytes")
    try:
        moved = apply_on_done(far, "archive", tmp_path / "archive", "scan.png", "b" * 64)
        assert moved is not None and moved.read_bytes() == b"far bytes" and not far.exists()
        assert not list((tmp_path / "archive").glob(".*"))  # no temporary file left beside it
    finally:
        far.unlink(missing_ok=True)


def test_delete_removes_and_error_area_keeps_a_reason(tmp_path: Path) -> None:
    doomed = tmp_path / "a.png"
    doomed.write_bytes(b"x")
    assert apply_on_done(doomed, "delete", tmp_path / "archive", "a.png", "a" * 64) is None
    assert not doomed.exists()
    bad = tmp_path / "b.png"
    bad.write_bytes(b"y")
    moved = move_to_error(bad, tmp_path / "error", "../../b.png", "b" * 64, "truncated file")
    assert moved is not None and moved.parent == tmp_path / "error"
    assert (tmp_path / "error" / f"{moved.name}.reason.txt").read_text() == "../../b.png: truncated file\n"
