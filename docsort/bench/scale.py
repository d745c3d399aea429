"""``docsort bench scale``: one worker process against two, each with one ONNX Runtime thread.

Each run: a fresh database, a fresh queue, a ``docsort worker`` with 1 or 2 pool processes (one thread
each), warm; then every page is sent at once in classify messages of ``per_job`` documents and the clock
runs until the database shows every document finished. Runs go in the order 1, 2, 2, 1 (and so on), so
drift in the machine's load falls on both alike; the medians are compared.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from docsort.bench.common import page_files, ratio
from docsort.bench.docs import Section, num, percent, plain
from docsort.bench.machine import Machine
from docsort.bench.services import (
    finished_documents,
    fresh_database,
    unique_queue,
    wait_until,
    workers,
)
from ingest.sender import send_classify
from schema.manifest import load_manifest

SECTION = Section(
    name="scale",
    title="## Scale: one worker process against two (`docsort bench scale`)",
    intro="""
A `docsort worker` with one pool process and then with two, each process with one ONNX Runtime thread,
takes the same pages, sent at once as classify messages of 8 documents (as the watcher sends them), from
a fresh Redis queue into a fresh database; the clock runs from the first message to the last document
finished. Runs alternate 1, 2, 2, 1 …; medians. *Efficiency* = (two-process rate ÷ one-process rate) ÷ 2.
""",
    columns=[
        ("model", plain("model")),
        ("pages", plain("pages")),
        ("database", plain("database")),
        ("1 process pages/s", num("one_process_pages_per_s")),
        ("2 processes pages/s", num("two_processes_pages_per_s")),
        ("2 ÷ 1", num("speedup", 2, "×")),
        ("efficiency", percent("efficiency", 0)),
    ],
    key=("model", "pages", "database"),
)


def _one_run(settings: dict[str, Any], files: list[Path], processes: int, work: Path, per_job: int) -> float:
    send = send_classify
    queue = unique_queue(f"scale{processes}")
    with workers(settings, queue, work, processes):
        started = time.perf_counter()
        for i in range(0, len(files), per_job):
            chunk = files[i : i + per_job]
            send(
                settings["broker_url"],
                queue,
                {"documents": [{"path": str(p)} for p in chunk], "on_done": "keep"},
            )
        url = str(settings["database_url"])
        ended = wait_until(lambda: finished_documents(url) >= len(files), 900, f"{len(files)} documents")
    return len(files) / (ended - started)


def run(
    model_dir: Path,
    data_dir: Path,
    machine: Machine,
    *,
    pages: int = 200,
    rounds: int = 2,
    per_job: int = 8,
    database_url: str = "",
    broker_url: str = "redis://localhost:6379/0",
    seed: int = 0,
) -> dict[str, Any]:
    files = page_files(data_dir, pages, seed)
    rates: dict[int, list[float]] = {1: [], 2: []}
    order = [p for r in range(rounds) for p in ((1, 2) if r % 2 == 0 else (2, 1))]
    with tempfile.TemporaryDirectory(prefix="docsort-bench-scale-") as tmp:
        work = Path(tmp)
        for i, processes in enumerate(order):
            with fresh_database(database_url, work, f"scale{i}") as url:
                settings = {
                    "data_dir": work / f"data{i}",
                    "database_url": url,
                    "broker_url": broker_url,
                    "model_dir": model_dir,
                    "threads": 1,
                    "celery_roots": ",".join(
                        sorted({str(f.parent) for f in files})
                    ),  # the Celery door reads them
                }
                rates[processes].append(_one_run(settings, files, processes, work, per_job))
    one, two = statistics.median(rates[1]), statistics.median(rates[2])
    manifest = load_manifest(model_dir)
    return {
        "model": f"{manifest.name}/{manifest.version} ({manifest.backbone} {manifest.input.height} px)",
        "pages": len(files),
        "database": (database_url or "sqlite").split(":", 1)[0].split("+")[0],
        "runs": order,
        "one_process_pages_per_s": one,
        "two_processes_pages_per_s": two,
        "speedup": ratio(two, one),
        "efficiency": ratio(two, one) / 2,
        "cores": machine.cores,
    }


def summary(result: dict[str, Any]) -> list[str]:
    return [
        f"{result['model']}: {result['pages']} pages, {result['database']}, runs {result['runs']}, "
        f"{result['cores']} cores",
        f"  1 process  x 1 thread {result['one_process_pages_per_s']:8.1f} pages/s",
        f"  2 processes x 1 thread {result['two_processes_pages_per_s']:8.1f} pages/s",
        f"  ratio 2 / 1 {result['speedup']:.2f}x (efficiency {100 * result['efficiency']:.0f}%)",
    ]
