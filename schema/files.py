"""File idioms every package uses: write or copy atomically, hash a file, list the visible files of a tree.

A file written by docsort appears under its final name complete or not at all: it is written under a
hidden temporary name in the same folder (``.<name>.<pid>.part``), flushed, then renamed over the target.
Readers (the watcher, the review page, a model registry) skip hidden names.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

CHUNK = 1 << 20
_TEMP_NAME = re.compile(r"^\..+\.(\d+)\.part$")  # temp_name: .<name>.<pid>.part


def temp_name(path: Path) -> Path:
    """The hidden temporary name a file is written under before it is renamed to ``path``."""
    return path.with_name(f".{path.name}.{os.getpid()}.part")


def remove_dead_writers_temps(root: Path) -> int:
    """Remove, anywhere under ``root``, the temporary files (:func:`temp_name`) whose writing process is
    gone: a process killed in the middle of a write leaves its hidden ``.part`` file beside the target.
    A file whose process is alive on this machine is left alone. Returns how many were removed."""
    removed = 0
    for folder, _dirs, names in os.walk(root):
        for name in names:
            found = _TEMP_NAME.match(name)
            if found and not _alive(int(found.group(1))):
                (Path(folder) / name).unlink(missing_ok=True)
                removed += 1
    return removed


def _alive(pid: int) -> bool:
    """Whether process ``pid`` runs on this machine (a zombie, killed but not yet reaped, does not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:  # it ended just now, or there is no /proc to tell
        return not Path("/proc").is_dir()
    return stat.rpartition(")")[2].split()[0] != "Z"


def write_atomic(path: Path, write: Callable[[Path], object]) -> Path:
    """Call ``write(tmp)`` to write the file, then rename it to ``path``; no partial file is ever seen."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_name(path)
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def write_bytes_atomic(path: Path, data: bytes) -> Path:
    return write_atomic(path, lambda tmp: tmp.write_bytes(data))


def write_text_atomic(path: Path, text: str) -> Path:
    return write_atomic(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def save_npz(path: Path, arrays: dict[str, Any]) -> None:
    """NumPy arrays into ``path`` as .npz, whatever its suffix (numpy adds ``.npz`` to a bare name)."""
    with open(path, "wb") as handle:
        np.savez(handle, **arrays)


def copy_atomic(source: Path, target: Path) -> Path:
    """Copy ``source`` to ``target`` atomically (the target's folder is created)."""
    return write_atomic(target, lambda tmp: shutil.copyfile(source, tmp))


def sha256_file(path: Path, chunk: int = CHUNK) -> str:
    """The sha256 of a file's bytes, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def is_hidden(path: Path, root: Path) -> bool:
    """True when any part of ``path`` below ``root`` starts with a dot."""
    return any(part.startswith(".") for part in path.relative_to(root).parts)


def visible_files(root: Path) -> Iterator[Path]:
    """The regular files under ``root``, recursively and sorted, hidden files and folders skipped."""
    for path in sorted(root.rglob("*")):
        if path.is_file() and not is_hidden(path, root):
            yield path
