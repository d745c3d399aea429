"""``docsort bench pipeline``: pages per second end to end against bare ONNX Runtime on the same pages.

End to end: the pages are dropped into a watch folder at once; ``docsort watch`` takes them (settle
window, staging, a document row each, classify messages to Redis), one ``docsort worker`` decodes,
classifies, decides, records and routes them; the clock stops when the database shows every document
finished and the processing area is empty (delivered and archived). Bare: the same files decoded by the
worker's decoder (untimed), then only the model's ``session.run`` over them in batches, timed, laid out
as the worker (as many processes, each with its threads, each running its share at once:
:mod:`docsort.bench.bare`). The difference is everything that is not the model.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from datetime import UTC
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import func, select

from docsort.bench.bare import BarePool
from docsort.bench.common import page_files, ratio
from docsort.bench.docs import Section, num, percent, plain
from docsort.bench.machine import Machine
from docsort.bench.services import (
    finished_documents,
    fresh_database,
    tree_cpu_seconds,
    unique_queue,
    wait_until,
    watcher,
    workers,
)
from docsort.bench.timing import interleaved
from schema import db
from schema.enums import DecisionKind
from schema.manifest import load_manifest
from schema.tables import Document, Page, RoutingDecision
from worker.decode import decode_file
from worker.inference import load_model
from worker.settings import Provider

BARE_ROUNDS = 3


def _layout(result: dict[str, Any]) -> str:
    """Worker pool processes × ONNX Runtime threads (+ decode threads when more than one)."""
    text = f"{result.get('processes', 1)} × {result.get('threads', '?')}"
    decode = result.get("decode_threads", 1)
    text = text if decode == 1 else f"{text}, {decode} decode threads"
    confidence = result.get("confidence")
    return text if confidence is None else f"{text}, confidence {confidence:g}"


def _cpu(result: dict[str, Any]) -> str:
    worker, watch = result.get("worker_cpu_ms_per_page"), result.get("watcher_cpu_ms_per_page")
    bare = result.get("ort_cpu_ms_per_page")
    text = "n/a" if worker is None else f"{worker:.0f} / {watch:.1f}"
    return text if bare is None else f"{text} / {bare:.0f}"


SECTION = Section(
    name="pipeline",
    title="## Pipeline: end to end against bare ONNX Runtime (`docsort bench pipeline`)",
    intro="""
Real pages are dropped into a watch folder at once. `docsort watch` takes each once it has settled,
stages it, records it and sends classify messages to Redis; one `docsort worker` (its pool processes ×
ONNX Runtime threads as the table says) decodes, classifies, decides, writes page images and CAM cell
votes for review pages, records everything in the database and routes the files; the clock runs from the
drop until the database shows every document finished and every file has left the processing area
(routed pages delivered, files archived). *Bare ONNX Runtime* runs only the model over the same pages
(decoded beforehand, untimed), in batches of 32, laid out as the worker: as many processes, each with
the same threads, each running its share of the pages at once (the rows without a bare ORT CPU figure
ran one process of one process's threads: with 2 × 1 their bare figure is half the machine's);
*decode* is the worker's decoder alone (one thread) on the same files. The overhead is what the
pipeline spends per page beyond the model: watching, queueing, decoding, database, review images and
file moves. The watcher, Redis and the database share the same CPU cores. The end to end and bare runs
follow each other, so other work on the machine can slow one more than the other; the CPU time per page
(the worker's processes, the watcher, the bare ORT processes) does not depend on it much, and *bare ORT
share of the pipeline's CPU* (bare ORT CPU ÷ worker and watcher CPU, Redis left out) is what the
pipeline would reach against the model alone on idle cores.
""",
    columns=[
        ("model", plain("model")),
        ("pages", plain("pages")),
        ("database", plain("database")),
        ("processes × threads (settings)", _layout),
        ("end to end pages/s", num("pipeline_pages_per_s")),
        ("bare ORT pages/s", num("ort_pages_per_s")),
        ("decode only pages/s", num("decode_pages_per_s")),
        ("watcher intake files/s", num("intake_pages_per_s")),
        ("ORT ÷ end to end", num("ort_vs_pipeline", 1, "×")),
        ("overhead ms/page", num("overhead_ms_per_page")),
        ("model share of end to end", percent("model_share")),
        ("CPU ms/page: worker / watcher (/ bare ORT)", _cpu),
        ("bare ORT share of the pipeline's CPU", percent("cpu_model_share")),
        ("auto / review / failed", plain("outcomes")),
    ],
    key=("model", "pages", "database", "processes", "threads", "decode_threads", "confidence"),
)


def _stage(files: list[Path], staging: Path) -> list[Path]:
    staging.mkdir(parents=True)
    staged = []
    for i, src in enumerate(files):
        target = staging / f"{i:05d}-{src.name}"
        shutil.copyfile(src, target)
        staged.append(target)
    return staged


def _files_in(folder: Path) -> bool:
    return folder.is_dir() and any(p.is_file() for p in folder.rglob("*"))


def _outcomes(url: str) -> tuple[int, dict[str, int]]:
    engine = db.make_engine(url)
    try:
        with engine.connect() as conn:
            pages = int(conn.execute(select(func.count()).select_from(Page)).scalar() or 0)
            rows = conn.execute(select(RoutingDecision.kind, func.count()).group_by(RoutingDecision.kind))
            kinds = {DecisionKind(k).value: int(n) for k, n in rows}
    finally:
        engine.dispose()
    return pages, kinds


def _last_received(url: str) -> float:
    """When the watcher recorded its last document (epoch seconds)."""
    engine = db.make_engine(url)
    try:
        with engine.connect() as conn:
            last = conn.execute(select(func.max(Document.received_at))).scalar()
    finally:
        engine.dispose()
    if last is None:
        return float("nan")
    return (last if last.tzinfo else last.replace(tzinfo=UTC)).timestamp()


def bare_rates(
    model_dir: Path,
    files: list[Path],
    threads: int,
    batch: int = 32,
    provider: Provider = "cpu",
    processes: int = 1,
) -> dict[str, float]:
    """Pages/s of the worker's decoder alone (one thread) and of the model alone on ``files``, the model
    laid out as the worker: ``processes`` processes of ``threads`` threads, each running its share."""

    model = load_model(model_dir, provider, threads, batch)
    started = time.perf_counter()
    inputs = [p.model_input for f in files for p in decode_file(f, model.manifest.input).pages]
    decode_s = time.perf_counter() - started
    del model
    with BarePool(model_dir, np.stack(inputs), processes, threads, batch, provider) as pool:
        timed = interleaved({"ort": pool.round}, rounds=BARE_ROUNDS, warmup=0, desc="bare ONNX Runtime")
        cpu_s = sum(pool.cpu_seconds) / BARE_ROUNDS
    return {
        "pages": len(inputs),
        "decode": len(inputs) / decode_s,
        "ort": timed["ort"].rate(len(inputs)),
        "ort_cpu_ms": 1000.0 * cpu_s / len(inputs),
        "ort_cores": cpu_s / timed["ort"].median,
    }


def run(
    model_dir: Path,
    data_dir: Path,
    machine: Machine,
    *,
    pages: int = 200,
    database_url: str = "",
    broker_url: str = "redis://localhost:6379/0",
    settle: float = 0.5,
    threads: int = 0,
    processes: int = 1,
    decode_threads: int = 1,
    provider: Provider = "cpu",
    confidence: float | None = None,
    seed: int = 0,
    timeout: float = 900.0,
) -> dict[str, Any]:
    threads = threads or max(1, machine.cores // processes)
    files = page_files(data_dir, pages, seed)
    with tempfile.TemporaryDirectory(prefix="docsort-bench-pipeline-") as tmp:
        work = Path(tmp)
        staged = _stage(files, work / "staging")
        with fresh_database(database_url, work, "pipeline") as url:
            settings = {
                "data_dir": work / "data",
                "database_url": url,
                "broker_url": broker_url,
                "model_dir": model_dir,
                "threads": threads,
                "decode_threads": decode_threads,
                "provider": provider,
                "confidence": confidence,
            }
            queue = unique_queue("pipeline")
            inbox = work / "data" / "inbox"
            inbox.mkdir(parents=True)
            watch_settings = {**settings, "queue": queue, "watch_settle_seconds": settle, "model_dir": None}
            with (
                workers(settings, queue, work, processes) as pool,
                watcher(watch_settings, inbox, work / "watch.log") as watch,
            ):
                cpu_before = tree_cpu_seconds(pool.pid), tree_cpu_seconds(watch.pid)
                started, dropped_at = time.perf_counter(), time.time()
                for path in staged:
                    os.rename(path, inbox / path.name)
                processing = work / "data" / "processing"
                ended = wait_until(
                    lambda: finished_documents(url) >= len(staged) and not _files_in(processing),
                    timeout,
                    f"{len(staged)} documents recorded, routed and archived",
                )
                cpu = tree_cpu_seconds(pool.pid) - cpu_before[0], tree_cpu_seconds(watch.pid) - cpu_before[1]
            n_pages, kinds = _outcomes(url)
            intake_s = _last_received(url) - dropped_at
    bare = bare_rates(model_dir, files, threads, provider=provider, processes=processes)
    elapsed = ended - started
    rate = n_pages / elapsed
    manifest = load_manifest(model_dir)
    return {
        "model": f"{manifest.name}/{manifest.version} ({manifest.backbone} {manifest.input.height} px)",
        "pages": n_pages,
        "documents": len(staged),
        "database": url.split(":", 1)[0].split("+")[0],
        "threads": threads,
        "processes": processes,
        "provider": provider,
        "confidence": confidence,
        "decode_threads": decode_threads,
        "settle_s": settle,
        "seconds": elapsed,
        "pipeline_pages_per_s": rate,
        "intake_seconds": intake_s,
        "intake_pages_per_s": len(staged) / intake_s,
        "ort_pages_per_s": bare["ort"],
        "decode_pages_per_s": bare["decode"],
        "ort_vs_pipeline": ratio(bare["ort"], rate),
        "overhead_ms_per_page": 1000.0 * (1.0 / rate - 1.0 / bare["ort"]),
        "model_share": ratio(rate, bare["ort"]),
        "worker_cpu_ms_per_page": 1000.0 * cpu[0] / max(n_pages, 1),
        "watcher_cpu_ms_per_page": 1000.0 * cpu[1] / max(n_pages, 1),
        "ort_cpu_ms_per_page": bare["ort_cpu_ms"],
        "cpu_model_share": ratio(bare["ort_cpu_ms"] * n_pages, 1000.0 * (cpu[0] + cpu[1])),
        "pipeline_cores_used": (cpu[0] + cpu[1]) / elapsed,
        "ort_cores_used": bare["ort_cores"],
        "outcomes": f"{kinds.get('auto', 0)} / {kinds.get('review', 0)} / {kinds.get('failed', 0)}",
    }


def summary(result: dict[str, Any]) -> list[str]:
    return [
        f"{result['model']}: {result['pages']} pages ({result['documents']} files), {result['database']}, "
        f"watch settle {result['settle_s']} s, {result.get('processes', 1)} process(es) x "
        f"{result['threads']} threads, {result.get('decode_threads', 1)} decode thread(s)",
        f"  end to end      {result['pipeline_pages_per_s']:8.1f} pages/s ({result['seconds']:.1f} s)",
        f"  watcher intake  {result['intake_pages_per_s']:8.1f} files/s (last file recorded after "
        f"{result['intake_seconds']:.1f} s)",
        f"  bare ONNX RT    {result['ort_pages_per_s']:8.1f} pages/s",
        f"  decode only     {result['decode_pages_per_s']:8.1f} pages/s",
        f"  ratio bare / end to end {result['ort_vs_pipeline']:.1f}x; overhead "
        f"{result['overhead_ms_per_page']:.1f} ms per page; auto / review / failed {result['outcomes']}",
        f"  CPU per page    worker {result['worker_cpu_ms_per_page']:.1f} ms (all its processes), watcher "
        f"{result['watcher_cpu_ms_per_page']:.1f} ms, bare ONNX RT {result['ort_cpu_ms_per_page']:.1f} ms "
        f"({100 * result['cpu_model_share']:.0f}% of the worker's and watcher's)",
        f"  cores used      pipeline {result['pipeline_cores_used']:.2f} (worker and watcher), bare ONNX RT "
        f"{result['ort_cores_used']:.2f} (CPU seconds / wall seconds)",
    ]
