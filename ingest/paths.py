"""The one rule every door applies to a path it is given: a regular file, under a configured root.

A path is resolved once (every symlink above it followed), checked to lie under one of the roots, then
opened with ``O_NOFOLLOW`` (a last component swapped for a symlink after the check is refused) and
``O_NONBLOCK`` (a FIFO cannot hang the door), and the opened descriptor is checked: a regular file, no
larger than the limit, and (where ``/proc`` shows it) still under the root. Only what was opened is read.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from ingest.errors import IntakeError


class PathRefused(IntakeError):
    """A path a door will not read: outside its roots, a symlink, not a regular file, or too large."""

    def __init__(self, name: str | Path, reason: str) -> None:
        super().__init__(f"{name}: {reason}")
        self.name = str(name)
        self.reason = reason


def real_roots(roots: Sequence[Path]) -> list[Path]:
    """The roots with every symlink resolved (compared against resolved paths)."""
    return [Path(os.path.realpath(r)) for r in roots]


def under_roots(path: Path, roots: Sequence[Path]) -> Path | None:
    """The root ``path`` (already resolved) lies under, if any."""
    return next((r for r in roots if path.is_relative_to(r)), None)


def resolve_under(
    raw: str | Path, roots: Sequence[Path], base: Path | None = None, what: str = "the allowed roots"
) -> Path:
    """``raw`` (relative to ``base`` when not absolute) resolved; :class:`PathRefused` outside ``roots``."""
    candidate = Path(raw)
    if "\0" in str(raw):
        raise PathRefused(repr(raw), "a path may not hold a NUL character")
    full = candidate if candidate.is_absolute() or base is None else base / candidate
    real = Path(os.path.realpath(full))
    if under_roots(real, roots) is None:
        names = ", ".join(str(r) for r in roots) or "none configured"
        raise PathRefused(raw, f"path is outside {what} ({names})")
    return real


def kind_of(mode: int) -> str:
    if stat.S_ISLNK(mode):
        return "a symbolic link"
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "not a regular file"


def check_size(name: str | Path, size: int, max_bytes: int | None) -> None:
    if max_bytes is not None and size > max_bytes:
        raise PathRefused(name, f"{size} bytes is larger than the limit of {max_bytes} bytes")


@contextmanager
def open_regular(
    path: Path, roots: Sequence[Path] | None = None, max_bytes: int | None = None, shown: str | None = None
) -> Iterator[tuple[BinaryIO, os.stat_result]]:
    """Open ``path`` for reading as the module says; yields the file and its ``fstat``."""
    name = shown or str(path)
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError as exc:
        raise PathRefused(name, "file not found") from exc
    except OSError as exc:
        if os.path.islink(path):
            raise PathRefused(name, "is a symbolic link (refused)") from exc
        raise PathRefused(name, f"cannot be read ({exc.strerror or exc})") from exc
    fh = os.fdopen(fd, "rb")
    with fh:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise PathRefused(name, f"is {kind_of(st.st_mode)}, not a regular file (refused)")
        check_size(name, st.st_size, max_bytes)
        if roots is not None:
            fd_link = Path(f"/proc/self/fd/{fd}")  # Linux; elsewhere the resolved path stands
            opened = Path(os.path.realpath(fd_link)) if fd_link.exists() else path
            if under_roots(opened, real_roots(roots)) is None:
                raise PathRefused(name, "path is outside the allowed roots")
        os.set_blocking(fd, True)
        yield fh, st


def walk_regular(folder: Path, ignored: Callable[[str], bool], limit: int) -> Iterator[Path]:
    """Regular files under ``folder`` in sorted order, names ``ignored(name)`` skipped, never following a
    link; :class:`PathRefused` for a link, FIFO or device inside, or once more than ``limit`` are found."""
    found = 0
    stack = [folder]
    while stack:
        here = stack.pop()
        with os.scandir(here) as it:
            entries = sorted(it, key=lambda e: e.name)
        folders: list[Path] = []
        for entry in entries:
            if ignored(entry.name):
                continue
            if entry.is_dir(follow_symlinks=False):
                folders.append(Path(entry.path))
                continue
            mode = entry.stat(follow_symlinks=False).st_mode
            if not stat.S_ISREG(mode):
                raise PathRefused(entry.path, f"is {kind_of(mode)}, not a regular file (refused)")
            found += 1
            if found > limit:
                raise PathRefused(folder, f"holds more than the limit of {limit} files")
            yield Path(entry.path)
        stack.extend(reversed(folders))
