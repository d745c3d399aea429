"""The poison-page guard on every supported broker: a page that kills the decoding process each time is
dead-lettered after a bounded number of crashes on Redis and on RabbitMQ alike (the crashes are counted
in the database, not in the broker), and the rest of its batch is sorted."""

from __future__ import annotations

import os
import random
from collections.abc import Iterator
from pathlib import Path

import pytest
from kombu import Connection

from schema import db
from schema.enums import DocumentState
from schema.files import sha256_file
from schema.tables import CrashCount
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
CRASHED = "exited with 'signal 11"
RABBITMQ_URL = os.environ.get("TEST_RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672//")


def _rabbitmq_answers(url: str) -> bool:
    try:
        with Connection(url, connect_timeout=3) as conn:
            conn.ensure_connection(max_retries=1)
        return True
    except Exception:
        return False


@pytest.fixture(params=["redis", "rabbitmq"])
def broker_url(request: pytest.FixtureRequest, redis_url: str, shared_queue: str) -> Iterator[str]:
    """The shared Redis, or the RabbitMQ service (its queue deleted at the end)."""
    if request.param == "redis":
        yield redis_url
        return
    if not _rabbitmq_answers(RABBITMQ_URL):
        pytest.skip(f"no RabbitMQ at {RABBITMQ_URL} (start it: service rabbitmq-server start)")
    yield RABBITMQ_URL
    with Connection(RABBITMQ_URL) as conn:
        conn.default_channel.queue_delete(shared_queue)


@pytest.fixture
def injected(monkeypatch: pytest.MonkeyPatch) -> None:
    """Workers started in this test load the decoder faults."""
    monkeypatch.setenv(
        "PYTHONPATH", os.pathsep.join(filter(None, [str(INJECT), os.environ.get("PYTHONPATH")]))
    )


def _crash_rows(database_url: str) -> list[CrashCount]:
    engine = db.make_engine(database_url)
    try:
        with db.make_sessionmaker(engine)() as s:
            return list(s.query(CrashCount))
    finally:
        engine.dispose()


def test_poison_page_is_dead_lettered_after_bounded_crashes_on_every_broker(
    injected: None,
    broker_url: str,
    docsort_worker: StartWorker,
    pg_db_url: str,
    shared_queue: str,
    tmp_path: Path,
) -> None:
    ws = fault_settings(tmp_path / "data", pg_db_url, broker_url)
    inbox = tmp_path / "in"
    inbox.mkdir()
    good = [write_scan(inbox / f"good{i}.png", (0, 255)[i], i, (600, 800)) for i in range(2)]
    poison = write_scan(inbox / "poison-crash.png", 0, random.randrange(2**32), (600, 800))
    worker = docsort_worker(ws, queue=shared_queue)
    send_classify(ws.broker_url, shared_queue, job_payload([good[0], poison, good[1]]))
    wait_for(lambda: finished_count(ws) == 3, 180, "3 documents finished")
    worker.wait_for_log("job.processed")
    outcomes = assert_one_outcome_each(ws, {p.name: 1 for p in [*good, poison]}, allow_failed=True)
    assert [outcomes[p.name].state for p in good] == [DocumentState.done] * 2
    dead = outcomes[poison.name]
    assert dead.state == DocumentState.failed and "dead-lettered" in (dead.error or ""), dead.error
    crashes = worker.log().count(CRASHED)
    assert crashes == MAX_DECODE_CRASHES, f"{crashes} crashes before the page was set aside"
    assert worker.alive()
    # the deaths were counted in the database; what stays is the poison's own count (it is not decoded
    # again), never a count of the job's message or of the pages that decoded
    rows = {r.key: r.count for r in _crash_rows(ws.database_url)}
    assert rows == {f"decode:{sha256_file(poison)}": MAX_DECODE_CRASHES + 1}, rows
