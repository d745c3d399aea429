"""Poison pages: a file that crashes the decoder every time is dead-lettered; the rest of its batch is sorted.

The faults are injected into the real worker process (``inject/sitecustomize.py`` on its PYTHONPATH):
one file kills the decoding process with SIGSEGV whenever it is loaded, another page makes resizing raise
an exception the decoder does not expect.
"""

from __future__ import annotations

import os
import random
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from schema.enums import DocumentState
from tests.support.faults import (
    assert_one_outcome_each,
    fault_settings,
    finished_count,
    job_payload,
    read_outcomes,
    wait_for,
    write_scan,
)
from tests.support.worker_proc import StartWorker, send_classify
from worker.poison import MAX_DECODE_CRASHES
from worker.settings import WorkerSettings

pytestmark = pytest.mark.faults

INJECT = Path(__file__).parent / "inject"
CRASHED = "exited with 'signal 11"


@pytest.fixture
def injected(monkeypatch: pytest.MonkeyPatch) -> None:
    """Workers started in this test load the decoder faults."""
    monkeypatch.setenv(
        "PYTHONPATH", os.pathsep.join(filter(None, [str(INJECT), os.environ.get("PYTHONPATH")]))
    )


def _error_area_note(ws: WorkerSettings, name: str) -> str:
    notes = [p for p in ws.error_dir.glob("*.reason.txt") if p.name.startswith(Path(name).stem)]
    assert len(notes) == 1, sorted(p.name for p in ws.error_dir.iterdir())
    moved = notes[0].with_name(notes[0].name.removesuffix(".reason.txt"))
    assert moved.is_file(), f"{name} is not kept in the error area"
    return notes[0].read_text()


def test_page_that_kills_the_decoder_is_dead_lettered_after_bounded_crashes_and_its_batch_completes(
    request: pytest.FixtureRequest,
    injected: None,
    docsort_worker: StartWorker,
    pg_db_url: str,
    redis_url: str,
    shared_queue: str,
    tmp_path: Path,
) -> None:
    ws = fault_settings(tmp_path / "data", pg_db_url, redis_url)
    inbox = tmp_path / "in"
    inbox.mkdir()
    good = [write_scan(inbox / f"good{i}.png", (0, 255, 0)[i], i, (600, 800)) for i in range(3)]
    poison = write_scan(inbox / "poison-crash.png", 0, random.randrange(2**32), (600, 800))  # new content
    worker = docsort_worker(ws, queue=shared_queue)
    send_classify(ws.broker_url, shared_queue, job_payload([good[0], poison, good[1], good[2]]))
    wait_for(lambda: finished_count(ws) == 4, 120, "4 documents finished")
    worker.wait_for_log("job.processed")
    outcomes = assert_one_outcome_each(ws, {p.name: 1 for p in [*good, poison]}, allow_failed=True)
    assert all(outcomes[p.name].state == DocumentState.done for p in good), outcomes
    dead = outcomes[poison.name]
    assert dead.state == DocumentState.failed
    reason = dead.error or ""
    assert "dead-lettered" in reason and "crash" in reason, reason
    assert reason in _error_area_note(ws, poison.name)
    crashes = worker.log().count(CRASHED)
    assert crashes == MAX_DECODE_CRASHES, f"{crashes} crashes before the page was set aside"
    assert f"{crashes} time" in reason, reason
    assert worker.alive()
    # the next job runs normally and the dead-lettered content is not tried again
    again = write_scan(inbox / "after.png", 255, 7, (600, 800))
    send_classify(ws.broker_url, shared_queue, job_payload([again]))
    wait_for(lambda: finished_count(ws) == 5, 60, "the next job")
    assert worker.log().count(CRASHED) == crashes
    assert read_outcomes(ws)[again.name].state == DocumentState.done


def test_page_whose_decoding_raises_an_unexpected_error_fails_alone_with_its_reason(
    injected: None,
    docsort_worker: StartWorker,
    pg_db_url: str,
    redis_url: str,
    shared_queue: str,
    tmp_path: Path,
) -> None:
    ws = fault_settings(tmp_path / "data", pg_db_url, redis_url)
    inbox = tmp_path / "in"
    inbox.mkdir()
    good = [write_scan(inbox / f"good{i}.png", 255, i, (600, 800)) for i in range(2)]
    odd = inbox / "wide.png"
    Image.fromarray(np.full((900, 1999, 3), 255, np.uint8)).save(odd)
    worker = docsort_worker(ws, queue=shared_queue)
    send_classify(ws.broker_url, shared_queue, job_payload([good[0], odd, good[1]]))
    wait_for(lambda: finished_count(ws) == 3, 60, "3 documents finished")
    worker.wait_for_log("job.processed")
    outcomes = assert_one_outcome_each(ws, {p.name: 1 for p in [*good, odd]}, allow_failed=True)
    assert [outcomes[p.name].state for p in good] == [DocumentState.done] * 2
    assert outcomes[odd.name].state == DocumentState.failed
    assert "MemoryError" in (outcomes[odd.name].error or ""), outcomes[odd.name].error
    assert "MemoryError" in _error_area_note(ws, odd.name)
    assert CRASHED not in worker.log() and worker.alive()
