"""``docsort bench intake``: the watcher's intake alone, in files per second and CPU per file.

Each run is one process (:mod:`docsort.bench.intake_probe`) on a fresh database (SQLite file, or a new
database on a PostgreSQL server) and a fresh Redis queue; no worker runs. ``--compare TREE`` measures
another checkout of docsort (for instance the commit before a change) with the same probe, interleaved
with this one round by round, so that the load of a shared machine falls on both alike; each figure is
the median of its rounds.

The files: the A4 mix (``--a4``) or a folder's page files; more files than the folder has are made by
repeating them with a distinct trailer of a few bytes, so that every file is new content (made once per
count and kept in the temporary folder). They are hard-linked into each run's watch folder; as when a
scanner has just written them, they are in the page cache.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from docsort.bench.common import BenchError, page_files, ratio
from docsort.bench.docs import Section, num, plain
from docsort.bench.services import clean_queue, fresh_database, unique_queue

ROOT = Path(__file__).resolve().parents[2]
PROBE = Path(__file__).with_name("intake_probe.py")

SECTION = Section(
    name="intake",
    title="## Watcher intake alone (`docsort bench intake`)",
    intro="""
The watcher takes files that have already settled in its watch folder: each is opened, moved into the
processing area and hashed (sha256), the files taken together are recorded as one job (a document and a
receipt each), and their classify messages are sent to Redis (8 documents a message). The clock runs
over the watcher's `take_settled` alone; CPU is the watcher process's (the database server's and
Redis's are not in it). No worker runs. *code*: this checkout, or the checkout given to `--compare`
(its commit), measured in turn with the same probe, round by round.
""",
    columns=[
        ("code", plain("code")),
        ("database", plain("database")),
        ("files", plain("files")),
        ("MB per file", num("mb_per_file", 2)),
        ("files/s", num("files_per_s")),
        ("CPU ms/file", num("cpu_ms_per_file", 2)),
        ("SQL statements/file", num("statements_per_file", 2)),
        ("commits per 50 files", num("commits_per_50")),
        ("files/s ÷ compared", num("speedup", 2, "×")),
    ],
    key=("code", "database", "files"),
)


def _commit(tree: Path) -> str:
    try:
        out = subprocess.run(
            ["git", "-C", str(tree), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        )
    except (OSError, subprocess.CalledProcessError):
        return tree.name
    dirty = subprocess.run(["git", "-C", str(tree), "status", "--porcelain", "--untracked-files=no"],
                           capture_output=True, text=True, check=False).stdout.strip()  # fmt: skip
    return out.stdout.strip() + ("+changes" if dirty else "")


def prepared_files(source: Path, count: int) -> list[Path]:
    """``count`` distinct page files drawn from ``source``; when it has fewer, the rest are made (once,
    kept in the temporary folder) by repeating its files with a distinct trailer."""
    base = page_files(source, count)
    if len(base) >= count:
        return base
    tag = hashlib.sha256(str(source.resolve()).encode()).hexdigest()[:8]
    folder = Path(tempfile.gettempdir()) / f"docsort-bench-intake-{source.name}-{tag}-{count}"
    if not (folder.is_dir() and len(os.listdir(folder)) == count):
        part = folder.with_name(f".{folder.name}.{os.getpid()}.part")
        shutil.rmtree(part, ignore_errors=True)
        part.mkdir(parents=True)
        for i in range(count):
            src = base[i % len(base)]
            target = part / f"{i:05d}-{src.name}"
            if i < len(base):
                shutil.copyfile(src, target)
            else:
                target.write_bytes(src.read_bytes() + f"\ndocsort-bench-copy-{i}\n".encode())
        shutil.rmtree(folder, ignore_errors=True)
        os.replace(part, folder)
    return sorted(folder.iterdir())


def _link_all(files: list[Path], target: Path) -> int:
    """Each file hard-linked (or copied) into ``target`` under a unique name; their total size."""
    target.mkdir(parents=True)
    total = 0
    for i, src in enumerate(files):
        dest = target / f"{i:05d}-{src.name}"
        try:
            os.link(src, dest)
        except OSError:
            shutil.copyfile(src, dest)
        total += dest.stat().st_size
    return total


def _probe(tree: Path, files: Path, url: str, broker_url: str, work: Path, settle: float) -> dict[str, Any]:
    queue = unique_queue("intake")
    args = {
        "data_dir": str(work / "data"),
        "database_url": url,
        "broker_url": broker_url,
        "queue": queue,
        "files_dir": str(files),
        "settle": settle,
        "timeout": 600,
        "result_file": str(work / "probe.json"),
    }
    code = "import runpy, sys; sys.argv = sys.argv[1:]; runpy.run_path(sys.argv[0], run_name='__main__')"
    env = {**os.environ, "PYTHONPATH": str(tree), "DOCSORT_LOG_LEVEL": "warning"}
    try:
        done = subprocess.run(
            [sys.executable, "-c", code, str(PROBE), json.dumps(args)],
            cwd=work, env=env, capture_output=True, text=True, timeout=900, check=False,
        )  # fmt: skip
    finally:
        clean_queue(broker_url, queue)
    if done.returncode != 0 or not (work / "probe.json").is_file():
        raise BenchError(f"intake probe on {tree} failed ({done.returncode}): {done.stderr[-2000:]}")
    result: dict[str, Any] = json.loads((work / "probe.json").read_text())
    if result["taken"] != result["files"]:
        raise BenchError(f"intake probe on {tree}: {result['taken']} of {result['files']} files taken")
    return result


def _one_run(
    tree: Path, files: list[Path], database_url: str, broker_url: str, settle: float
) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="docsort-bench-intake-") as tmp:
        work = Path(tmp)
        size = _link_all(files, work / "drop")
        with fresh_database(database_url, work, "intake") as url:
            found = _probe(tree, work / "drop", url, broker_url, work, settle)
    return {**found, "bytes": size}


def run(
    source: Path,
    counts: list[int],
    database_urls: list[str],
    *,
    broker_url: str,
    compare: Path | None = None,
    rounds: int = 2,
    settle: float = 0.05,
) -> list[dict[str, Any]]:
    """One row per code (this checkout, and ``compare``), database and count of files."""
    trees = {_commit(ROOT): ROOT}
    if compare is not None:
        if not (compare / "ingest" / "watch.py").is_file():
            raise BenchError(f"{compare}: not a docsort checkout (no ingest/watch.py)")
        trees[f"{_commit(compare)} (compared)"] = compare.resolve()
    rows = []
    for url in database_urls:
        for count in counts:
            files = prepared_files(source, count)
            runs: dict[str, list[dict[str, Any]]] = {code: [] for code in trees}
            for _ in range(rounds):
                for code, tree in trees.items():
                    runs[code].append(_one_run(tree, files, url, broker_url, settle))
            rows += _rows(runs, url, count)
    return rows


def _rows(runs: dict[str, list[dict[str, Any]]], url: str, count: int) -> list[dict[str, Any]]:
    database = "sqlite" if not url or url.startswith("sqlite") else url.split(":", 1)[0].split("+")[0]
    rows = []
    for code, found in runs.items():
        first = found[0]
        rows.append(
            {
                "code": code,
                "database": database,
                "files": count,
                "rounds": len(found),
                "mb_per_file": first["bytes"] / count / 1e6,
                "files_per_s": statistics.median(count / r["seconds"] for r in found),
                "cpu_ms_per_file": statistics.median(1000 * r["cpu_seconds"] / count for r in found),
                "statements_per_file": first["statements"] / count,
                "commits_per_50": 50 * first["commits"] / count,
                "batch_files": first["batch_files"],
            }
        )
    compared = [r for r in rows if r["code"].endswith("(compared)")]
    for row in rows:
        row["speedup"] = ratio(row["files_per_s"], compared[0]["files_per_s"]) if compared else None
    return rows


def summary(rows: list[dict[str, Any]]) -> list[str]:
    lines = []
    for r in rows:
        speed = "" if r["speedup"] is None else f", {r['speedup']:.2f}× the compared code"
        lines.append(
            f"{r['code']:<22} {r['database']:<10} {r['files']:>5} files ({r['mb_per_file']:.2f} MB each): "
            f"{r['files_per_s']:7.1f} files/s, {r['cpu_ms_per_file']:.2f} ms CPU a file, "
            f"{r['statements_per_file']:.2f} statements a file, "
            f"{r['commits_per_50']:.1f} commits per 50 files{speed}"
        )
    return lines
