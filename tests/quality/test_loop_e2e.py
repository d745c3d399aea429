"""Shadow and the retraining loop end to end: a real `docsort worker` runs a candidate in shadow beside
the active model; operators decide review pages on the review page and answer audit items;
`docsort train --from-reviews` adds their pages with provenance, trains, compares and activates; the
running worker then serves the new version."""

from __future__ import annotations

import json
import os
import subprocess
from datetime import UTC, datetime
from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy import select

from docsort.procs import clean_env, docsort_command, settings_env
from review.app import create_app
from review.audits import answer_audit, audit_items
from review.queue import pending_select
from review.settings import review_settings
from schema import db
from schema.enums import DecisionKind, DecisionOrigin
from schema.tables import ModelVersion, OutputDocument, Prediction, Review, RoutingDecision
from tests.support.quality import make_biased_tiny_model
from tests.support.review import login
from tests.support.review_items import make_operator
from tests.support.worker import wait_finished, write_page
from tests.support.worker_proc import StartWorker, send_classify
from trainer.loop import read_provenance
from worker.registry import sync_registry
from worker.settings import WorkerSettings

GREYS = [0, 20, 40, 60, 236, 250, 215, 200, 150, 160, 120, 125, 131, 135]


def _run(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    extra = {"TF_CPP_MIN_LOG_LEVEL": "3", "DOCSORT_TF_THREADS": "1", "DOCSORT_LOG_LEVEL": "WARNING"}
    return subprocess.run(
        docsort_command(*args), env={**env, **extra}, capture_output=True, text=True, timeout=600
    )


def _training_folder(root: Path) -> Path:
    for name, greys in (("dark", range(0, 112, 7)), ("light", range(148, 256, 7))):
        (root / name).mkdir(parents=True)
        for g in greys:
            write_page(root / name / f"t{g:03d}.png", g, size=(48, 64))
    return root


def test_shadow_then_operators_answers_train_a_version_that_the_worker_serves(
    docsort_worker: StartWorker,
    quality_settings: WorkerSettings,
    unique_queue: str,
    tmp_path: Path,
) -> None:
    ws = quality_settings
    make_biased_tiny_model(ws.models_dir, "2", dark_bias=1.25)  # the candidate in shadow: calls grey 150 dark
    sessions = db.make_sessionmaker(db.make_engine(ws.database_url))
    with sessions() as s:
        sync_registry(s, ws.models_dir)
        s.commit()
    inbox = tmp_path / "in"
    inbox.mkdir()
    pages = [write_page(inbox / f"scan-{i:02d}.png", g) for i, g in enumerate(GREYS)]
    worker = docsort_worker(ws, queue=unique_queue, audit_rate=1.0, shadow_model="tiny/2")
    send_classify(
        ws.broker_url, unique_queue, {"documents": [{"path": str(p)} for p in pages], "on_done": "archive"}
    )
    wait_finished(ws, len(pages), worker)
    worker.wait_for_log("job.processed")
    env = clean_env(settings_env(ws))

    # the shadow version scored every page, routed none
    out = _run("models", "shadow", "--json", env=env)
    assert out.returncode == 0, out.stderr[-2000:]
    (shadow,) = json.loads(out.stdout.splitlines()[-1])["shadows"]
    assert shadow["shadow"] == "tiny/2" and shadow["active"] == ["tiny/1"]
    assert shadow["agreement"]["n"] == len(pages) and shadow["agreement"]["k"] < len(pages)

    # operators: review pages decided on the review page, audit items answered
    with sessions() as s:
        ann = make_operator(s, "ann")
        waiting = list(s.scalars(pending_select(Prediction.id)))
        assert waiting and all(
            s.get(Prediction, p).model_version == "1"
            for p in waiting  # type: ignore[union-attr]
        )
        for item in audit_items(s, limit=100):
            answer_audit(
                s, audit_id=item.audit_id, operator_id=ann.id, label=item.label, now=datetime.now(UTC)
            )
        n_audits = len(audit_items(s, waiting=False, limit=100))
    rs = review_settings(ws).model_copy(update={"review_undo_seconds": 0})  # answers delivered at once
    with TestClient(create_app(rs), follow_redirects=False) as client:
        token = login(client, "ann")
        for prediction_id in waiting:
            with sessions() as s:
                grey = s.get(Prediction, prediction_id)
                label = "dark" if grey is not None and grey.scores["dark"] >= 0.5 else "light"  # type: ignore[index]
            answer = client.post(f"/items/{prediction_id}/decide", data={"label": label, "csrf_token": token})
            assert answer.status_code == 303, answer.text
    with sessions() as s:
        assert len(s.scalars(select(Review)).all()) == len(waiting)
        reviewed = s.scalars(select(OutputDocument).where(OutputDocument.kind == DecisionKind.review)).all()
        assert reviewed and all(o.superseded_at for o in reviewed)  # replaced by the operator's documents
        operators = s.scalars(
            select(OutputDocument).where(OutputDocument.origin == DecisionOrigin.operator)
        ).all()
        assert len(operators) == len(reviewed) and all(o.delivered_at for o in operators)

    # the loop: operator pages into the training folder, a candidate, the comparison, activation
    data = _training_folder(tmp_path / "pages")
    out = _run(
        "train", str(data), "--from-reviews", "--models-dir", str(ws.models_dir), "--image-size", "32",
        "--epochs", "2", "--auto-accuracy", "0.9", "--confidence", "0.8", "--activate", "always", "-q",
        env=env,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]
    assert f"operator pages: {len(waiting) + n_audits} added" in out.stdout
    assert "candidate  " in out.stdout and "held-out pages" in out.stdout and "by the rule" in out.stdout
    assert "activated: --activate always" in out.stdout
    version_dir = Path(out.stdout.strip().splitlines()[-1])
    provenance = read_provenance(data)
    assert len(provenance) == len(waiting) + n_audits
    sources = {r["source"] for r in provenance.values()}
    assert sources == {"review", "audit"} and all(
        r["operator"] == "ann" and r["sha256"] for r in provenance.values()
    )
    assert all((data / f).is_file() for f in provenance)
    with sessions() as s:
        active = s.scalars(select(ModelVersion).where(ModelVersion.active)).one()
    assert (active.name, active.version) == ("tiny", version_dir.name)

    # the running worker switches to it for the next job
    send_classify(
        ws.broker_url, unique_queue, {"documents": [{"path": str(write_page(inbox / "next.png", 10))}]}
    )
    worker.wait_for_log("models.switched")
    wait_finished(ws, len(pages) + 1, worker)
    with sessions() as s:
        versions = {p.model_version for p in s.scalars(select(Prediction).join(RoutingDecision))}
    assert version_dir.name in versions
    assert os.path.isfile(version_dir / "report" / "split.json")
