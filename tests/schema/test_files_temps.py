"""A process killed in the middle of a write leaves its hidden temporary file beside the target; the
next writer of that target removes it, and leaves alone the temporary file of a process still alive."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from schema.files import remove_dead_writers_temps, temp_name, write_bytes_atomic


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_a_dead_writers_temp_file_is_removed_and_a_live_ones_kept(tmp_path: Path) -> None:
    target = tmp_path / "a [1]*.pdf"  # glob's special characters in the name are taken literally
    dead = target.with_name(f".{target.name}.{_dead_pid()}.part")
    live = temp_name(target)  # this process's: alive
    other = tmp_path / f".other.pdf.{_dead_pid()}.part"  # another target's
    for path in (dead, live, other):
        path.write_bytes(b"half")
    assert remove_dead_writers_temps(target) == 1
    assert not dead.exists() and live.exists() and other.exists()
    live.unlink()
    write_bytes_atomic(target, b"whole")
    assert target.read_bytes() == b"whole"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([target.name, other.name])
