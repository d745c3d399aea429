"""A destination that cannot be written: the failure is recorded, the file kept, a later run delivers."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from schema import db
from schema.enums import DecisionKind, DocumentState
from schema.tables import OutputDocument
from tests.support.faults import (
    assert_one_outcome_each,
    fault_settings,
    finished_count,
    job_payload,
    read_outcomes,
    routed_files,
    wait_for,
    write_scan,
)
from tests.support.worker_proc import StartWorker, send_classify
from worker.settings import WorkerSettings

pytestmark = pytest.mark.faults


def test_unwritable_destination_records_the_failed_delivery_and_keeps_the_source_file(
    docsort_worker: StartWorker, pg_db_url: str, redis_url: str, shared_queue: str, tmp_path: Path
) -> None:
    routes = tmp_path / "routes.yaml"
    routes.write_text("classes:\n  dark: {folder: dark}\n  light: {folder: light}\n")
    ws = fault_settings(tmp_path / "data", pg_db_url, redis_url, routes_file=routes)
    blocker = ws.outbox_dir / "dark"
    blocker.write_text("a file where the destination folder should be\n")  # root ignores permissions
    inbox = tmp_path / "in"
    inbox.mkdir()
    dark = [write_scan(inbox / f"dark{i}.png", 0, i, (600, 800)) for i in range(2)]
    light = write_scan(inbox / "light.png", 255, 5, (600, 800))
    worker = docsort_worker(ws, queue=shared_queue)
    send_classify(ws.broker_url, shared_queue, job_payload([*dark, light]))
    wait_for(lambda: finished_count(ws) == 3, 60, "3 documents finished")
    worker.wait_for_log("job.processed")

    outcomes = read_outcomes(ws)
    for path in dark:
        doc = outcomes[path.name]
        assert doc.state == DocumentState.done
        ((kind, destination, applied),) = doc.pages[1]
        assert kind == DecisionKind.auto and applied is None and destination is None, doc.pages
        assert path.is_file(), f"{path.name}: the file a message names is never moved"
        assert str(blocker) in worker.log()
    reasons = [r for r in _reasons(ws) if "delivery failed" in r]
    assert len(reasons) == 2 and all("cannot write" in r for r in reasons), reasons
    staged = ws.dir("processing") / "celery"
    assert light.is_file() and len(list(staged.iterdir())) == 2, "the undelivered copies wait for a retry"
    routed = [p for p in routed_files(ws) if p != blocker]
    assert routed == sorted((ws.outbox_dir / "light").glob("*")) and len(routed) == 1, routed
    assert blocker.read_text().startswith("a file where")  # nothing overwrote what was in the way

    # The job is retried with backoff: once the destination is writable again, the kept files are
    # delivered, once, with nothing sent again.
    assert "job.retry" in worker.log()
    blocker.unlink()
    wait_for(lambda: len(routed_files(ws)) == 3, 90, "the kept files delivered by a retry")
    worker.wait_for_log("job.processed", count=2)
    assert_one_outcome_each(ws, {p.name: 1 for p in [*dark, light]})
    assert len(routed_files(ws)) == 3
    assert not any(staged.iterdir()) and len(list(ws.archive_dir.iterdir())) == 3
    assert all(p.is_file() for p in [*dark, light])  # the named files stay where the client put them


def _reasons(ws: WorkerSettings) -> list[str]:
    engine = db.make_engine(ws.database_url)
    try:
        with engine.connect() as conn:
            return [str(r) for r in conn.execute(select(OutputDocument.reason)).scalars()]
    finally:
        engine.dispose()
