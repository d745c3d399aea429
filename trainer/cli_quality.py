"""Commands on the quality of automatic routing, read from the database: ``docsort models drift``,
``docsort models accuracy`` (live accuracy from audit answers) and ``docsort models shadow``."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import typer
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from schema import db
from schema.logs import configure_logging
from schema.settings import get_settings
from schema.tables import ModelVersion
from trainer.cli_confidence import models_group
from trainer.errors import TrainerError
from worker.drift import DriftReport, drift_by_day, drift_report
from worker.live_accuracy import accuracy_by_day, live_accuracy, version_targets
from worker.quality_plots import drift_png, live_accuracy_png
from worker.shadow_stats import shadow_report, shadow_versions

TIME_FORMATS = ["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S"]
SINCE = typer.Option(
    None, "--since", formats=TIME_FORMATS, help="Start of the window, UTC (default: 24 h ago)."
)
AS_JSON = typer.Option(False, "--json", help="Print one JSON object as the last line.")


def _sessions() -> sessionmaker[Session]:
    settings = get_settings()
    configure_logging(settings.log_level, settings.log_format)
    db.require_migrated(settings.database_url)
    return db.make_sessionmaker(db.make_engine(settings.database_url))


def _since(since: datetime | None, now: datetime) -> datetime:
    if since is None:
        return now - timedelta(hours=24)
    return since.replace(tzinfo=UTC) if since.tzinfo is None else since


def _versions(session: Session, name: str | None) -> list[ModelVersion]:
    """The active version of NAME, the version NAME/VERSION, or every active version."""
    stmt = select(ModelVersion)
    if name and "/" in name:
        model, version = name.split("/", 1)
        stmt = stmt.where(ModelVersion.name == model, ModelVersion.version == version)
    else:
        stmt = stmt.where(ModelVersion.active)
        if name:
            stmt = stmt.where(ModelVersion.name == name)
    rows = list(session.scalars(stmt.order_by(ModelVersion.name)))
    if not rows:
        raise TrainerError(f"no {'version ' + name if name else 'active version'} in the database")
    return rows


def _print_drift(report: DriftReport) -> None:
    typer.echo(
        f"{report.model}: {report.n_live} live pages, {report.since:%Y-%m-%d %H:%M} to "
        f"{report.until:%Y-%m-%d %H:%M} UTC, against {report.n_reference} validation pages"
    )
    for s in report.statistics:
        value = (
            "–"
            if s.value is None
            else f"{100 * s.value:.2f}%"
            if s.key == "review_rate"
            else f"{s.value:.4f}"
        )
        promised = f" (promised {100 * s.reference:.2f}%)" if s.reference is not None else ""
        p = f", p = {s.p_value:.3g}" if s.p_value is not None else ""
        typer.echo(f"  {s.name:<22} {value}{promised}{p}  [{s.rule}]  -> {s.verdict.upper()}")
    for label, (live, ref) in report.class_mix.items():
        typer.echo(f"  class {label}: {100 * live:.1f}% of live pages, {100 * ref:.1f}% of validation pages")
    typer.echo(f"  verdict: {report.verdict.upper()}")


def drift_command(
    name: str = typer.Argument(
        None, help="Model name (its active version) or name/version; default: every active."
    ),
    since: datetime = SINCE,
    until: datetime = typer.Option(
        None, "--until", formats=TIME_FORMATS, help="End of the window (default: now)."
    ),
    plot: Path = typer.Option(None, "--plot", help="Also write the statistics by day as a PNG here."),
    as_json: bool = AS_JSON,
) -> None:
    """Live pages against the version's validation pages: top-class confidence (KS), predicted class
    mix (PSI), review rate (binomial test against the promised rate), each with a verdict."""
    now = datetime.now(UTC) if until is None else _since(until, datetime.now(UTC))
    start = _since(since, now)
    with _sessions()() as session:
        reports = [drift_report(session, row, start, now) for row in _versions(session, name)]
        for report in reports:
            _print_drift(report)
        if plot is not None:
            row = _versions(session, name)[0]
            days = drift_by_day(session, row, start, now)
            plot.write_bytes(drift_png(days, f"{row.name}/{row.version}: drift by day"))
            typer.echo(f"figure: {plot}")
    if as_json:
        typer.echo(json.dumps({"versions": [r.as_dict() for r in reports]}))


def accuracy_command(
    since: datetime = typer.Option(
        None, "--since", formats=TIME_FORMATS, help="Only documents routed at or after this time (UTC)."
    ),
    plot: Path = typer.Option(None, "--plot", help="Also write the active version's accuracy by day (PNG)."),
    as_json: bool = AS_JSON,
) -> None:
    """Live accuracy of automatic routing from operators' answers on audit items, per version and class,
    with the exact 95% interval and the verdict against the version's target."""
    start = None if since is None else _since(since, datetime.now(UTC))
    with _sessions()() as session:
        found = live_accuracy(session, start)
        if plot is not None:
            row = _versions(session, None)[0]
            target = version_targets(session).get((row.name, row.version))
            days = accuracy_by_day(session, row.name, row.version)
            plot.write_bytes(live_accuracy_png(days, target, f"{row.name}/{row.version}: live accuracy"))
    if not found:
        typer.echo("no audit items yet (DOCSORT_AUDIT_RATE sets the share of documents audited)")
    for a in found:
        ci, scope = a.interval, a.label or "all classes"
        shown = f"{100 * (ci.estimate or 0):.2f}% [{100 * (ci.low or 0):.2f}%, {100 * (ci.high or 0):.2f}%]"
        goal = f"target {100 * a.target:.2f}%" if a.target else "no target"
        typer.echo(
            f"{a.model} {scope}: {ci.k} of {ci.n} right {shown if ci.n else ''}, {a.waiting} waiting; "
            f"{goal}: {a.verdict.upper()}{' (ALERT)' if a.alert else ''}"
        )
    if plot is not None:
        typer.echo(f"figure: {plot}")
    if as_json:
        typer.echo(json.dumps({"accuracy": [a.as_dict() for a in found]}))


def shadow_command(
    name: str = typer.Argument(None, help="The shadow version, name/version; default: every one seen."),
    since: datetime = SINCE,
    as_json: bool = AS_JSON,
) -> None:
    """A version run in shadow (DOCSORT_SHADOW_MODEL) on live pages: agreement with the routing model,
    accuracy of both on operator-labelled pages, review rate of both at their own thresholds."""
    start = _since(since, datetime.now(UTC))
    with _sessions()() as session:
        wanted = [tuple(name.split("/", 1))] if name and "/" in name else shadow_versions(session, start)
        reports = [shadow_report(session, n, v, start) for n, v in wanted]
    if not reports:
        typer.echo("no version ran in shadow in this window (DOCSORT_SHADOW_MODEL names one)")
    for r in reports:

        def share(ci) -> str:  # type: ignore[no-untyped-def]
            return (
                "–"
                if not ci.n
                else f"{100 * ci.estimate:.2f}% of {ci.n} [{100 * ci.low:.2f}%, {100 * ci.high:.2f}%]"
            )

        rates = [
            ("–" if v is None else f"{100 * v:.2f}%") for v in (r.shadow_review_rate, r.active_review_rate)
        ]
        typer.echo(f"{r.shadow} beside {', '.join(r.active) or 'no routing model'}:")
        typer.echo(f"  same class as the routing model: {share(r.agreement)}")
        typer.echo(f"  right on operator-labelled pages: shadow {share(r.shadow_right)}")
        typer.echo(f"                                    routing {share(r.active_right)}")
        typer.echo(f"  review rate at its own thresholds: shadow {rates[0]}, routing {rates[1]}")
    if as_json:
        typer.echo(json.dumps({"shadows": [r.as_dict() for r in reports]}))


def register(app: typer.Typer) -> None:
    """Add ``models drift``, ``models accuracy`` and ``models shadow`` to ``app``."""
    models = models_group(app)
    models.command("drift")(drift_command)
    models.command("accuracy")(accuracy_command)
    models.command("shadow")(shadow_command)
