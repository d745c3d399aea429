"""``docsort bench cam``: the cost of the review path (page image and CAM cell votes written) against the
auto path (page routed), per page, on the same pages through the worker's own job runner.

Both variants run :func:`worker.runner.run_job` in this process (no broker) over the same files, in
jobs of ``per_job`` documents, each round on a fresh copy of a migrated SQLite database and a fresh data
folder so that nothing is found already done. The only difference is the confidence threshold: 0 sends
every page to automatic routing, 1 sends every page to review.
"""

from __future__ import annotations

import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from sqlalchemy import select

from docsort.bench.common import BenchError, page_files, ratio
from docsort.bench.docs import Section, num, plain
from docsort.bench.machine import Machine
from ingest.celery_door import admit
from ingest.settings import ingest_settings_from
from review.originals import review_image
from review.settings import review_settings
from schema import db
from schema.manifest import load_manifest
from schema.messages import ClassifyJob, DocumentRef
from schema.tables import Document, Page
from worker.context import WorkerContext
from worker.registry import ModelCache
from worker.runner import run_job
from worker.settings import WorkerSettings


def _sql(variant: str) -> Any:
    def fmt(result: dict[str, Any]) -> str:
        statements = result.get(f"{variant}_sql_statements_per_page")
        commits = result.get(f"{variant}_commits_per_page")
        return "n/a" if statements is None else f"{statements:.1f} / {commits:.1f}"

    return fmt


def _per_job(result: dict[str, Any]) -> str:
    auto, review = result.get("auto_commits_per_job"), result.get("review_commits_per_job")
    return "n/a" if auto is None else f"{auto:.1f} / {review:.1f} (jobs of {result.get('per_job')})"


def _later(result: dict[str, Any]) -> str:
    pages = result.get("review_images_later")
    return "n/a" if pages is None else f"{pages}, {result.get('review_image_later_cpu_ms', 0.0):.1f}"


def _cpu(result: dict[str, Any]) -> str:
    auto, review = result.get("auto_cpu_ms_per_page"), result.get("review_cpu_ms_per_page")
    if auto is None or review is None:
        return "n/a"
    return f"{auto:.1f} / {review:.1f} ({result.get('review_vs_auto_cpu', 0.0):.2f}×)"


SECTION = Section(
    name="cam",
    title="## CAM: the review path against the auto path (`docsort bench cam`)",
    intro="""
The same pages go through the worker's job runner (`run_job`: decode, one ONNX batch per job, decide,
record, route) twice per round, in this process with no broker: once with the confidence threshold at 0
(every page routed automatically: the file is copied into its class folder) and once at 1 (every page
to review: its image made from the pixels its first decode kept, for a page decoded whole (PNG, TIFF),
written as a JPEG, and its CAM's cell votes as a small JSON file; a page decoded small for the model
(JPEG, PDF) gets its votes only, its image is left to the review server, which makes it from the received
file on first view or ahead of the operators). The last column is that cost, measured after the clock:
each such image made as the review server makes it (`review.originals.review_image`), CPU ms a page.
Each run starts from a fresh copy of a migrated SQLite database; rounds alternate the two; medians.
The difference per page is what a page sent to review costs beyond an automatically routed one; the
CPU time of this process per page (all its threads, ONNX Runtime's included) moves less with the load of
other work on the machine than the wall time does. The
SQL statements and commits the runner sends per page (and commits per job) are counted on the database
engine.
""",
    columns=[
        ("model", plain("model")),
        ("pages", plain("pages")),
        ("auto path ms/page", num("auto_ms_per_page")),
        ("review path ms/page", num("review_ms_per_page")),
        ("review ÷ auto", num("review_vs_auto", 2, "×")),
        ("extra ms per review page", num("review_extra_ms_per_page")),
        ("CPU ms/page, auto / review", _cpu),
        ("SQL statements / commits per page, auto", _sql("auto")),
        ("… review", _sql("review")),
        ("commits per job, auto / review", _per_job),
        ("review images made by the review server: pages, CPU ms each", _later),
    ],
    key=("model", "pages"),
)


def _context(
    model_dir: Path, folder: Path, template: Path, confidence: float, models: Any, threads: int
) -> Any:

    folder.mkdir(parents=True)
    shutil.copyfile(template, folder / "docsort.db")
    ws = WorkerSettings(
        data_dir=folder,
        database_url=f"sqlite:///{folder / 'docsort.db'}",
        model_dir=model_dir,
        confidence=confidence,
        margin=0.0,
        threads=threads,
    )
    ws.ensure_dirs()
    return WorkerContext(
        settings=ws, sessions=db.make_sessionmaker(db.make_engine(ws.database_url)), models=models
    )


def _one_run(ctx: Any, jobs: list[ClassifyJob]) -> tuple[float, int, int, int, dict[str, float]]:
    """Run the jobs; (seconds, pages, auto, review, {"statements": n, "commits": n, "cpu": seconds}):
    the database's counts and this process's CPU time."""
    from sqlalchemy import event

    engine = ctx.sessions.kw["bind"]
    counts: dict[str, float] = {"statements": 0, "commits": 0}

    def statement(*_: Any) -> None:
        counts["statements"] += 1

    def commit(*_: Any) -> None:
        counts["commits"] += 1

    roots = sorted({Path(ref.path).parent for job in jobs for ref in job.documents})
    door = ingest_settings_from(ctx.settings).model_copy(update={"celery_roots": roots})
    jobs = [admit(ctx.sessions, job, None, door) for job in jobs]  # as the Celery door does, before the clock
    event.listen(engine, "before_cursor_execute", statement)
    event.listen(engine, "commit", commit)
    started, cpu = time.perf_counter(), time.process_time()
    pages = auto = review = 0
    for job in jobs:
        outcome = run_job(ctx, job)
        pages, auto, review = pages + outcome.pages, auto + outcome.auto, review + outcome.review
    elapsed = time.perf_counter() - started
    counts["cpu"] = time.process_time() - cpu
    counts.update(_made_later(ctx))
    engine.dispose()
    return elapsed, pages, auto, review, counts


def _made_later(ctx: Any) -> dict[str, float]:
    """The review images the worker left to the review server, made as it makes them (after the clock):
    {"later": how many, "later_cpu": CPU seconds in all}."""
    settings = review_settings(ctx.settings)
    with ctx.sessions() as session:
        rows = session.execute(
            select(Page.image_path, Document.stored_path, Page.page_number, Document.filename)
            .join(Document, Document.id == Page.document_id)
            .where(Page.image_path.is_not(None))
        ).all()
    later = [row for row in rows if not Path(row[0]).exists()]
    cpu = time.process_time()
    for image_path, stored_path, number, filename in later:
        review_image(settings, image_path, stored_path, number, filename or "")
    return {"later": len(later), "later_cpu": time.process_time() - cpu}


def run(
    model_dir: Path,
    data_dir: Path,
    machine: Machine,
    *,
    pages: int = 64,
    rounds: int = 3,
    per_job: int = 8,
    threads: int = 0,
    seed: int = 0,
) -> dict[str, Any]:

    threads = threads or machine.cores
    files = page_files(data_dir, pages, seed)
    refs = [DocumentRef(path=str(f)) for f in files]
    jobs = [
        ClassifyJob(documents=refs[i : i + per_job], on_done="keep") for i in range(0, len(refs), per_job)
    ]
    times: dict[str, list[float]] = {"auto": [], "review": []}
    later: list[float] = []  # CPU ms a review image made by the review server (each review round)
    later_pages = 0
    cpu: dict[str, list[float]] = {"auto": [], "review": []}
    sql: dict[str, dict[str, float]] = {}
    n_pages = 0
    with tempfile.TemporaryDirectory(prefix="docsort-bench-cam-") as tmp:
        work = Path(tmp)
        template = work / "template.db"
        db.upgrade(f"sqlite:///{template}")
        models = ModelCache(WorkerSettings(data_dir=work / "models", model_dir=model_dir, threads=threads))
        models.fixed()  # loaded and warm before any timing
        for r in range(rounds):
            for variant, confidence in (("auto", 0.0), ("review", 1.0)):
                ctx = _context(model_dir, work / f"{variant}-{r}", template, confidence, models, threads)
                elapsed, n_pages, auto, review, counts = _one_run(ctx, jobs)
                cpu[variant].append(counts.pop("cpu"))
                later_n, later_cpu = counts.pop("later"), counts.pop("later_cpu")
                if variant == "review" and later_n:
                    later.append(1000.0 * later_cpu / later_n)
                    later_pages = int(later_n)
                sql[variant] = {k: v / max(n_pages, 1) for k, v in counts.items()}
                sql[variant]["per_job"] = counts["commits"] / max(len(jobs), 1)
                if (auto, review) != ((n_pages, 0) if variant == "auto" else (0, n_pages)):
                    raise BenchError(f"{variant} run routed {auto} pages and sent {review} to review")
                times[variant].append(elapsed)
    auto_ms = 1000.0 * statistics.median(times["auto"]) / n_pages
    review_ms = 1000.0 * statistics.median(times["review"]) / n_pages
    auto_cpu, review_cpu = (1000.0 * statistics.median(cpu[v]) / n_pages for v in ("auto", "review"))
    manifest = load_manifest(model_dir)
    return {
        "model": f"{manifest.name}/{manifest.version} ({manifest.backbone} {manifest.input.height} px)",
        "pages": n_pages,
        "rounds": rounds,
        "per_job": per_job,
        "threads": threads,
        "auto_ms_per_page": auto_ms,
        "review_ms_per_page": review_ms,
        "review_vs_auto": ratio(review_ms, auto_ms),
        "review_extra_ms_per_page": review_ms - auto_ms,
        "auto_cpu_ms_per_page": auto_cpu,
        "review_cpu_ms_per_page": review_cpu,
        "review_vs_auto_cpu": ratio(review_cpu, auto_cpu),
        "auto_sql_statements_per_page": sql["auto"]["statements"],
        "auto_commits_per_page": sql["auto"]["commits"],
        "review_sql_statements_per_page": sql["review"]["statements"],
        "review_commits_per_page": sql["review"]["commits"],
        "auto_commits_per_job": sql["auto"]["per_job"],
        "review_commits_per_job": sql["review"]["per_job"],
        "review_images_later": later_pages,
        "review_image_later_cpu_ms": statistics.median(later) if later else 0.0,
    }


def summary(result: dict[str, Any]) -> list[str]:
    return [
        f"{result['model']}: {result['pages']} pages in jobs of {result['per_job']}, "
        f"median of {result['rounds']} rounds, {result['threads']} threads",
        f"  auto path    {result['auto_ms_per_page']:7.1f} ms per page",
        f"  review path  {result['review_ms_per_page']:7.1f} ms per page",
        f"  ratio review / auto {result['review_vs_auto']:.2f}x: "
        f"{result['review_extra_ms_per_page']:.1f} ms more per page sent to review",
        f"  CPU of this process per page: auto {result['auto_cpu_ms_per_page']:.1f} ms, review "
        f"{result['review_cpu_ms_per_page']:.1f} ms ({result['review_vs_auto_cpu']:.2f}x)",
        f"  database per page: auto {result['auto_sql_statements_per_page']:.1f} statements, "
        f"{result['auto_commits_per_page']:.1f} commits; review "
        f"{result['review_sql_statements_per_page']:.1f} statements, "
        f"{result['review_commits_per_page']:.1f} commits; commits per job of {result['per_job']}: auto "
        f"{result['auto_commits_per_job']:.1f}, review {result['review_commits_per_job']:.1f}",
        f"  review images left to the review server: {result['review_images_later']} of "
        f"{result['pages']} pages, {result['review_image_later_cpu_ms']:.1f} ms of CPU each to make there",
    ]
