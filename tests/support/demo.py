"""Helpers of the demo tests: run ``docsort demo`` as a subprocess, read its output, find its processes."""

from __future__ import annotations

import os
import re
import sqlite3
import sys
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MARK_VAR = "DEMO_TEST_MARK"
# A run small enough for a test: tiny pages and images, two epochs; half of the validation pages fall
# below the review threshold, so fresh pages land on both sides of it.
TINY = (
    "--per-class", "16", "--inbox-per-class", "4", "--broken", "2", "--page-size", "120x160",
    "--image-size", "32", "--epochs", "2", "--batch-size", "8", "--review-fraction", "0.5",
)  # fmt: skip


def demo_command(workdir: Path, port: int, *args: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "docsort.cli",
        "demo",
        "--workdir",
        str(workdir),
        "--port",
        str(port),
        *TINY,
        *args,
    ]


def demo_env(mark: str) -> dict[str, str]:
    """The test's environment without DOCSORT_* settings, plus a mark every descendant inherits."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOCSORT_")}
    env[MARK_VAR] = mark
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH", "")]))
    return env


def new_mark() -> str:
    return uuid.uuid4().hex


def marked_processes(mark: str) -> list[tuple[int, str]]:
    """(pid, command line) of every process whose environment carries ``mark``."""
    needle = f"{MARK_VAR}={mark}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if needle in (entry / "environ").read_bytes().split(b"\0"):
                cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                found.append((int(entry.name), cmdline))
        except OSError:
            continue
    return found


def outcome_counts(output: str) -> dict[str, int]:
    """The counts of the demo's summary line ``pages: N auto (...), M review, K failed (...)``."""
    match = re.search(r"pages: (\d+) auto .*?, (\d+) review, (\d+) failed", output)
    assert match is not None, f"no summary line in the output:\n{output[-3000:]}"
    return dict(zip(("auto", "review", "failed"), map(int, match.groups()), strict=True))


def prediction_workers(db_file: Path) -> set[str]:
    """The ``worker`` (host:pid) of every prediction in a SQLite database."""
    with sqlite3.connect(db_file) as conn:
        return {row[0] for row in conn.execute("SELECT DISTINCT worker FROM predictions")}
