"""A process killed in the middle of a write leaves its hidden temporary file beside the target; a sweep
removes those of processes that are gone (zombies included) and leaves a live writer's alone."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

from schema.files import remove_dead_writers_temps, temp_name, write_bytes_atomic


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_dead_writers_temp_files_are_removed_and_a_live_ones_kept(tmp_path: Path) -> None:
    folder = tmp_path / "dark" / "2026-12"
    folder.mkdir(parents=True)
    target = folder / "a [1]*.pdf"
    dead = target.with_name(f".{target.name}.{_dead_pid()}.part")
    live = temp_name(target)  # this process's: alive
    zombie_child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    zombie_child.send_signal(signal.SIGKILL)
    time.sleep(0.5)  # killed, not reaped yet: a zombie
    zombie = target.with_name(f".{target.name}.{zombie_child.pid}.part")
    other = tmp_path / ".notes.txt.part"  # not a temp_name (no process id): someone else's
    for path in (dead, live, zombie, other):
        path.write_bytes(b"half")
    try:
        assert remove_dead_writers_temps(tmp_path) == 2
    finally:
        zombie_child.wait()
    assert not dead.exists() and not zombie.exists()
    assert live.exists() and other.exists()
    live.unlink()
    write_bytes_atomic(target, b"whole")
    assert target.read_bytes() == b"whole"
    assert sorted(p.name for p in folder.iterdir()) == [target.name]
