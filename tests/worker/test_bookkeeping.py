"""Bookkeeping per job, not per file: a job's files are read, recorded and finished in one transaction
per step, so the commits of a job grow only with the documents it delivers (each delivery is committed
at once, so no destination is written twice), and the statements per file stay bounded. Counted on the
database engine over real runs."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import event

from schema.messages import ClassifyJob, DocumentRef
from tests.support.jobs import admitted
from tests.support.worker import write_page
from worker.context import JobOutcome, WorkerContext
from worker.runner import run_job

STATEMENTS_PER_FILE = 5  # measured: a one-page file routed automatically (SQLite); 17 when each file's
# rows were written by statements of their own, 20 before that
PER_JOB = ("INSERT INTO pages", "INSERT INTO predictions", "INSERT INTO routing_decisions")


@contextmanager
def _counted(ctx: WorkerContext) -> Iterator[dict[str, int]]:
    engine = ctx.sessions.kw["bind"]
    counts = {"statements": 0, "commits": 0, **dict.fromkeys(PER_JOB, 0)}

    def statement(_conn: Any, _cursor: Any, sql: str, *_: Any) -> None:
        counts["statements"] += 1
        for start in PER_JOB:
            counts[start] += sql.lstrip().startswith(start)

    def commit(*_: Any) -> None:
        counts["commits"] += 1

    event.listen(engine, "before_cursor_execute", statement)
    event.listen(engine, "commit", commit)
    try:
        yield counts
    finally:
        event.remove(engine, "before_cursor_execute", statement)
        event.remove(engine, "commit", commit)


def _run(ctx: WorkerContext, folder: Path, greys: list[int]) -> tuple[JobOutcome, dict[str, int]]:
    folder.mkdir()
    paths = [write_page(folder / f"p{i}.png", g, size=(120 + i, 160)) for i, g in enumerate(greys)]
    job = admitted(
        ctx.sessions, ClassifyJob(documents=[DocumentRef(path=str(p)) for p in paths]), ctx.settings
    )
    with _counted(ctx) as counts:
        outcome = run_job(ctx, job)
    return outcome, counts


def test_commits_of_a_job_grow_only_with_its_deliveries(ctx: WorkerContext, tmp_path: Path) -> None:
    small, few = _run(ctx, tmp_path / "two", [0, 255])
    large, many = _run(ctx, tmp_path / "six", [2, 4, 6, 250, 252, 254])
    assert (small.auto, large.auto) == (2, 6), (small, large)
    print(f"2 files: {few}; 6 files: {many}")
    assert many["commits"] - few["commits"] == large.auto - small.auto  # one commit per delivery, no more
    extra = (many["statements"] - few["statements"]) / 4
    assert extra <= STATEMENTS_PER_FILE, f"{extra:.1f} statements per extra file"
    for start in PER_JOB:  # the job's pages, predictions and decisions: one statement each, any file count
        assert few[start] == many[start] == 1, (start, few[start], many[start])
