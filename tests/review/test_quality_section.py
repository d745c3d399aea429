"""The dashboard's quality section: live accuracy with its alert, drift verdicts, shadow versions, figures."""

from __future__ import annotations

import base64
import io
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
from fastapi.testclient import TestClient
from PIL import Image
from sqlalchemy.orm import Session, sessionmaker

from review.quality import quality_section
from review.settings import ReviewSettings
from tests.support.quality import register_version, route_document, two_class_probs
from tests.support.review import login
from tests.support.review_items import make_operator

NAMES = ["dark", "light"]


def _history(s: Session, settings: ReviewSettings, *, wrong_every: int) -> None:
    rng = np.random.default_rng(2)
    row = register_version(s, settings.models_dir, ref_probs=two_class_probs(rng, 1500), target=0.99)
    (Path(row.path) / "report" / "risk_coverage.png").write_bytes(_png())
    ann = make_operator(s, "ann")
    now = datetime.now(UTC)
    for i, p in enumerate(two_class_probs(rng, 200, mix=0.9)):  # the class mix moved
        label = NAMES[int(p.argmax())]
        answer = "light" if label == "dark" else "dark"
        route_document(
            s,
            label=label,
            scores=dict(zip(NAMES, p.tolist(), strict=True)),
            when=now - timedelta(days=i % 3, minutes=5),
            audited=i < 60,
            answered=i < 50,
            answer=answer if i % wrong_every == 0 else label,
            operator_id=ann.id,
        )
    route_document(s, label="dark", model_version="v2", when=now)  # v2 is not registered: no drift for it
    s.commit()


def _png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (40, 30), "white").save(out, format="PNG")
    return out.getvalue()


def test_section_warns_when_live_accuracy_misses_its_target_and_the_mix_drifted(
    client: TestClient, sessions: sessionmaker[Session], rsettings: ReviewSettings
) -> None:
    with sessions() as s:
        _history(s, rsettings, wrong_every=5)  # 10 of 50 answers wrong
    login(client, "ann")
    html = client.get("/dashboard?hours=168").text
    assert 'data-testid="quality"' in html
    alerts = re.findall(r'data-testid="quality-alert">([^<]*)<', html)
    assert any(
        "docsort/v1 (all classes): live accuracy 80.00%" in a and "below the 99.00% target" in a
        for a in alerts
    )
    assert any("predicted class mix drifted" in a for a in alerts)
    table = html[html.index('data-testid="live-accuracy"') :]
    assert "below target" in table and ">10<" in table  # audit items still waiting
    figures = re.findall(r'<img src="data:image/png;base64,([^"]+)" alt="([^"]+)"', html)
    assert [alt for _, alt in figures] == [
        "accuracy of audited documents by day",
        "drift statistics by day",
        "validation risk-coverage curve",
    ]
    for data, _ in figures:
        assert Image.open(io.BytesIO(base64.b64decode(data))).size[0] > 30


def test_section_without_alerts_when_every_answer_is_right(
    sessions: sessionmaker[Session], rsettings: ReviewSettings
) -> None:
    with sessions() as s:
        _history(s, rsettings, wrong_every=10**6)  # only i = 0 is wrong
        section = quality_section(s, datetime.now(UTC), hours=24)
    accuracy = section.report.accuracy[0]
    assert (accuracy.interval.k, accuracy.interval.n, accuracy.verdict) == (49, 50, "too few answers")
    assert not any("live accuracy" in a for a in section.alerts)
