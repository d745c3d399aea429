"""Bringing a file into the processing area, atomically, and learning its sha256 and media type.

A staged file lives at ``<processing>/<door>/<tag>/<token>-<name>``: the door (``watch``, ``api``,
``submit``), the watch subfolder tag (watch only), a random token that keeps names unique, and the
original name. A half-copied file only ever exists under a dot name ending in ``.part``, which nothing
else takes; the final name appears with one ``rename``.
"""

from __future__ import annotations

import errno
import hashlib
import os
import re
import secrets
import stat
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from ingest.errors import IntakeError, UploadTooLarge
from ingest.paths import PathRefused, check_size, kind_of, open_regular
from worker.imaging import sniff_media_type

CHUNK = 1 << 20
TOKEN_RE = re.compile(r"^[0-9a-f]{12}-.+")
_UNSAFE = re.compile(r"[^A-Za-z0-9._ ()+,=@-]+")


class NotReadable(IntakeError):
    """A watched file that can be opened but not read yet (locked, or on a share that is not ready)."""


@dataclass(frozen=True)
class Staged:
    """A file in the processing area, with what the records need to know of it."""

    path: Path
    sha256: str
    size: int
    filename: str
    source_ref: str
    media_type: str | None
    split: str | None = None  # separation rules its door chose for it (schema.split); None: the default


def safe_name(name: str) -> str:
    """A file name that cannot leave its folder or hide itself: unsafe characters become ``_``."""
    base = Path(name.replace("\\", "/")).name
    cleaned = _UNSAFE.sub("_", base).strip(" .") or "file"
    return cleaned[:200]


def safe_tag(tag: str) -> str:
    """A subfolder tag made of safe names, ``/`` between them; never ``..`` or absolute."""
    parts = [safe_name(p) for p in tag.replace("\\", "/").split("/") if p not in ("", ".", "..")]
    return "/".join(parts)


def staged_destination(area: Path, filename: str, tag: str = "") -> Path:
    folder = area / tag if tag else area
    folder.mkdir(parents=True, exist_ok=True)
    return folder / f"{secrets.token_hex(6)}-{safe_name(filename)}"


def _temp_beside(dest: Path) -> Path:
    return dest.with_name(f".{dest.name}.{secrets.token_hex(4)}.part")


def _hash_stream(
    src: BinaryIO, out: BinaryIO | None = None, limit: int | None = None, first: bytes = b""
) -> tuple[str, int, bytes]:
    """Read ``src`` to its end once, hashing it (and writing it to ``out``); sha256, size, first bytes.
    ``first``: a block already read from ``src``, taken before the rest."""
    digest = hashlib.sha256()
    size = 0
    head = b""
    while block := first or src.read(CHUNK):
        first = b""
        size += len(block)
        if limit is not None and size > limit:
            raise UploadTooLarge(f"upload is larger than the limit of {limit} bytes")
        if len(head) < 16:
            head += block[: 16 - len(head)]
        digest.update(block)
        if out is not None:
            out.write(block)
    return digest.hexdigest(), size, head


def _copy_hashing(
    src: BinaryIO, temp: Path, limit: int | None = None, first: bytes = b""
) -> tuple[str, int, bytes]:
    """Copy ``src`` to ``temp`` (fsynced) while hashing; return sha256, size and the first bytes."""
    with temp.open("xb") as out:
        found = _hash_stream(src, out, limit, first)
        out.flush()
        os.fsync(out.fileno())
    return found


def hash_file(path: Path) -> tuple[str, int, bytes]:
    """sha256, size and first bytes of a regular file (a symlink or FIFO is refused, never followed)."""
    with open_regular(path) as (fh, _st):
        return _hash_stream(fh)


def stage_copy_stream(
    src: BinaryIO, area: Path, filename: str, source_ref: str, limit: int | None = None
) -> Staged:
    """Copy a stream into the area under a new unique name; the original is left as it was."""
    dest = staged_destination(area, filename)
    temp = _temp_beside(dest)
    try:
        sha, size, head = _copy_hashing(src, temp, limit)
        os.replace(temp, dest)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    return Staged(dest, sha, size, filename, source_ref, sniff_media_type(head))


def stage_copy(src: Path, area: Path, source_ref: str | None = None, max_bytes: int | None = None) -> Staged:
    """Copy a regular file (``docsort submit``) into the area; the original stays where it is."""
    with open_regular(src, max_bytes=max_bytes) as (fh, _st):
        ref = source_ref if source_ref is not None else str(src)
        return stage_copy_stream(fh, area, src.name, ref, limit=max_bytes)


def check_movable(src: Path, max_bytes: int | None, st: os.stat_result | None = None) -> None:
    """A watched file is taken only as a regular file (not a link, FIFO or device) within the size limit.
    ``st``: its ``lstat``, when the caller has it."""
    try:
        st = st or src.lstat()
    except FileNotFoundError as exc:
        raise IntakeError(f"{src}: vanished before it could be taken") from exc
    if not stat.S_ISREG(st.st_mode):
        raise PathRefused(src, f"is {kind_of(st.st_mode)}, not a regular file (refused)")
    check_size(src, st.st_size, max_bytes)


def stage_move(src: Path, area: Path, tag: str, max_bytes: int | None = None) -> Staged:
    """Move a watched file into ``area/<tag>/`` and hash it, reading its bytes once.

    The file is opened first (a link, FIFO or device is refused, never followed, and so is a file over
    the size limit), then renamed, and hashed through the descriptor opened before the rename; across
    file systems it is copied while it is hashed, then the original is removed. A file swapped for
    another between the open and the rename is put back where it was, and refused."""
    safe = safe_tag(tag)
    with open_regular(src, max_bytes=max_bytes) as (fh, st):
        try:
            first = fh.read(CHUNK)  # a file that cannot be read yet stays where it is
        except OSError as exc:
            raise NotReadable(f"{src}: cannot be read yet ({exc.strerror or exc})") from exc
        dest = staged_destination(area, src.name, safe)
        try:
            os.rename(src, dest)
        except FileNotFoundError as exc:
            raise IntakeError(f"{src}: vanished before it could be taken") from exc
        except OSError as exc:
            if exc.errno != errno.EXDEV:  # the processing area is on the same file system, or this
                raise IntakeError(
                    f"{src}: cannot be moved into the processing area ({exc.strerror})"
                ) from exc
            sha, size, head = _copy_across(fh, first, st, src, dest)
        else:
            _check_moved(src, dest, st)
            try:
                sha, size, head = _hash_stream(fh, first=first)
            except OSError as exc:  # recorded by recovery once it can be read
                raise IntakeError(f"{dest}: cannot be read ({exc.strerror or exc})") from exc
    return Staged(dest, sha, size, src.name, safe, sniff_media_type(head))


def _same_file(a: os.stat_result, b: os.stat_result) -> bool:
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)


def _check_moved(src: Path, dest: Path, opened: os.stat_result) -> None:
    """The renamed file must be the one opened; anything else goes back to its place and is refused."""
    moved = os.lstat(dest)
    if not _same_file(moved, opened) or not stat.S_ISREG(moved.st_mode):
        os.rename(dest, src)
        what = "another file" if stat.S_ISREG(moved.st_mode) else kind_of(moved.st_mode)
        raise PathRefused(src, f"was replaced by {what} while it was taken (refused)")


def _copy_across(
    fh: BinaryIO, first: bytes, opened: os.stat_result, src: Path, dest: Path
) -> tuple[str, int, bytes]:
    """Copy the opened file to ``dest`` on another file system while hashing it, then remove the
    original (unless the name now holds another file, which is left for its own intake)."""
    temp = _temp_beside(dest)
    try:
        found = _copy_hashing(fh, temp, first=first)
        os.replace(temp, dest)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    try:
        if _same_file(os.lstat(src), opened):
            src.unlink()
    except FileNotFoundError:
        pass
    return found


def describe_staged(path: Path, filename: str, source_ref: str) -> Staged:
    """Hash a file that is already in the processing area."""
    try:
        sha, size, head = hash_file(path)
    except PathRefused:
        raise
    except OSError as exc:
        raise IntakeError(f"{path}: cannot be read ({exc.strerror or exc})") from exc
    return Staged(path, sha, size, filename, source_ref, sniff_media_type(head))


def original_name(staged_path: Path) -> str:
    """The name a file had before staging (``<token>-`` removed)."""
    name = staged_path.name
    return name[13:] if TOKEN_RE.match(name) else name


def iter_staged_files(area: Path) -> Iterable[Path]:
    """Every finished staged file under ``area`` (temporary ``.part`` files are not)."""
    if not area.is_dir():
        return
    for root, dirs, files in os.walk(area):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        for name in files:
            if TOKEN_RE.match(name):
                yield Path(root) / name


def iter_temp_files(area: Path) -> Iterable[Path]:
    """Half-written copies left by an interrupted door."""
    if not area.is_dir():
        return
    for root, _dirs, files in os.walk(area):
        for name in files:
            if name.startswith(".") and name.endswith(".part"):
                yield Path(root) / name
