"""The demo's parts: its work folder, its child processes, its Redis keys, its tally and threshold."""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
import uuid
from pathlib import Path

import pytest
import redis

from docsort.demo_procs import DemoError, forget_queue, redis_answers, start_private_redis
from docsort.demo_report import FAILED_ROW, collect, review_threshold
from docsort.demo_setup import DemoPaths, prepare_workdir
from docsort.procs import Child, ProcessFailed
from ingest.results import PageOutcome
from tests.support.tiny_model import make_tiny_model


def test_prepare_workdir_refuses_a_folder_the_demo_did_not_make(tmp_path: Path) -> None:
    (tmp_path / "thesis.txt").write_text("keep me")
    with pytest.raises(DemoError, match="not made by `docsort demo`"):
        prepare_workdir(DemoPaths(tmp_path))
    assert (tmp_path / "thesis.txt").read_text() == "keep me"


def test_prepare_workdir_empties_a_folder_an_earlier_demo_made(tmp_path: Path) -> None:
    paths = DemoPaths(tmp_path / "demo")
    prepare_workdir(paths)
    (paths.workdir / "old-page.png").write_bytes(b"x")
    paths.pid_file.write_text("999999999")  # an earlier demo that is gone
    prepare_workdir(paths)
    assert not (paths.workdir / "old-page.png").exists() and paths.logs.is_dir()


def test_prepare_workdir_refuses_a_folder_a_running_demo_uses(tmp_path: Path) -> None:
    paths = DemoPaths(tmp_path / "demo")
    prepare_workdir(paths)
    paths.pid_file.write_text(str(os.getppid()))  # a live process that is not this one
    with pytest.raises(DemoError, match="is running"):
        prepare_workdir(paths)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat").read_text()
    return stat.split(")")[-1].split()[0] != "Z"


def test_child_stop_leaves_no_grandchild_behind(tmp_path: Path) -> None:
    script = (
        "import subprocess, time; p = subprocess.Popen(['sleep', '300']); print(p.pid, flush=True); "
        "time.sleep(300)"
    )
    child = Child("parent", [sys.executable, "-c", script], dict(os.environ), tmp_path, tmp_path / "c.log")
    child.wait_until(lambda: child.log().strip().isdigit(), 20, "printing its child's pid")
    grandchild = int(child.log().strip())
    assert _alive(grandchild)
    child.stop(grace=2)
    deadline = time.monotonic() + 5
    while _alive(grandchild) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not child.alive() and not _alive(grandchild)


def test_child_that_exits_early_is_reported_with_its_log(tmp_path: Path) -> None:
    child = Child(
        "broken",
        [sys.executable, "-c", "print('no model'); raise SystemExit(3)"],
        {},
        tmp_path,
        tmp_path / "b.log",
    )
    with pytest.raises(ProcessFailed, match=r"(?s)broken exited before .*exit code 3.*no model"):
        child.wait_for_log("never", timeout=20)


def test_forget_queue_deletes_the_demos_keys_and_no_other(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    marker = f"docsort-demo-{uuid.uuid4().hex[:10]}"
    other = f"docsort-test-{uuid.uuid4().hex[:10]}"
    shared = f"_kombu.binding.{other}-shared"
    client.rpush(marker, "job")
    client.set(f"{marker}.unacked_mutex", "1")
    client.sadd(shared, f"{marker}\x06\x16\x06\x16{marker}", f"{other}\x06\x16\x06\x16{other}")
    client.set(other, "theirs")
    try:
        assert forget_queue(redis_url, marker) == 2
        assert list(client.scan_iter(match=f"*{marker}*")) == []
        assert client.get(other) == b"theirs"
        assert client.smembers(shared) == {f"{other}\x06\x16\x06\x16{other}".encode()}
    finally:
        client.delete(other, shared, marker, f"{marker}.unacked_mutex")


@pytest.mark.skipif(shutil.which("redis-server") is None, reason="redis-server is not installed")
def test_private_redis_answers_and_is_gone_after_stop(tmp_path: Path) -> None:
    started = start_private_redis(tmp_path / "redis", dict(os.environ), tmp_path / "redis.log")
    assert started is not None
    child, url = started
    assert redis_answers(url)
    child.stop(grace=5)
    assert not child.alive() and not redis_answers(url, timeout=0.5)


def _page(
    path: str, status: str, label: str | None = None, decision: str | None = None, page: int = 1
) -> PageOutcome:
    return PageOutcome(path=path, page=page, status=status, label=label, decision=decision, document_id=1)  # type: ignore[arg-type]


def test_collect_counts_a_file_only_once_every_page_has_an_outcome() -> None:
    labels = {"a.tif": "form", "b.jpg": "text", "c.png": "broken", "d.pdf": "photo"}
    pages = [
        _page("a.tif", "ok", "form", "auto"),
        _page("a.tif", "pending", page=2),
        _page("b.jpg", "ok", "form", "review"),
        _page("c.png", "error", page=1),
        _page("d.pdf", "ok", "photo", "auto"),
        _page("elsewhere.png", "ok", "text", "auto"),  # not a file of the drop
    ]
    out = collect(pages, labels)
    assert out.files_done == {"b.jpg", "c.png", "d.pdf"} and out.pending == 1
    assert out.kinds == {"auto": 2, "review": 1, "failed": 1}
    assert out.by_class["form"].review == 1 and out.by_class["form"].review_right == 0
    assert out.by_class["photo"].auto_right == 1 and out.by_class[FAILED_ROW].failed == 1


def test_review_threshold_puts_the_lowest_share_of_validation_pages_below_it(tmp_path: Path) -> None:
    version = make_tiny_model(tmp_path / "models")
    confidences = [0.55, 0.6, 0.7, 0.8, 0.9, 0.95, 0.97, 0.98, 0.99, 0.999]
    probs = [[c, 1 - c] for c in confidences]
    (version / "report" / "val_scores.json").write_text(
        json.dumps({"class_names": ["dark", "light"], "probs": probs})
    )
    threshold, n = review_threshold(version, 0.2)
    assert n == 10
    assert sum(c < threshold for c in confidences) == 2
