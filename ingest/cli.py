"""``docsort watch``, ``docsort submit`` and ``docsort status``."""

from __future__ import annotations

import json
import signal
import threading
from pathlib import Path
from types import FrameType

import typer
from rich.console import Console
from rich.table import Table

from ingest.intake import Intake
from ingest.results import DocumentResult, JobResult, PageOutcome, job_result
from ingest.sender import CelerySender
from ingest.settings import IngestSettings, get_ingest_settings
from ingest.staging import IntakeError
from ingest.submit import WaitTimedOut, submit_paths, wait_for_job
from ingest.watch import Watcher
from schema import db
from schema.logs import configure_logging
from schema.split import canonical_split

PAGE_FIELDS = ("path", "page", "status", "label", "confidence", "decision", "error")
DOCUMENT_FIELDS = ("source", "pages", "label", "outcome", "delivered", "reason")
DOCUMENT_JSON_FIELDS = (*DOCUMENT_FIELDS, "confidence", "decided_by", "document_id", "seq")


def _intake(settings: IngestSettings) -> Intake:

    configure_logging(settings.log_level, settings.log_format)
    db.require_migrated(settings.database_url)
    sessions = db.make_sessionmaker(db.make_engine(settings.database_url))
    return Intake(settings, sessions, CelerySender(settings.broker_url, settings.job_queue))


def _stop_on_signals(stop: threading.Event) -> None:
    def handler(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)


def watch(
    dirs: list[Path] = typer.Argument(None, help="Folders to watch; default DOCSORT_INBOX_DIR."),
    poll: bool = typer.Option(False, "--poll", help="Poll instead of inotify (network shares)."),
    settle: float | None = typer.Option(
        None, help="Settle window in seconds (DOCSORT_WATCH_SETTLE_SECONDS)."
    ),
    rescan: float | None = typer.Option(None, help="Full rescan interval (DOCSORT_WATCH_RESCAN_SECONDS)."),
    once: bool = typer.Option(False, "--once", help="Take what is there now, then exit."),
    timeout: float = typer.Option(600.0, help="With --once: stop waiting for files to settle after this."),
) -> None:
    """Watch folders: take each file once it is complete, and send it for classification."""

    settings = get_ingest_settings()
    updates = {k: v for k, v in {"watch_settle_seconds": settle, "watch_rescan_seconds": rescan}.items() if v}
    if updates:
        settings = settings.model_copy(update=updates)
    intake = _intake(settings)
    inbox = settings.inbox_dir
    assert inbox is not None
    stop = threading.Event()
    _stop_on_signals(stop)
    watcher = Watcher(intake, list(dirs) if dirs else [inbox], poll=poll, stop=stop)
    if once:
        taken = watcher.run_once(timeout)
        typer.echo(f"taken {taken} file(s)")
    else:
        watcher.run()


def _page_table(pages: list[PageOutcome]) -> Table:
    table = Table(*PAGE_FIELDS)
    for p in pages:
        conf = "" if p.confidence is None else f"{p.confidence:.3f}"
        row = [p.path, str(p.page or ""), p.status, p.label or "", conf, p.decision or "", p.error or ""]
        table.add_row(*row)
    return table


def _document_table(documents: list[DocumentResult]) -> Table:
    table = Table(*DOCUMENT_FIELDS)
    for d in documents:
        pages = ",".join(str(n) for n in d.pages)
        table.add_row(d.source, pages, d.label or "", d.outcome, d.delivered or "", d.reason or "")
    return table


def _print_pages(result: JobResult, as_json: bool, documents: bool = False) -> None:
    if as_json:
        rows = result.documents if documents else result.pages
        fields = set(DOCUMENT_JSON_FIELDS if documents else PAGE_FIELDS)
        for row in rows:
            typer.echo(json.dumps(row.model_dump(include=fields)))
    elif documents:
        Console().print(_document_table(result.documents))
    else:
        Console().print(_page_table(result.pages))


def _summary(result: JobResult) -> str:
    c = result.counts
    return (
        f"job {result.job_id}: {result.state} ({c.documents} files, {c.duplicates} duplicate, "
        f"{c.pages} pages: {c.auto} auto, {c.review} review, {c.failed} failed)"
    )


def submit(
    paths: list[Path] = typer.Argument(..., help="Files or folders, sent as one job."),
    wait: bool = typer.Option(False, "--wait", help="Wait for the job to end and print each page's outcome."),
    as_json: bool = typer.Option(False, "--json", help="With --wait: one JSON object per page."),
    documents: bool = typer.Option(
        False, "--documents", help="With --wait: one outcome per output document instead of per page."
    ),
    split: str | None = typer.Option(
        None,
        help="Separation rules: none, blank, barcode, class, pages:N, comma-separated "
        "(default: the workers' DOCSORT_SPLIT).",
    ),
    drop_blank: bool = typer.Option(False, "--drop-blank", help="Drop blank pages (duplex backs)."),
    callback_url: str | None = typer.Option(None, help="POSTed the job's result, signed, when it ends."),
    timeout: float = typer.Option(3600.0, help="With --wait: give up after this many seconds."),
) -> None:
    """Send files or folders as one job through the broker (the originals are left where they are)."""

    settings = get_ingest_settings()
    intake = _intake(settings)
    rules = None
    if split is not None or drop_blank:
        try:
            rules = canonical_split(",".join([split or "none", *(["drop-blank"] if drop_blank else [])]))
        except ValueError as exc:
            raise typer.BadParameter(str(exc), param_hint="--split") from exc
    result = submit_paths(intake, paths, callback_url=callback_url, progress=not as_json, split=rules)
    if not wait:
        typer.echo(
            result.job_id if as_json else f"job {result.job_id}: {len(result.arrivals)} file(s) queued"
        )
        return
    try:
        final = wait_for_job(intake, result.job_id, result.n_new, timeout, progress=not as_json)
    except WaitTimedOut as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(3) from exc
    _print_pages(final, as_json, documents)
    if not as_json:
        typer.echo(_summary(final))
    if any(p.status == "error" for p in final.pages) or any(d.outcome == "failed" for d in final.documents):
        raise typer.Exit(1)


def status(
    job_id: str = typer.Argument(..., help="Job id (from `docsort submit` or the API)."),
    pages: bool = typer.Option(False, "--pages", help="Print every page's outcome too."),
    as_json: bool = typer.Option(False, "--json", help="The whole job as one JSON object."),
) -> None:
    """Show a job's state."""

    settings = get_ingest_settings()
    db.require_migrated(settings.database_url)
    sessions = db.make_sessionmaker(db.make_engine(settings.database_url))
    with db.session_scope(sessions) as session:
        result = job_result(session, job_id)
    if result is None:
        raise IntakeError(f"no job {job_id}")
    if as_json:
        typer.echo(result.model_dump_json())
        return
    typer.echo(_summary(result))
    if result.callback_state:
        typer.echo(f"callback: {result.callback_state}")
    if pages:
        _print_pages(result, as_json=False)


def register(app: typer.Typer) -> None:
    """Add ``watch``, ``submit`` and ``status``."""
    app.command("watch")(watch)
    app.command("submit")(submit)
    app.command("status")(status)
