"""End to end through real Redis and a real `docsort worker` process, on SQLite and on PostgreSQL."""

from __future__ import annotations

import json
import pickle
import uuid
from pathlib import Path

import numpy as np
import redis
from kombu import Connection
from PIL import Image
from sqlalchemy import select

from ingest.results import job_result
from schema import db
from schema.enums import DecisionKind, DocumentState
from schema.tables import Document, Page, Prediction, RoutingDecision
from tests.support.corpus import write_corpus
from tests.support.worker import count_rows, files_under, output_documents, wait_finished, write_page
from tests.support.worker_proc import StartWorker, docsort_worker, send_classify
from worker.settings import WorkerSettings

__all__ = ["docsort_worker"]


def _job(paths: list[Path], on_done: str = "archive", job_id: str | None = None) -> dict[str, object]:
    return {"documents": [{"path": str(p)} for p in paths], "on_done": on_done, "job_id": job_id}


def _documents(ws: WorkerSettings) -> list[Document]:
    engine = db.make_engine(ws.database_url)
    try:
        with db.make_sessionmaker(engine)() as s:
            docs = list(s.scalars(select(Document).order_by(Document.id)))
            for d in docs:
                for page in d.pages:
                    _ = [p.decisions for p in page.predictions]
            return docs
    finally:
        engine.dispose()


def test_corpus_comes_out_as_rows_routed_files_and_failures(
    docsort_worker: StartWorker, db_worker_settings: WorkerSettings, unique_queue: str, tmp_path: Path
) -> None:
    ws = db_worker_settings
    cases = write_corpus(tmp_path / "in")
    worker = docsort_worker(ws, queue=unique_queue)
    send_classify(ws.broker_url, unique_queue, _job(list(cases)))
    wait_finished(ws, len(cases), worker)
    worker.wait_for_log("job.processed")
    by_name = {d.filename: d for d in _documents(ws)}
    for path, case in cases.items():
        doc = by_name[path.name]
        if case.readable:
            assert doc.state == DocumentState.done, (path.name, doc.error)
            labels = tuple(p.predictions[0].label for p in doc.pages)
            assert labels == case.labels, path.name
            decisions = [p.predictions[0].decisions[0] for p in doc.pages]
            assert all(d.applied_at or d.kind == DecisionKind.review for d in decisions), path.name
            assert doc.stored_path and Path(doc.stored_path).parent == ws.archive_dir
        else:
            assert doc.state == DocumentState.failed, path.name
            assert case.error and case.error.lower() in (doc.error or "").lower(), (path.name, doc.error)
            moved = Path(doc.stored_path or "")
            assert moved.parent == ws.error_dir and moved.is_file(), path.name
            assert case.error.lower() in Path(f"{moved}.reason.txt").read_text().lower()
        assert path.exists(), f"{path.name}: the file a message names is never moved"
    n_pages = sum(c.pages for c in cases.values() if c.readable)
    delivered = [o for o in output_documents(ws) if o.delivered_at is not None]
    assert delivered and len(files_under(ws.outbox_dir)) == len(delivered)  # a file is one document
    assert count_rows(ws)["routing_decisions"] == n_pages + sum(1 for c in cases.values() if not c.readable)
    # the worker is still running and takes the next job
    grey = write_page(tmp_path / "after.png", 128)
    send_classify(ws.broker_url, unique_queue, _job([grey]))
    wait_finished(ws, len(cases) + 1, worker)
    worker.wait_for_log("job.processed", count=2)
    assert worker.alive()


def test_task_delivered_twice_records_and_routes_once(
    docsort_worker: StartWorker, db_worker_settings: WorkerSettings, unique_queue: str, tmp_path: Path
) -> None:
    ws = db_worker_settings
    inbox = tmp_path / "in"
    inbox.mkdir()
    paths = [write_page(inbox / f"p{i}.png", g) for i, g in enumerate((0, 255, 128))]
    pages = [Image.new("RGB", (60, 80), c) for c in ("black", "white")]
    pages[0].save(inbox / "two.tif", save_all=True, append_images=pages[1:])
    paths.append(inbox / "two.tif")
    worker = docsort_worker(ws, queue=unique_queue)
    task_id = str(uuid.uuid4())
    for _ in range(2):
        send_classify(ws.broker_url, unique_queue, _job(paths), task_id=task_id)
    worker.wait_for_log("job.processed", count=2)  # two door deliveries, two runs of the same job
    assert count_rows(ws) == {"documents": 4, "pages": 5, "predictions": 5, "routing_decisions": 5}
    documents = output_documents(ws)
    assert len(documents) == 4  # each file one document
    auto = [d for d in documents if d.kind == DecisionKind.auto]
    assert auto and all(d.delivered_at for d in auto)
    assert len(files_under(ws.outbox_dir)) == len(auto)  # the others wait for review
    assert len(files_under(ws.archive_dir)) == 4
    assert "delivery failed" not in worker.log()


def test_review_page_image_and_cam_cell_votes_are_written(
    docsort_worker: StartWorker, sqlite_worker_settings: WorkerSettings, unique_queue: str, tmp_path: Path
) -> None:
    ws = sqlite_worker_settings
    arr = np.full((300, 240, 3), 128, dtype=np.uint8)
    arr[40:120, 30:200] = 20  # a dark block, where one class's map is hot ...
    arr[180:260, 30:200] = 236  # ... and a light one: the page's mean stays mid-grey (review)
    Image.fromarray(arr).save(tmp_path / "grey.png")
    worker = docsort_worker(ws, queue=unique_queue)
    send_classify(ws.broker_url, unique_queue, _job([tmp_path / "grey.png"], on_done="delete"))
    worker.wait_for_log("job.processed")
    (doc,) = _documents(ws)
    page = doc.pages[0]
    decision = page.predictions[0].decisions[0]
    assert decision.kind == DecisionKind.review and decision.cam_path and page.image_path
    with Image.open(page.image_path) as image:
        assert image.format == "JPEG"
        plain = np.asarray(image, dtype=np.int16)
    assert plain.shape == (300, 240, 3) and np.abs(plain - arr).mean() < 3  # the page, as a JPEG
    cells = json.loads(Path(decision.cam_path).read_text())  # the CAM's cell votes, drawn by the browser
    votes = np.array([cells["votes"][name] for name in sorted(cells["votes"])])
    assert votes.shape[1:] == (cells["rows"], cells["cols"]) and np.allclose(votes.sum(axis=0), 1, atol=0.01)
    assert votes.std(axis=(1, 2)).max() > 0.01  # cells that vote more and less for a class
    assert not list(Path(decision.cam_path).parent.glob("*.png"))  # no heat map image any more
    # asked to delete it, but its document waits for review: the file is kept in the archive
    assert doc.stored_path and Path(doc.stored_path).parent == ws.archive_dir
    assert (tmp_path / "grey.png").exists()  # the file named stays; docsort's copy is archived


def test_pickled_message_is_refused_and_worker_keeps_running(
    docsort_worker: StartWorker, sqlite_worker_settings: WorkerSettings, unique_queue: str, tmp_path: Path
) -> None:
    ws = sqlite_worker_settings
    marker = tmp_path / "unpickled-code-ran"
    dark = write_page(tmp_path / "dark.png", 0)
    worker = docsort_worker(ws, queue=unique_queue)

    class RunsCode:
        def __reduce__(self) -> tuple[object, tuple[object, ...]]:
            return (Path.touch, (marker,))

    body = pickle.dumps(((), {"job": _job([dark]), "hook": RunsCode()}, {}))
    headers = {"task": "docsort.classify.v1", "id": str(uuid.uuid4()), "lang": "py", "retries": 0}
    with Connection(ws.broker_url) as conn:
        conn.Producer().publish(
            body,
            routing_key=unique_queue,
            exchange="",
            headers=headers,
            content_type="application/x-python-serialize",
            content_encoding="binary",
        )
    worker.wait_for_log("untrusted content")
    good = write_page(tmp_path / "light.png", 255)
    send_classify(ws.broker_url, unique_queue, _job([good]))
    wait_finished(ws, 1, worker)
    assert worker.alive()
    assert not marker.exists()
    assert [d.filename for d in _documents(ws)] == ["light.png"]
    assert dark.exists()
    assert redis.Redis.from_url(ws.broker_url).llen(unique_queue) == 0


def test_pages_and_predictions_name_model_and_worker(
    docsort_worker: StartWorker, sqlite_worker_settings: WorkerSettings, unique_queue: str, tmp_path: Path
) -> None:
    ws = sqlite_worker_settings
    worker = docsort_worker(ws, queue=unique_queue)
    send_classify(ws.broker_url, unique_queue, _job([write_page(tmp_path / "d.png", 0)], on_done="keep"))
    worker.wait_for_log("job.processed")
    engine = db.make_engine(ws.database_url)
    try:
        with db.make_sessionmaker(engine)() as s:
            prediction = s.scalars(select(Prediction)).one()
            page = s.scalars(select(Page)).one()
            decision = s.scalars(select(RoutingDecision)).one()
    finally:
        engine.dispose()
    assert (prediction.model_name, prediction.model_version) == ("tiny", "1")
    assert set(prediction.scores) == {"dark", "light"} and prediction.label == "dark"
    assert prediction.worker and prediction.latency_ms > 0
    assert (page.width, page.height) == (120, 160)
    assert decision.kind == DecisionKind.auto and decision.rule == "default"


def test_a_plain_celery_message_gets_a_job_whose_documents_can_be_read(
    docsort_worker: StartWorker, sqlite_worker_settings: WorkerSettings, unique_queue: str
) -> None:
    ws = sqlite_worker_settings
    page = write_page(ws.dir("inbox") / "plain.png", 0)
    worker = docsort_worker(ws, queue=unique_queue)
    task_id = send_classify(ws.broker_url, unique_queue, {"documents": [{"path": str(page)}]})
    worker.wait_for_log("job.processed")
    engine = db.make_engine(ws.database_url)
    try:
        with db.make_sessionmaker(engine)() as s:
            result = job_result(s, task_id)  # the job's id is the message's task id
    finally:
        engine.dispose()
    assert result is not None and result.state == "done" and result.source == "celery"
    (document,) = result.documents
    assert (document.pages, document.label, document.outcome) == ([1], "dark", "auto")
    assert document.delivered and Path(document.delivered).read_bytes() == page.read_bytes()
