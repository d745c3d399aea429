"""Quality in production, measured on labelled pages: days of live pages through the real job runner,
audits chosen by the worker's own rule and answered by the pages' true labels, review pages decided
the same way through the review code; then live accuracy and drift by day, their figures, and a table.

    python -m docsort.bench.quality VERSION_DIR POOL_DIR WORK_DIR [--audit-rate 0.1] [--pages 300]
        [--relabel PREFIX=CLASS]

``POOL_DIR`` holds one folder per class of pages the version never saw; each page is used once. The
days: three like the pool, two whose class mix moved (most pages of the rarest class), two whose pages
are worn scans (blurred, faded, recompressed), and with ``--relabel`` two days of pages like the
pool's on which the operators' rule changed: a page whose file name starts with PREFIX now belongs to
CLASS (the pages do not change, what counts as right does). Each day's rows are dated to that day.
``WORK_DIR`` gets the database, the data folders and the figures (``quality_live_accuracy.png``,
``quality_drift.png``); the last line printed is the JSON of the numbers.
"""

from __future__ import annotations

import argparse
import json
import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from PIL import Image, ImageEnhance, ImageFilter
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from docsort.bench.machine import this_machine
from ingest.celery_door import admit
from ingest.settings import ingest_settings_from
from review.audits import answer_audit, audit_items
from review.decisions import decide
from review.queue import pending_select
from review.security import create_operator
from schema import db
from schema.messages import ClassifyJob, DocumentRef
from schema.tables import Audit, ModelVersion, OutputDocument, Page, Prediction, RoutingDecision
from worker.audit import choose_audits
from worker.context import WorkerContext
from worker.drift import drift_by_day
from worker.live_accuracy import accuracy_by_day, live_accuracy, version_targets
from worker.quality_plots import drift_png, live_accuracy_png
from worker.registry import ModelCache, activate
from worker.runner import run_job
from worker.settings import WorkerSettings

DAY0 = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)
PLAN = ["as validation"] * 3 + ["class mix moved"] * 2 + ["worn scans"] * 2
RELABELLED = "rule changed"


@dataclass
class Day:
    index: int
    kind: str
    files: list[tuple[Path, str]]  # (page file, true class)


def _draw(
    pool: dict[str, list[Path]], n: int, rare_share: float | None, rng: random.Random
) -> list[tuple[Path, str]]:
    classes = sorted(pool, key=lambda c: len(pool[c]))
    total = sum(len(v) for v in pool.values())
    shares = {c: len(pool[c]) / total for c in classes}
    if rare_share is not None:
        shares = {
            c: rare_share if c == classes[0] else (1 - rare_share) / (len(classes) - 1) for c in classes
        }
    picked = []
    for c in classes:
        for _ in range(round(n * shares[c])):
            picked.append((pool[c].pop(), c))
    rng.shuffle(picked)
    return picked


def _worn(src: Path, dst: Path) -> Path:
    with Image.open(src) as img:
        page = img.convert("RGB").filter(ImageFilter.GaussianBlur(2.2))
        page = ImageEnhance.Contrast(page).enhance(0.45)
        page.save(dst.with_suffix(".jpg"), quality=25)
    return dst.with_suffix(".jpg")


def plan(relabel: tuple[str, str] | None) -> list[str]:
    return PLAN + [RELABELLED] * 2 if relabel else PLAN


def plan_days(pool_dir: Path, pages: int, seed: int, relabel: tuple[str, str] | None) -> list[Day]:
    rng = random.Random(seed)
    pool = {c.name: sorted(p for p in c.iterdir() if p.is_file()) for c in pool_dir.iterdir() if c.is_dir()}
    for files in pool.values():
        rng.shuffle(files)
    days = [
        Day(i, kind, _draw(pool, pages, 0.8 if kind == "class mix moved" else None, rng))
        for i, kind in enumerate(plan(relabel))
    ]
    for day in days:
        if day.kind == RELABELLED and relabel is not None:
            prefix, label = relabel
            day.files = [(p, label if p.name.startswith(prefix) else c) for p, c in day.files]
    return days


def _date_rows(session: Session, document_ids: list[int], when: datetime) -> None:
    pages = select(Page.id).where(Page.document_id.in_(document_ids))
    session.execute(update(Prediction).where(Prediction.page_id.in_(pages)).values(created_at=when))
    session.execute(
        update(RoutingDecision).where(RoutingDecision.document_id.in_(document_ids)).values(decided_at=when)
    )
    session.execute(
        update(OutputDocument).where(OutputDocument.document_id.in_(document_ids)).values(decided_at=when)
    )
    session.execute(update(Audit).where(Audit.document_id.in_(document_ids)).values(chosen_at=when))


def run_day(ctx: WorkerContext, day: Day, inbox: Path, truth: dict[int, str]) -> None:
    folder = inbox / f"day{day.index + 1}"
    folder.mkdir(parents=True)
    paths = []
    for n, (src, label) in enumerate(day.files):
        dst = folder / f"{n:04d}-{src.name}"
        dst = _worn(src, dst) if day.kind == "worn scans" else dst
        if day.kind != "worn scans":
            dst.hardlink_to(src)
        paths.append((dst, label))
    door = ingest_settings_from(ctx.settings).model_copy(update={"celery_roots": [folder]})
    job = admit(
        ctx.sessions,
        ClassifyJob(documents=[DocumentRef(path=str(p)) for p, _ in paths], on_done="archive"),
        None,
        door,
    )
    run_job(ctx, job)
    when = DAY0 + timedelta(days=day.index)
    with db.session_scope(ctx.sessions) as session:
        ids = [ref.document_id for ref in job.documents if ref.document_id is not None]
        for (_, label), doc_id in zip(paths, ids, strict=True):
            truth[doc_id] = label
            choose_audits(session, doc_id, ctx.settings.audit_rate)  # the runner's hook, without images
        _date_rows(session, ids, when)


def answer_everything(
    sessions: sessionmaker[Session], settings: WorkerSettings, truth: dict[int, str]
) -> None:
    """The operators: every audit item and every review page answered with the page's true class."""
    with sessions() as session:
        operator = create_operator(session, "bench", "a long enough password")
        for item in audit_items(session, limit=100_000):
            when = item.chosen_at + timedelta(hours=2)
            answer_audit(
                session,
                audit_id=item.audit_id,
                operator_id=operator.id,
                label=truth[item.document_id],
                now=when,
            )
        for prediction_id in list(session.scalars(pending_select(Prediction.id))):
            prediction = session.get(Prediction, prediction_id)
            assert prediction is not None
            label = truth[prediction.page.document_id]
            when = prediction.created_at + timedelta(hours=1)
            decide(
                session,
                settings,
                prediction_id=prediction_id,
                operator_id=operator.id,
                label=label,
                note=None,
                now=when,
            )


def report(session: Session, row: ModelVersion, work: Path, kinds: list[str]) -> dict[str, object]:
    start, end = DAY0, DAY0 + timedelta(days=len(kinds))
    drift = drift_by_day(session, row, start, end)
    days = accuracy_by_day(session, row.name, row.version)
    target = version_targets(session).get((row.name, row.version))
    model = f"{row.name}/{row.version}"
    (work / "quality_live_accuracy.png").write_bytes(
        live_accuracy_png(days, target, f"{model}: live accuracy")
    )
    (work / "quality_drift.png").write_bytes(drift_png(drift, f"{model}: drift by day"))
    by_day = {a.day.date(): a for a in days}
    rows = []
    for d in drift:
        i = (d.since.date() - start.date()).days
        stats = {s.key: s for s in d.statistics}
        a = by_day.get(d.since.date())
        rows.append({
            "day": i + 1, "kind": kinds[i], "pages": d.n_live,
            "review_rate": stats["review_rate"].value, "promised": stats["review_rate"].reference,
            "ks_d": stats["ks"].value, "ks_p": stats["ks"].p_value, "psi": stats["psi"].value,
            "verdicts": {k: s.verdict for k, s in stats.items()},
            "audits": a.interval.n if a else 0, "right": a.interval.k if a else 0,
            "accuracy": a.interval.estimate if a else None,
            "low": a.interval.low if a else None, "high": a.interval.high if a else None,
        })  # fmt: skip
    overall = [a.as_dict() for a in live_accuracy(session) if a.label is None]
    return {"model": model, "target": target, "days": rows, "overall": overall}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("version_dir", type=Path)
    parser.add_argument("pool_dir", type=Path)
    parser.add_argument("work_dir", type=Path)
    parser.add_argument("--audit-rate", type=float, default=0.1)
    parser.add_argument("--pages", type=int, default=300, help="pages a day")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--relabel", default=None, help="PREFIX=CLASS: two more days under a changed rule")
    args = parser.parse_args(argv)
    relabel = tuple(args.relabel.split("=", 1)) if args.relabel else None
    work = args.work_dir
    ws = WorkerSettings(
        data_dir=work / "data",
        models_dir=args.version_dir.parent.parent,
        threads=2,
        audit_rate=args.audit_rate,
    )  # type: ignore[call-arg]
    ws.ensure_dirs()
    db.upgrade(ws.database_url)
    sessions = db.make_sessionmaker(db.make_engine(ws.database_url))
    with db.session_scope(sessions) as session:
        activate(session, ws.models_dir, args.version_dir.parent.name, args.version_dir.name)
    ctx = WorkerContext(settings=ws, sessions=sessions, models=ModelCache(ws), sender=lambda q, p: None)
    truth: dict[int, str] = {}
    for day in plan_days(args.pool_dir, args.pages, args.seed, relabel):  # type: ignore[arg-type]
        run_day(ctx, day, work / "inbox", truth)
        print(f"day {day.index + 1} ({day.kind}): {len(day.files)} pages", flush=True)
    answer_everything(sessions, ws, truth)
    with sessions() as session:
        row = session.scalars(select(ModelVersion).where(ModelVersion.active)).one()
        numbers = report(session, row, work, plan(relabel))  # type: ignore[arg-type]
    numbers["machine"] = this_machine().cpu
    for r in numbers["days"]:  # type: ignore[attr-defined]
        print(
            f"day {r['day']} {r['kind']:<16} pages {r['pages']:>4}  "
            f"audits {r['right']}/{r['audits']}  {r['verdicts']}"
        )
    print(json.dumps(numbers, default=str))


if __name__ == "__main__":
    main()
