"""Audited auto-routing and drift end to end: a real `docsort worker` routes and audits documents,
operators answer on the review side, and the dashboard, the worker's Prometheus metrics and
`docsort models drift|accuracy` all say that live accuracy misses its target and the pages drifted."""

from __future__ import annotations

import json
import re
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import httpx
from fastapi.testclient import TestClient
from sqlalchemy import select

from docsort.procs import clean_env, docsort_command, settings_env
from review.app import create_app
from review.audits import answer_audit, audit_items
from review.settings import review_settings
from schema import db
from schema.enums import DecisionKind
from schema.tables import Audit, OutputDocument, RoutingDecision
from tests.quality.conftest import TARGET, free_port
from tests.support.review import login
from tests.support.review_items import make_operator
from tests.support.worker import files_under, wait_finished, write_page
from tests.support.worker_proc import StartWorker, send_classify
from worker.settings import WorkerSettings

GREYS = [*range(0, 40, 2), *range(216, 256, 2), *range(90, 150, 3)]  # clear pages, then unsure ones


def _metrics(port: int) -> dict[str, float]:
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=30).text
    found = {}
    for line in text.splitlines():
        if line.startswith("docsort_") and " " in line:
            name, value = line.rsplit(" ", 1)
            found[name] = float(value)
    return found


def test_audits_answered_wrong_raise_the_alarm_everywhere_and_drift_is_found(
    docsort_worker: StartWorker,
    quality_settings: WorkerSettings,
    unique_queue: str,
    tmp_path: Path,
) -> None:
    ws = quality_settings
    port = free_port()
    inbox = tmp_path / "in"
    inbox.mkdir()
    pages = [write_page(inbox / f"scan-{i:02d}.png", g) for i, g in enumerate(GREYS)]
    worker = docsort_worker(
        ws, queue=unique_queue, audit_rate=1.0, metrics_port=port, quality_refresh_seconds=0
    )
    send_classify(
        ws.broker_url, unique_queue, {"documents": [{"path": str(p)} for p in pages], "on_done": "archive"}
    )
    wait_finished(ws, len(pages), worker)
    worker.wait_for_log("job.processed")

    sessions = db.make_sessionmaker(db.make_engine(ws.database_url))
    with sessions() as s:
        outputs = {o.id: o for o in s.scalars(select(OutputDocument))}
        audits = s.scalars(select(Audit)).all()
        auto = [o for o in outputs.values() if o.kind == DecisionKind.auto]
        assert len(audits) == len(auto) > 30  # every document routed automatically is audited ...
        assert all(outputs[a.output_document_id].delivered_at for a in audits)  # ... and delivered
        assert len(files_under(ws.outbox_dir)) == len(auto)
        n_review = len(
            s.scalars(select(RoutingDecision).where(RoutingDecision.kind == DecisionKind.review)).all()
        )
        assert n_review >= 5
        ann = make_operator(s, "ann")
        waiting = audit_items(s, limit=1000)
        assert len(waiting) == len(audits) and all(item.pages[0].image_path for item in waiting)
        for i, item in enumerate(waiting):  # one answer in five says the model was wrong
            other = "light" if item.label == "dark" else "dark"
            answer_audit(
                s,
                audit_id=item.audit_id,
                operator_id=ann.id,
                label=other if i % 5 == 0 else item.label,
                now=datetime.now(UTC),
            )
    assert len(files_under(ws.outbox_dir)) == len(auto)  # answers deliver nothing

    # the review side: the dashboard's quality section warns
    rsettings = review_settings(ws)
    with TestClient(create_app(rsettings), follow_redirects=False) as client:
        login(client, "ann")
        html = client.get("/dashboard").text
    alerts = re.findall(r'data-testid="quality-alert">([^<]*)<', html)
    assert any(
        "tiny/1 (all classes)" in a and f"below the {100 * TARGET:.2f}% target" in a for a in alerts
    ), alerts
    assert any("tiny/1: top-class confidence drifted" in a for a in alerts), alerts

    # the worker's metrics say the same
    found = _metrics(port)
    assert found['docsort_live_accuracy_alert{class="",model="tiny",version="1"}'] == 1
    assert found['docsort_live_accuracy_answers{class="",model="tiny",version="1"}'] == len(audits)
    assert found['docsort_drift_alert{model="tiny",statistic="ks",version="1"}'] == 1
    assert found['docsort_drift_alert{model="tiny",statistic="review_rate",version="1"}'] == 1
    assert found['docsort_quality_alert{model="tiny",version="1"}'] == 1
    assert found['docsort_decisions_total{kind="auto"}'] == len(auto)

    # and so do the commands
    env = clean_env(settings_env(ws))
    out = subprocess.run(
        docsort_command("models", "drift", "tiny", "--json", "--plot", str(tmp_path / "drift.png")),
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    report = json.loads(out.stdout.splitlines()[-1])["versions"][0]
    assert report["model"] == "tiny/1" and report["live_pages"] == len(pages) and report["verdict"] == "drift"
    verdicts = {s["key"]: s["verdict"] for s in report["statistics"]}
    assert verdicts["ks"] == "drift" and verdicts["review_rate"] == "drift"
    assert "verdict: DRIFT" in out.stdout and (tmp_path / "drift.png").stat().st_size > 5000
    out = subprocess.run(
        docsort_command("models", "accuracy", "--json"), env=env, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr[-2000:]
    overall = json.loads(out.stdout.splitlines()[-1])["accuracy"][0]
    assert (overall["model"], overall["class"], overall["answered"]) == ("tiny/1", None, len(audits))
    assert overall["alert"] and overall["high"] < TARGET
