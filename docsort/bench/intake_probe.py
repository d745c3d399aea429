"""One measured intake, run in its own process by ``docsort bench intake`` (``python intake_probe.py
JSON``): the watcher of the docsort found on ``PYTHONPATH`` takes files already settled in its watch
folder, and the run writes what it cost, as JSON, to the file its arguments name.

The probe uses only what every docsort since the watcher's first version has (the settings, the intake,
the watcher's ``scan`` and ``take_settled``), so that another checkout's code can be measured with it
side by side. The watcher first takes a few small files untimed (imports, broker connection, database
pool); then the prepared files are renamed into the watch folder, found by one scan, left to settle,
and taken by ``take_settled`` under the clock. CPU is this process's user + system time (all its
threads) over the timed part: the database server's and Redis's own CPU are not in it.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

WARM_FILES = 8


def measure(args: dict[str, Any]) -> dict[str, Any]:
    from sqlalchemy import event

    from ingest.intake import Intake
    from ingest.sender import CelerySender
    from ingest.settings import IngestSettings
    from ingest.watch import Watcher
    from schema import db

    settle = float(args["settle"])
    settings = IngestSettings(
        data_dir=Path(args["data_dir"]),
        database_url=args["database_url"],
        broker_url=args["broker_url"],
        queue=args["queue"],
        watch_settle_seconds=settle,
    )
    engine = db.make_engine(settings.database_url)
    counts = {"statements": 0, "commits": 0}

    def statement(*_: Any) -> None:
        counts["statements"] += 1

    def commit(*_: Any) -> None:
        counts["commits"] += 1

    sender = CelerySender(settings.broker_url, settings.job_queue)
    intake = Intake(settings, db.make_sessionmaker(engine), sender)
    inbox = settings.dir("inbox")
    inbox.mkdir(parents=True, exist_ok=True)
    watcher = Watcher(intake, [inbox])
    warm = inbox / "warm-up"
    warm.mkdir()
    for i in range(WARM_FILES):
        (warm / f"warm-{i}.bin").write_bytes(os.urandom(4096))
    watcher.scan()
    time.sleep(settle)
    warm_taken = watcher.take_settled()
    side = Path(args["files_dir"])
    names = sorted(os.listdir(side))
    for name in names:
        os.rename(side / name, inbox / name)
    watcher.scan()
    time.sleep(settle)
    event.listen(engine, "before_cursor_execute", statement)
    event.listen(engine, "commit", commit)
    cpu, started = time.process_time(), time.perf_counter()
    taken = 0
    while taken < len(names) and time.perf_counter() - started < float(args["timeout"]):
        taken += watcher.take_settled()
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    sender.close()
    engine.dispose()
    return {
        "files": len(names),
        "taken": taken,
        "warm_taken": warm_taken,
        "seconds": seconds,
        "cpu_seconds": cpu,
        "statements": counts["statements"],
        "commits": counts["commits"],
        "batch_files": settings.watch_batch_files,
    }


if __name__ == "__main__":
    given = json.loads(sys.argv[1])
    Path(given["result_file"]).write_text(json.dumps(measure(given)))
