"""Model versions with a running worker: activation switches it without a restart; metrics on a port."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import httpx
from sqlalchemy import select

from schema import db
from schema.tables import Document, Prediction
from tests.support.tiny_model import make_tiny_model
from tests.support.worker import write_page
from tests.support.worker_proc import StartWorker, docsort_worker, send_classify, settings_env
from worker.settings import WorkerSettings

__all__ = ["docsort_worker"]


def _job(path: Path) -> dict[str, object]:
    return {"documents": [{"path": str(path)}], "on_done": "keep"}


def _version_of(ws: WorkerSettings, filename: str) -> str:
    engine = db.make_engine(ws.database_url)
    try:
        with db.make_sessionmaker(engine)() as s:
            doc = s.scalars(select(Document).where(Document.filename == filename)).one()
            prediction = s.scalars(select(Prediction).where(Prediction.page_id == doc.pages[0].id)).one()
            return prediction.model_version
    finally:
        engine.dispose()


def _docsort(ws: WorkerSettings, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOCSORT_")} | settings_env(ws)
    return subprocess.run(
        [sys.executable, "-m", "docsort.cli", *args], capture_output=True, text=True, env=env, timeout=120
    )


def test_activation_switches_a_running_worker_without_restart(
    docsort_worker: StartWorker, db_worker_settings: WorkerSettings, unique_queue: str, tmp_path: Path
) -> None:
    ws = db_worker_settings
    worker = docsort_worker(ws, queue=unique_queue, wait_for=("worker.ready", "inference.warm"))
    children = worker.children()
    send_classify(ws.broker_url, unique_queue, _job(write_page(tmp_path / "one.png", 0)))
    worker.wait_for_log("job.processed")
    assert _version_of(ws, "one.png") == "1"

    make_tiny_model(ws.models_dir, version="2", sharpness=4.0)
    out = _docsort(ws, "models", "activate", "tiny", "2")
    assert out.returncode == 0, out.stderr
    assert "active: tiny/2" in out.stdout
    listing = _docsort(ws, "models", "list")
    assert re.search(r"^\* tiny/2 ", listing.stdout, re.M) and re.search(r"^  tiny/1 ", listing.stdout, re.M)

    send_classify(ws.broker_url, unique_queue, _job(write_page(tmp_path / "two.png", 0)))
    worker.wait_for_log("job.processed", count=2)
    assert _version_of(ws, "two.png") == "2"
    assert "models.switched" in worker.log()
    assert worker.alive() and worker.children() == children  # same processes: no restart


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _sample(text: str, name: str, labels: str) -> float:
    match = re.search(rf"^{re.escape(name)}\{{{re.escape(labels)}\}} (\S+)$", text, re.M)
    assert match, f"{name}{{{labels}}} not in metrics:\n{text[:3000]}"
    return float(match.group(1))


def test_metrics_port_serves_pages_decisions_latency_and_model(
    docsort_worker: StartWorker, sqlite_worker_settings: WorkerSettings, unique_queue: str, tmp_path: Path
) -> None:
    ws = sqlite_worker_settings
    port = _free_port()
    worker = docsort_worker(ws, queue=unique_queue, args=("--metrics-port", str(port)))
    job = {
        "documents": [{"path": str(write_page(tmp_path / n, g))} for n, g in (("d.png", 0), ("g.png", 128))],
        "on_done": "keep",
    }
    send_classify(ws.broker_url, unique_queue, job)
    worker.wait_for_log("job.processed")
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
    assert _sample(text, "docsort_pages_total", 'model="tiny"') == 2
    assert _sample(text, "docsort_decisions_total", 'kind="auto"') == 1
    assert _sample(text, "docsort_decisions_total", 'kind="review"') == 1
    assert re.search(r"^docsort_page_latency_seconds_count 2\.0$", text, re.M), text
    assert re.search(r'^docsort_model_info\{.*name="tiny".*version="1".*\} 1\.0$', text, re.M)
