"""The watcher's intake of many files at once, in-process on SQLite and PostgreSQL: each file is opened
and read once (its hash taken while it is staged), the files that settle together are recorded in one
transaction with a number of statements that does not grow with them, and a file the database refuses
fails alone while the rest of its batch is recorded."""

from __future__ import annotations

import hashlib
import os
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, func, select

from ingest.intake import Intake
from ingest.recovery import recover
from ingest.staging import stage_move
from ingest.watch import Watcher
from schema.db import session_scope
from schema.tables import Document, Receipt, SubmissionJob

_OPENS: list[str] = []
_COUNTING: list[bool] = [False]


def _audit(name: str, args: tuple[Any, ...]) -> None:
    if name == "open" and _COUNTING[0] and isinstance(args[0], str | bytes | os.PathLike):
        _OPENS.append(os.fsdecode(args[0]))


sys.addaudithook(_audit)  # audit hooks stay for the process; this one counts only inside `_opens`


@contextmanager
def _opens() -> Iterator[list[str]]:
    """Every path opened (``open``, ``os.open``) by this process meanwhile."""
    _OPENS.clear()
    _COUNTING[0] = True
    try:
        yield _OPENS
    finally:
        _COUNTING[0] = False


def _bytes_read() -> int:
    """Bytes this process has read through read(2) and the like (``rchar`` of ``/proc/self/io``)."""
    for line in Path("/proc/self/io").read_text().splitlines():
        if line.startswith("rchar:"):
            return int(line.split()[1])
    raise AssertionError("no rchar in /proc/self/io")


@contextmanager
def _sql_log(intake: Intake) -> Iterator[list[str]]:
    """The statements run on the intake's engine meanwhile, first words only, and ``COMMIT`` for each
    commit, in order (a failed assertion shows them)."""
    engine = intake.sessions.kw["bind"]
    seen: list[str] = []

    def on_statement(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        seen.append(" ".join(statement.split()[:3]))

    def on_commit(_conn: Any) -> None:
        seen.append("COMMIT")

    hooks: list[tuple[str, Any]] = [("before_cursor_execute", on_statement), ("commit", on_commit)]
    for name, hook in hooks:
        event.listen(engine, name, hook)
    try:
        yield seen
    finally:
        for name, hook in hooks:
            event.remove(engine, name, hook)


def _settled_watcher(intake: Intake) -> Watcher:
    """A watcher on the inbox that has found its files and waited their settle window."""
    watcher = Watcher(intake, [intake.settings.dir("inbox")])
    watcher.scan()
    time.sleep(intake.settings.watch_settle_seconds + 0.05)
    return watcher


def _documents(intake: Intake) -> list[Document]:
    with session_scope(intake.sessions) as s:
        docs = list(s.scalars(select(Document).order_by(Document.filename)))
        s.expunge_all()
    return docs


def test_each_file_is_opened_and_read_once_and_its_staged_copy_has_the_recorded_hash(intake: Intake) -> None:
    inbox = intake.settings.dir("inbox")
    contents = {f"scan-{i}.bin": os.urandom(2_000_000 + i) for i in range(6)}
    for name, data in contents.items():
        (inbox / name).write_bytes(data)
    watcher = _settled_watcher(intake)
    before = _bytes_read()
    with _opens() as opened:
        assert watcher.take_settled() == 6
    read = _bytes_read() - before
    total = sum(len(d) for d in contents.values())
    assert total <= read < 1.25 * total, (read, total)  # read twice would be twice the total
    for name in contents:
        assert len([p for p in opened if p.endswith(name)]) == 1, (
            name,
            opened,
        )  # the staged name ends so too
    docs = _documents(intake)
    assert [d.filename for d in docs] == sorted(contents)
    for doc in docs:
        data = contents[doc.filename]
        staged = Path(doc.stored_path or "")
        assert staged.parent.parent == intake.settings.dir("processing")
        assert (
            doc.sha256 == hashlib.sha256(data).hexdigest() == hashlib.sha256(staged.read_bytes()).hexdigest()
        )
        assert doc.size_bytes == len(data)
    assert not list(inbox.iterdir())


def test_across_file_systems_the_copy_is_hashed_while_written_and_the_original_removed(
    tmp_path: Path,
) -> None:
    shm = Path("/dev/shm")
    if not shm.is_dir() or shm.stat().st_dev == tmp_path.stat().st_dev:
        pytest.skip("no second file system (/dev/shm) beside the test folder")
    src = tmp_path / "scan.pdf"
    data = b"%PDF-1.4\n" + os.urandom(3_000_000)
    src.write_bytes(data)
    with tempfile.TemporaryDirectory(dir=shm) as area, _opens() as opened:
        staged = stage_move(src, Path(area), "mailroom")
        assert staged.sha256 == hashlib.sha256(data).hexdigest()
        assert staged.path.read_bytes() == data and staged.size == len(data)
        assert staged.media_type == "application/pdf" and staged.source_ref == "mailroom"
        assert not src.exists()
        assert [p for p in opened if p == str(src)] == [str(src)]  # the original opened once


def _take(intake: Intake, prefix: str, n: int) -> list[str]:
    inbox = intake.settings.dir("inbox")
    for i in range(n):
        (inbox / f"{prefix}-{i:03d}.bin").write_bytes(os.urandom(3000))
    watcher = _settled_watcher(intake)
    with _sql_log(intake) as seen:
        assert watcher.take_settled() == n
    return seen


def test_files_settled_together_are_recorded_in_one_transaction_whatever_their_number(intake: Intake) -> None:
    few = _take(intake, "few", 4)
    many = _take(intake, "many", 40)  # one batch (50 files at most) and five classify messages
    assert few.count("COMMIT") == many.count("COMMIT") == 2, (few, many)  # the record, then the sent mark
    assert len(few) == len(many) <= 10, (few, many)  # as many statements for 40 files as for 4
    with session_scope(intake.sessions) as s:
        assert s.scalar(select(func.count(SubmissionJob.id))) == 2
        assert s.scalar(select(func.count(Receipt.id))) == 44
        assert s.scalar(select(func.count(Document.id)).where(Document.state == "processing")) == 44


def test_a_file_the_database_refuses_fails_alone_and_recovery_records_it_later(intake: Intake) -> None:
    inbox = intake.settings.dir("inbox")
    for i in range(3):
        (inbox / f"ok-{i}.bin").write_bytes(os.urandom(500))
    (inbox / "dup.bin").write_bytes(b"same content")
    (inbox / "dup-again.bin").write_bytes(b"same content")
    with open(os.fsencode(inbox) + b"/bad-\xe9.bin", "wb") as fh:  # a name that is not UTF-8
        fh.write(b"the bad one")
    watcher = _settled_watcher(intake)
    assert watcher.take_settled() == 5
    names = [d.filename for d in _documents(intake)]
    assert sorted(names) in (["dup-again.bin", "ok-0.bin", "ok-1.bin", "ok-2.bin"],
                             ["dup.bin", "ok-0.bin", "ok-1.bin", "ok-2.bin"])  # fmt: skip
    with session_scope(intake.sessions) as s:
        assert s.scalar(select(func.count(Receipt.id)).where(Receipt.duplicate)) == 1
    left = [p.name for p in intake.area("watch").rglob("*") if p.is_file() and "bad-" in p.name]
    assert len(left) == 1 and left[0].endswith("-bad-_.bin")  # nothing lost: staged, not yet recorded
    assert not list(inbox.iterdir())
    time.sleep(intake.settings.recover_after_seconds + 0.1)
    assert recover(intake).retaken == 1
    assert "bad-_.bin" in [d.filename for d in _documents(intake)]
