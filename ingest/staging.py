"""Bringing a file into the processing area, atomically, and learning its sha256 and media type.

A staged file lives at ``<processing>/<door>/<tag>/<token>-<name>``: the door (``watch``, ``api``,
``submit``), the watch subfolder tag (watch only), a random token that keeps names unique, and the
original name. A half-copied file only ever exists under a dot name ending in ``.part``, which nothing
else takes; the final name appears with one ``rename``.
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from schema.errors import DocsortError
from worker.imaging import sniff_media_type

CHUNK = 1 << 20
TOKEN_RE = re.compile(r"^[0-9a-f]{12}-.+")
_UNSAFE = re.compile(r"[^A-Za-z0-9._ ()+,=@-]+")


class IntakeError(DocsortError):
    """A file could not be taken in (not found, unreadable, too large, outside the allowed root)."""


class UploadTooLarge(IntakeError):
    """An upload passed the configured size limit."""


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


def _copy_hashing(src: BinaryIO, temp: Path, limit: int | None = None) -> tuple[str, int, bytes]:
    """Copy ``src`` to ``temp`` (fsynced) while hashing; return sha256, size and the first bytes."""
    digest = hashlib.sha256()
    size = 0
    head = b""
    with temp.open("xb") as out:
        while block := src.read(CHUNK):
            size += len(block)
            if limit is not None and size > limit:
                raise UploadTooLarge(f"upload is larger than the limit of {limit} bytes")
            if len(head) < 16:
                head += block[: 16 - len(head)]
            digest.update(block)
            out.write(block)
        out.flush()
        os.fsync(out.fileno())
    return digest.hexdigest(), size, head


def hash_file(path: Path) -> tuple[str, int, bytes]:
    """sha256, size and first bytes of a file."""
    digest = hashlib.sha256()
    size = 0
    head = b""
    with path.open("rb") as fh:
        while block := fh.read(CHUNK):
            if not head:
                head = block[:16]
            size += len(block)
            digest.update(block)
    return digest.hexdigest(), size, head


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


def stage_copy(src: Path, area: Path, source_ref: str | None = None) -> Staged:
    """Copy a file (``docsort submit``, API paths) into the area; the original stays where it is."""
    try:
        with src.open("rb") as fh:
            return stage_copy_stream(fh, area, src.name, source_ref if source_ref is not None else str(src))
    except FileNotFoundError as exc:
        raise IntakeError(f"{src}: file not found") from exc
    except IsADirectoryError as exc:
        raise IntakeError(f"{src}: is a folder, not a file") from exc
    except PermissionError as exc:
        raise IntakeError(f"{src}: permission denied") from exc


def stage_move(src: Path, area: Path, tag: str) -> Staged:
    """Move a watched file into ``area/<tag>/``: one rename, or copy-then-rename-then-unlink across disks."""
    dest = staged_destination(area, src.name, safe_tag(tag))
    try:
        os.rename(src, dest)
    except FileNotFoundError as exc:
        raise IntakeError(f"{src}: vanished before it could be taken") from exc
    except OSError as exc:
        if exc.errno != 18:  # EXDEV: processing area on another file system
            raise IntakeError(f"{src}: cannot be moved into the processing area ({exc.strerror})") from exc
        temp = _temp_beside(dest)
        try:
            with src.open("rb") as fh:
                _copy_hashing(fh, temp)
            os.replace(temp, dest)
        except BaseException:
            temp.unlink(missing_ok=True)
            raise
        src.unlink()
    return describe_staged(dest, src.name, safe_tag(tag))


def describe_staged(path: Path, filename: str, source_ref: str) -> Staged:
    """Hash a file that is already in the processing area."""
    try:
        sha, size, head = hash_file(path)
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
