"""`docsort classify`, `docsort models`, `docsort worker` as a user runs them: real subprocesses."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from PIL import Image

from tests.support.tiny_model import make_tiny_model
from tests.support.worker import write_page
from tests.support.worker_proc import settings_env
from worker.settings import WorkerSettings


def _docsort(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("DOCSORT_")}
    return subprocess.run(
        [sys.executable, "-m", "docsort.cli", *args],
        capture_output=True,
        text=True,
        env={**base, **(env or {})},
        timeout=180,
    )


def test_classify_json_gives_one_object_per_page_and_one_error_per_bad_file(tmp_path: Path) -> None:
    model = make_tiny_model(tmp_path / "models")
    dark, grey = write_page(tmp_path / "dark.png", 0), write_page(tmp_path / "grey.png", 128)
    pages = [Image.new("RGB", (50, 70), c) for c in ("white", "black")]
    pages[0].save(tmp_path / "two.tif", save_all=True, append_images=pages[1:])
    empty = tmp_path / "empty.jpg"
    empty.write_bytes(b"")
    files = [dark, empty, grey, tmp_path / "two.tif"]
    out = _docsort("classify", *map(str, files), "--model", str(model), "--json")
    assert out.returncode == 1, out.stderr  # one file failed
    rows = [json.loads(line) for line in out.stdout.splitlines()]
    keys = {"path", "page", "status", "label", "confidence", "decision", "error"}
    assert all(keys <= set(r) for r in rows)
    got = [(Path(r["path"]).name, r["page"], r["status"], r["label"], r["decision"]) for r in rows]
    assert got == [
        ("dark.png", 1, "ok", "dark", "auto"),
        ("empty.jpg", None, "error", None, None),
        ("grey.png", 1, "ok", got[2][3], "review"),
        ("two.tif", 1, "ok", "light", "auto"),
        ("two.tif", 2, "ok", "dark", "auto"),
    ]
    assert rows[1]["error"] == "empty file (0 bytes)"
    assert 0.4 < rows[2]["confidence"] < 0.6


def test_classify_threshold_override_changes_the_decision(tmp_path: Path) -> None:
    model = make_tiny_model(tmp_path / "models")
    grey = write_page(tmp_path / "grey.png", 128)
    out = _docsort("classify", str(grey), "--model", str(model), "--json", "--confidence", "0.3")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["decision"] == "auto"


def test_classify_folder_reads_its_files_in_order(tmp_path: Path) -> None:
    model = make_tiny_model(tmp_path / "models")
    folder = tmp_path / "in"
    folder.mkdir()
    for name, level in (("b.png", 255), ("a.png", 0)):
        write_page(folder / name, level)
    out = _docsort("classify", str(folder), "--model", str(model))
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert [Path(line.split("\t")[0]).name for line in lines] == ["a.png", "b.png"]
    assert "\tdark\t" in lines[0] and "\tlight\t" in lines[1]


def test_models_show_and_activate_unknown_version(worker_settings: WorkerSettings) -> None:
    env = settings_env(worker_settings)
    shown = _docsort("models", "show", "tiny", env=env)
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["class_names"] == ["dark", "light"]
    bad = _docsort("models", "activate", "tiny", "9", env=env)
    assert bad.returncode == 2
    assert "no model version tiny/9" in bad.stderr and "Traceback" not in bad.stderr


def test_worker_refuses_to_start_without_an_active_model(
    worker_settings: WorkerSettings, tmp_path: Path
) -> None:
    env = settings_env(worker_settings, model_name="other")
    out = _docsort("worker", "--queues", "never-used", env=env)
    assert out.returncode == 2
    assert "no active version of model other" in out.stderr and "Traceback" not in out.stderr


def test_worker_refuses_a_visibility_timeout_below_the_time_limit(worker_settings: WorkerSettings) -> None:
    env = settings_env(worker_settings, visibility_timeout=10, task_time_limit=60)
    out = _docsort("worker", "--queues", "never-used", env=env)
    assert out.returncode == 2
    assert "DOCSORT_VISIBILITY_TIMEOUT=10 must exceed" in out.stderr
