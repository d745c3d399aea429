"""Watch folders: take each file once it is complete, move it into the processing area, record and send it.

A file is a candidate from the moment it is seen (inotify event, polling, the scan at start or the
periodic rescan). It is taken only when its size, mtime and inode have held still for the settle window
and it can be opened for reading. Temporary names (``*.part``, ``*.tmp``, ``~*``) and dot files are
never taken. A file's subfolder under the watch folder becomes its source tag. A symlink, FIFO, device or
a file larger than ``DOCSORT_MAX_FILE_BYTES`` is refused (logged once, left where it is).
"""

from __future__ import annotations

import os
import socket
import stat
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import watchfiles
from sqlalchemy.exc import OperationalError

from ingest.intake import Intake, NotSent
from ingest.paths import PathRefused
from ingest.recovery import recover
from ingest.staging import IntakeError, NotReadable, Staged, check_movable, stage_move
from schema.enums import Source
from schema.logs import get_logger
from worker.routing import RoutingRules

log = get_logger(__name__)
TICK_SECONDS = 0.25
IGNORED_SUFFIXES = (".part", ".tmp")


def _under(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


def _database_away(exc: BaseException) -> bool:
    """A fault of the database itself (down, locked), which recording the files one by one cannot help."""
    return isinstance(exc.__cause__, OperationalError) or isinstance(exc, OperationalError)


def ignored_name(name: str) -> bool:
    """Names a scanner or copier uses while it writes, and hidden files."""
    return name.startswith((".", "~")) or name.lower().endswith(IGNORED_SUFFIXES)


@dataclass
class _Candidate:
    key: tuple[int, int, int]
    stable_since: float


class Watcher:
    """Watches ``roots`` until ``stop`` is set. One thread; ``run`` blocks."""

    def __init__(
        self,
        intake: Intake,
        roots: list[Path],
        *,
        poll: bool = False,
        stop: threading.Event | None = None,
    ) -> None:
        self.intake = intake
        self.settings = intake.settings
        self.roots = [r.resolve() for r in roots]
        self.poll = poll
        self.stop = stop or threading.Event()
        self.candidates: dict[Path, _Candidate] = {}
        self.refused: dict[Path, tuple[int, int, int]] = {}  # files refused, with the key they had
        self.excluded = [
            self.settings.dir(n).resolve() for n in ("processing", "archive", "error", "outbox", "review")
        ]
        self.submitted_by = f"watch@{socket.gethostname()}"
        self.rules = RoutingRules.load(self.settings.routes_file)
        self.taken = 0

    # --- what is a candidate ---------------------------------------------------------------------
    # Compared as strings: the watcher asks this of every event and every rescanned file.
    def _excluded(self, path: Path) -> bool:
        return any(_under(str(path), str(x)) for x in self.excluded)

    def _root_of(self, path: Path) -> Path | None:
        text = str(path)
        return next((root for root in self.roots if _under(text, str(root))), None)

    def wanted(self, path: Path) -> bool:
        root = self._root_of(path)
        if root is None or self._excluded(path):
            return False
        below = str(path)[len(str(root)) + 1 :]
        return not any(ignored_name(part) for part in below.split(os.sep) if part)

    def consider(self, path: Path) -> None:
        if path in self.candidates or not self.wanted(path):
            return
        try:
            st = path.lstat()
        except OSError:
            return
        if stat.S_ISDIR(st.st_mode):  # a folder appeared: its files may have come before the watch on it did
            for folder, dirs, files in os.walk(path):
                dirs[:] = [d for d in dirs if not ignored_name(d)]
                for name in files:
                    self.consider(Path(folder) / name)
            return
        key = (st.st_size, st.st_mtime_ns, st.st_ino)
        try:
            check_movable(path, self.settings.max_file_bytes, st)
        except PathRefused as exc:
            if self.refused.get(path) != key:  # said once per file, not at every rescan
                self.refused[path] = key
                log.warning("file.refused", path=str(path), reason=exc.reason)
            return
        self.refused.pop(path, None)
        self.candidates[path] = _Candidate(key, time.monotonic())

    def _walk(self) -> Iterator[Path]:
        for root in self.roots:
            for folder, dirs, files in os.walk(root):
                here = Path(folder)
                dirs[:] = [d for d in dirs if not ignored_name(d) and not self._excluded(here / d)]
                yield from (here / d for d in dirs if (here / d).is_symlink())  # refused, never walked
                for name in files:
                    if not ignored_name(name):
                        yield here / name

    def scan(self) -> None:
        """Make every file now in the watch folders a candidate (start, rescan)."""
        for path in self._walk():
            self.consider(path)

    # --- taking settled files ----------------------------------------------------------------------
    def _settled(self, path: Path, cand: _Candidate, now: float) -> bool:
        try:
            st = path.lstat()
        except OSError:
            self.candidates.pop(path, None)
            return False
        key = (st.st_size, st.st_mtime_ns, st.st_ino)
        if key != cand.key:
            cand.key, cand.stable_since = key, now
            return False
        # Whether it can be read is learnt when it is taken: staging opens it once, before moving it.
        return now - cand.stable_since >= self.settings.watch_settle_seconds

    def settled_files(self) -> list[Path]:
        now = time.monotonic()
        ready = [p for p, c in list(self.candidates.items()) if self._settled(p, c, now)]
        return sorted(ready, key=lambda p: self.candidates[p].stable_since)

    def take_settled(self) -> int:
        """Take every settled candidate, in batches; stops between batches when asked to stop."""
        ready = self.settled_files()
        batch_size = self.settings.watch_batch_files
        taken = 0
        for start in range(0, len(ready), batch_size):
            if self.stop.is_set():
                break
            taken += self._take_batch(ready[start : start + batch_size])
        return taken

    def _take_batch(self, paths: list[Path]) -> int:
        """Stage each file (a file refused or unreadable fails alone), then record them as one job."""
        area = self.intake.area("watch")
        staged: list[Staged] = []
        for path in paths:
            cand = self.candidates.pop(path, None)
            root = self._root_of(path)
            if root is None:
                continue
            tag = path.parent.relative_to(root).as_posix()
            tag = "" if tag == "." else tag
            try:
                moved = stage_move(path, area, tag, self.settings.max_file_bytes)
            except NotReadable as exc:  # tried again once it has held still another settle window
                if cand is not None:
                    self.candidates[path] = replace(cand, stable_since=time.monotonic())
                log.warning("file not taken yet", path=str(path), reason=str(exc))
                continue
            except PathRefused as exc:
                log.warning("file.refused", path=str(path), reason=exc.reason)
                continue
            except IntakeError as exc:
                log.warning("file not taken", path=str(path), reason=str(exc))
                continue
            staged.append(replace(moved, split=self.rules.split_for(tag)))
        return self._record(staged)

    def _record(self, staged: list[Staged]) -> int:
        """Record staged files as one job; when the batch is refused for what one of its files holds (not
        for the database being away), each file is recorded alone, so that only the bad one fails."""
        if not staged:
            return 0
        try:
            result = self.intake.take(staged, source=Source.watch, submitted_by=self.submitted_by)
        except NotSent as exc:  # recorded: recovery sends it
            log.error("batch recorded but not sent; recovery will send it", files=len(staged), error=str(exc))
        except Exception as exc:
            if len(staged) > 1 and not _database_away(exc):
                log.warning(
                    "batch not recorded; recording its files one by one", files=len(staged), error=str(exc)
                )
                return sum(self._record([item]) for item in staged)
            # The files are in the processing area: recovery records them once the fault is gone.
            paths = [str(item.path) for item in staged[:3]]
            log.error(
                "batch not recorded; recovery will retry", files=len(staged), paths=paths, error=str(exc)
            )
            return 0
        else:
            log.info("taken", job_id=result.job_id, files=len(staged), duplicates=result.n_duplicate)
        self.taken += len(staged)
        return len(staged)

    # --- loops -------------------------------------------------------------------------------------
    def _recover(self) -> None:
        try:
            recover(self.intake)
        except Exception as exc:
            log.error("recovery failed; retried at the next rescan", error=str(exc))

    def run(self) -> None:
        """Watch until ``stop`` is set."""
        for root in self.roots:
            root.mkdir(parents=True, exist_ok=True)
        log.info("watching", roots=[str(r) for r in self.roots], poll=self.poll)
        self._recover()
        self.scan()
        last_rescan = time.monotonic()
        changes_iter = watchfiles.watch(
            *self.roots,
            watch_filter=lambda _change, p: self.wanted(Path(p)),
            debounce=200,
            step=50,
            stop_event=self.stop,
            rust_timeout=int(TICK_SECONDS * 1000),
            yield_on_timeout=True,
            raise_interrupt=False,
            force_polling=self.poll,
            poll_delay_ms=self.settings.watch_poll_ms,
        )
        for changes in changes_iter:
            for change, raw in changes:
                path = Path(raw)
                if change == watchfiles.Change.deleted:
                    self.candidates.pop(path, None)
                else:
                    self.consider(path)
            if time.monotonic() - last_rescan >= self.settings.watch_rescan_seconds:
                self._recover()
                self.scan()
                last_rescan = time.monotonic()
            self.take_settled()
            if self.stop.is_set():
                break
        log.info("watch stopped", taken=self.taken)

    def run_once(self, timeout: float) -> int:
        """Take what is in the folders now, waiting for each file to settle; then return."""
        self._recover()
        self.scan()
        deadline = time.monotonic() + timeout
        while self.candidates and not self.stop.is_set() and time.monotonic() < deadline:
            self.take_settled()
            if self.candidates:
                time.sleep(TICK_SECONDS)
        return self.taken
