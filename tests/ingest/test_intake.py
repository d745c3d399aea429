"""The one intake of every door: records, duplicates, races, and the messages it sends (real Redis)."""

from __future__ import annotations

import threading
from pathlib import Path

import redis
from sqlalchemy import func, select

from ingest.intake import Intake
from ingest.staging import stage_copy
from schema.db import session_scope
from schema.enums import DocumentState, JobState
from schema.messages import CALLBACK_TASK, RUN_TASK, job_from_task_args
from schema.tables import Document, Receipt, SubmissionJob
from tests.support.ingest import png_bytes, queued_document_ids, raw_messages
from tests.support.intake import close_intake, make_intake


def _file(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / "src" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def test_same_content_twice_is_classified_once_and_recorded_as_a_duplicate(
    intake: Intake, tmp_path: Path, rclient: redis.Redis
) -> None:
    data = png_bytes(1)
    first = intake.take(
        [stage_copy(_file(tmp_path, "a.png", data), intake.area("submit"))], source="submit", submitted_by="t"
    )
    second = intake.take(
        [stage_copy(_file(tmp_path, "b.png", data), intake.area("submit"))], source="submit", submitted_by="t"
    )
    assert [a.duplicate for a in first.arrivals] == [False]
    assert [a.duplicate for a in second.arrivals] == [True]
    doc_id = first.arrivals[0].document_id
    assert second.arrivals[0].document_id == doc_id
    with session_scope(intake.sessions) as s:
        assert s.scalar(select(func.count(Document.id))) == 1
        receipts = list(s.scalars(select(Receipt).order_by(Receipt.id)))
        assert [(r.job_id, r.duplicate) for r in receipts] == [(first.job_id, False), (second.job_id, True)]
        job2 = s.get(SubmissionJob, second.job_id)
        assert job2 is not None
        assert (job2.n_documents, job2.n_duplicate, job2.state) == (1, 1, JobState.done)
        doc = s.get(Document, doc_id)
        assert doc is not None and doc.state == DocumentState.processing
    assert queued_document_ids(rclient, intake.settings.job_queue) == [doc_id]
    archived = list((intake.settings.dir("archive") / "duplicates").iterdir())
    assert len(archived) == 1 and archived[0].read_bytes() == data
    assert not list(intake.area("submit").iterdir()) or all(
        p.name != archived[0].name for p in intake.area("submit").iterdir()
    )


def test_two_doors_racing_on_the_same_content_record_one_document(
    intake: Intake, tmp_path: Path, rclient: redis.Redis
) -> None:
    data = png_bytes(2)
    doors = [make_intake(intake.settings) for _ in range(4)]
    staged = [stage_copy(_file(tmp_path, f"c{i}.png", data), intake.area("api")) for i in range(4)]
    start = threading.Barrier(len(doors))
    results = []
    errors: list[BaseException] = []

    def run(door: Intake, i: int) -> None:
        start.wait()
        try:
            results.append(door.take([staged[i]], source="api", submitted_by=f"door{i}"))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(d, i)) for i, d in enumerate(doors)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    for d in doors:
        close_intake(d)
    assert not errors
    assert sorted(r.n_duplicate for r in results) == [0, 1, 1, 1]
    with session_scope(intake.sessions) as s:
        assert s.scalar(select(func.count(Document.id))) == 1
        assert s.scalar(select(func.count(Receipt.id)).where(Receipt.duplicate.is_(True))) == 3
    assert len(queued_document_ids(rclient, intake.settings.job_queue)) == 1


def test_job_of_duplicates_only_is_done_at_once_and_its_callback_is_queued(
    intake: Intake, tmp_path: Path, rclient: redis.Redis
) -> None:
    data = png_bytes(3)
    intake.take(
        [stage_copy(_file(tmp_path, "x.png", data), intake.area("api"))], source="api", submitted_by="t"
    )
    again = intake.take(
        [stage_copy(_file(tmp_path, "y.png", data), intake.area("api"))],
        source="api",
        submitted_by="t",
        callback_url="http://127.0.0.1:9/hook",
    )
    callbacks = [m for m in raw_messages(rclient, intake.settings.job_queue) if m["task"] == CALLBACK_TASK]
    assert [m["kwargs"] for m in callbacks] == [{"job_id": again.job_id}]
    with session_scope(intake.sessions) as s:
        job = s.get(SubmissionJob, again.job_id)
        assert job is not None
        assert job.state == JobState.done and job.finished_at is not None
        assert job.callback_state is not None  # marked queued: the worker will not queue it again


def test_job_message_carries_ids_paths_and_on_done_as_the_worker_reads_them(
    intake: Intake, tmp_path: Path, rclient: redis.Redis
) -> None:
    staged = [
        stage_copy(_file(tmp_path, f"m{i}.png", png_bytes(10 + i)), intake.area("submit")) for i in range(3)
    ]
    result = intake.take(staged, source="submit", submitted_by="t")
    messages = raw_messages(rclient, intake.settings.job_queue)
    assert len(messages) == 1
    envelope = messages[0]["envelope"]
    assert envelope["content-type"] == "application/json"
    assert messages[0]["task"] == RUN_TASK
    job = job_from_task_args(tuple(messages[0]["args"]), messages[0]["kwargs"])
    assert job.job_id == result.job_id and job.on_done == "archive"
    assert [d.path for d in job.documents] == [str(s.path) for s in staged]
    assert all(Path(d.path).is_file() and d.source == "submit" for d in job.documents)
    assert [d.document_id for d in job.documents] == [a.document_id for a in result.arrivals]


def test_on_done_delete_is_sent_to_the_worker_and_a_duplicate_copy_is_deleted(
    intake: Intake, tmp_path: Path, rclient: redis.Redis
) -> None:
    deleting = Intake(
        intake.settings.model_copy(update={"on_done": "delete"}), intake.sessions, intake.sender
    )
    data = png_bytes(30)
    first = stage_copy(_file(tmp_path, "d1.png", data), intake.area("watch"))
    second = stage_copy(_file(tmp_path, "d2.png", data), intake.area("watch"))
    deleting.take([first], source="watch", submitted_by="t")
    deleting.take([second], source="watch", submitted_by="t")
    jobs = [m["kwargs"]["job"] for m in raw_messages(rclient, intake.settings.job_queue)]
    assert [j["on_done"] for j in jobs] == ["delete"]
    assert first.path.exists() and not second.path.exists()
    assert not (intake.settings.dir("archive") / "duplicates").exists()
