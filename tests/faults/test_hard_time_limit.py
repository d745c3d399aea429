"""A job killed at the hard time limit is not lost: the message goes back to the queue
(``task_acks_on_timeout`` off), each death is counted in the database, and the file that hangs the
decoder is dead-lettered with its reason while the rest of its batch is sorted."""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest

from schema.enums import DocumentState
from tests.support.faults import (
    assert_one_outcome_each,
    fault_settings,
    finished_count,
    job_payload,
    wait_for,
    write_scan,
)
from tests.support.worker_proc import StartWorker, send_classify
from worker.poison import MAX_DECODE_CRASHES

pytestmark = pytest.mark.faults

INJECT = Path(__file__).parent / "inject"


def test_a_page_that_outlives_the_hard_time_limit_is_dead_lettered_not_lost(
    monkeypatch: pytest.MonkeyPatch,
    docsort_worker: StartWorker,
    pg_db_url: str,
    redis_url: str,
    shared_queue: str,
    tmp_path: Path,
) -> None:
    monkeypatch.setenv(
        "PYTHONPATH", os.pathsep.join(filter(None, [str(INJECT), os.environ.get("PYTHONPATH")]))
    )
    # 10 s: the soft limit (9 s) must find the decoder already hung on the stuck file, even when the
    # job reaches it slowly on a loaded machine (at 6 s, soft and hard fired together, now and then first)
    ws = fault_settings(tmp_path / "data", pg_db_url, redis_url, task_time_limit=10, visibility_timeout=14)
    inbox = tmp_path / "in"
    inbox.mkdir()
    good = write_scan(inbox / "good.png", 255, 1, (600, 800))
    stuck = write_scan(inbox / "hang-forever.png", 0, random.randrange(2**32), (600, 800))
    worker = docsort_worker(ws, queue=shared_queue)
    send_classify(ws.broker_url, shared_queue, job_payload([good, stuck]))
    wait_for(lambda: finished_count(ws) == 2, 240, "both documents finished")
    worker.wait_for_log("job.processed")
    outcomes = assert_one_outcome_each(ws, {good.name: 1, stuck.name: 1}, allow_failed=True)
    assert outcomes[good.name].state == DocumentState.done
    dead = outcomes[stuck.name]
    assert dead.state == DocumentState.failed and "dead-lettered" in (dead.error or ""), dead.error
    log = worker.log()
    assert log.count("Hard time limit") == MAX_DECODE_CRASHES, log[-3000:]
    assert worker.alive()
