"""The ``docsort`` command as a user runs it: a real subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from schema import db


def _docsort(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "docsort.cli", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=120,
    )


def test_help_lists_db_group() -> None:
    out = _docsort("--help")
    assert out.returncode == 0, out.stderr
    assert "db" in out.stdout


def test_db_upgrade_and_current_on_sqlite(tmp_path: Path) -> None:
    env = {"DOCSORT_DATA_DIR": str(tmp_path), "DOCSORT_DATABASE_URL": ""}
    up = _docsort("db", "upgrade", env=env)
    assert up.returncode == 0, up.stderr
    assert (tmp_path / "docsort.db").is_file()
    cur = _docsort("db", "current", env=env)
    assert f"current: {db.head_revision()}" in cur.stdout and "up to date" in cur.stdout


def test_db_upgrade_on_postgres(pg_url: str) -> None:
    up = _docsort("db", "upgrade", env={"DOCSORT_DATABASE_URL": pg_url})
    assert up.returncode == 0, up.stderr
    assert db.current_revision(pg_url) == db.head_revision()


def test_invalid_setting_stops_with_a_readable_message(tmp_path: Path) -> None:
    out = _docsort("db", "current", env={"DOCSORT_LOG_LEVEL": "chatty", "DOCSORT_DATA_DIR": str(tmp_path)})
    assert out.returncode == 2
    assert "DOCSORT_LOG_LEVEL='chatty'" in out.stderr
    assert "Traceback" not in out.stderr


@pytest.mark.slow
def test_base_install_has_no_tensorflow_and_imports_worker(tmp_path: Path) -> None:
    """`pip install .` in a fresh venv: a worker host gets no TensorFlow and can import worker, schema."""
    root = Path(__file__).resolve().parents[2]
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    py = str(venv / "bin" / "python")
    inst = subprocess.run(
        [py, "-m", "pip", "install", "-q", str(root)], capture_output=True, text=True, timeout=900
    )
    assert inst.returncode == 0, inst.stderr[-3000:]
    listed = subprocess.run([py, "-m", "pip", "list", "--format=freeze"], capture_output=True, text=True)
    names = {line.split("==")[0].lower() for line in listed.stdout.splitlines()}
    assert "tensorflow" not in names and "keras" not in names
    assert "onnxruntime" in names
    imp = subprocess.run(
        [py, "-c", "import worker, schema, worker.imaging; print('ok')"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert imp.stdout.strip() == "ok", imp.stderr
    out = subprocess.run(
        [str(venv / "bin" / "docsort"), "train", str(tmp_path), "--models-dir", str(tmp_path / "models")],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert out.returncode == 3, out.stderr
    assert "pip install 'docsort[train]'" in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1, out.stderr
