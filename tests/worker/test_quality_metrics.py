"""Quality gauges for Prometheus, read from the database when scraped: live accuracy, drift, shadow."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
from prometheus_client import CollectorRegistry, generate_latest
from sqlalchemy.orm import Session, sessionmaker

from schema.settings import DocsortSettings
from tests.support.quality import register_version, route_document, two_class_probs
from tests.support.review import sessions_for
from tests.support.review_items import make_operator
from worker.metrics import QualityCollector

NOW = datetime.now(UTC)
NAMES = ["dark", "light"]


def _history(s: Session, settings: DocsortSettings) -> None:
    rng = np.random.default_rng(11)
    register_version(s, settings.models_dir, ref_probs=two_class_probs(rng, 2000), target=0.99)
    ann = make_operator(s, "ann")
    for i, p in enumerate(two_class_probs(rng, 300, shift=0.15)):  # live pages less sure than validation
        label = NAMES[int(p.argmax())]
        scores = dict(zip(NAMES, p.tolist(), strict=True))
        answer = label if i % 10 else "light" if label == "dark" else "dark"  # 1 in 10 wrong
        audited = i < 100
        route_document(
            s, label=label, scores=scores, when=NOW - timedelta(hours=2), audited=audited, answered=audited,
            answer=answer, operator_id=ann.id,
        )  # fmt: skip
    s.commit()


def _scrape(collector: QualityCollector) -> dict[str, float]:
    registry = CollectorRegistry()
    registry.register(collector)
    out = {}
    for line in generate_latest(registry).decode().splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            out[name] = float(value)
    return out


def _key(name: str, **labels: str) -> str:
    """A sample's name as the text format writes it (labels in name order)."""
    inner = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    return f"docsort_{name}{{{inner}}}"


V1 = {"model": "docsort", "version": "v1"}
ALL = {**V1, "class": ""}


def test_gauges_say_live_accuracy_below_target_and_drift(settings: DocsortSettings) -> None:
    sessions = sessions_for(settings)
    with sessions() as s:
        _history(s, settings)
    found = _scrape(QualityCollector(lambda: sessions, timedelta(hours=24), 0.0))
    assert found[_key("live_accuracy", **ALL)] == 0.9
    assert found[_key("live_accuracy_answers", **ALL)] == 100
    assert found[_key("live_accuracy_target", **ALL)] == 0.99
    assert found[_key("live_accuracy_high", **ALL)] < 0.99
    assert found[_key("live_accuracy_alert", **ALL)] == 1
    assert found[_key("drift_live_pages", **V1)] == 300
    assert found[_key("drift_alert", **V1, statistic="ks")] == 1
    assert found[_key("drift_p_value", **V1, statistic="ks")] < 0.01
    live_rate = found[_key("drift_value", **V1, statistic="review_rate")]
    assert 0 < found[_key("promised_review_rate", **V1)] < live_rate
    assert found[_key("drift_alert", **V1, statistic="psi")] == 0
    assert found[_key("quality_alert", **V1)] == 1


def test_gauges_are_reused_until_refresh_and_a_broken_database_answers_empty(
    settings: DocsortSettings,
) -> None:
    sessions = sessions_for(settings)
    with sessions() as s:
        register_version(s, settings.models_dir, target=0.99)
        route_document(s, label="dark", audited=True)
        s.commit()
    cached = QualityCollector(lambda: sessions, timedelta(hours=24), 3600.0)
    assert _scrape(cached)[_key("audit_waiting", **ALL)] == 1
    with sessions() as s:
        route_document(s, label="dark", audited=True)
        s.commit()
    assert _scrape(cached)[_key("audit_waiting", **ALL)] == 1
    fresh = QualityCollector(lambda: sessions, timedelta(hours=24), 0.0)
    assert _scrape(fresh)[_key("audit_waiting", **ALL)] == 2

    def broken() -> sessionmaker[Session]:
        raise OSError("database unreachable")

    assert _scrape(QualityCollector(broken, timedelta(hours=1), 0.0)) == {}
