"""Prometheus metrics of the worker: pages, decisions by kind, latency, errors by reason, model version,
pages scored in shadow; and, read from the database when scraped, the quality of automatic routing
(live accuracy from audits, drift against validation, shadow agreement: :class:`QualityCollector`).

Celery runs tasks in forked child processes, so the metrics use prometheus-client's multiprocess mode:
``docsort worker --metrics-port`` sets ``PROMETHEUS_MULTIPROC_DIR``, and the parent process serves the
sum of every child's values. prometheus-client chooses how it stores values when it is first imported,
so it is imported here on first use, never when this module is (the ``docsort`` command imports the
worker's modules before it knows whether a metrics directory will be set).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from functools import cache
from types import SimpleNamespace
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from schema.db import make_engine, make_sessionmaker
from schema.logs import get_logger
from worker.drift import DRIFT
from worker.quality import QualityReport, quality_report
from worker.settings import WorkerSettings, get_worker_settings

log = get_logger(__name__)


@cache
def _metrics() -> Any:
    from prometheus_client import Counter, Gauge, Histogram  # on first use: see the module docstring

    return SimpleNamespace(
        pages=Counter("docsort_pages_total", "Pages classified.", ["model"]),
        decisions=Counter("docsort_decisions_total", "Routing decisions by kind.", ["kind"]),
        documents=Counter("docsort_documents_total", "Documents finished, by outcome.", ["outcome"]),
        errors=Counter("docsort_errors_total", "Errors by reason.", ["reason"]),
        latency=Histogram(
            "docsort_page_latency_seconds",
            "Model time per page (batch time / pages).",
            buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
        ),
        task_seconds=Histogram(
            "docsort_task_seconds",
            "Wall time of one classify job.",
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
        ),
        model=Gauge(
            "docsort_model_info",
            "The model version a worker process serves (1).",
            ["name", "version"],
            multiprocess_mode="liveall",
        ),
        shadow_pages=Counter(
            "docsort_shadow_pages_total", "Pages scored by a version running in shadow.", ["model", "version"]
        ),
    )


def page_done(model: str, kind: str, latency_s: float) -> None:
    m = _metrics()
    m.pages.labels(model=model).inc()
    m.decisions.labels(kind=kind).inc()
    m.latency.observe(latency_s)


def document_done(outcome: str) -> None:
    _metrics().documents.labels(outcome=outcome).inc()


def job_done(seconds: float) -> None:
    _metrics().task_seconds.observe(seconds)


def error(reason: str) -> None:
    _metrics().errors.labels(reason=reason).inc()


def model_loaded(name: str, version: str, previous: str | None = None) -> None:
    m = _metrics()
    if previous is not None:
        m.model.remove(name, previous)
    m.model.labels(name=name, version=version).set(1)


def shadow_pages(name: str, version: str, n: int) -> None:
    if n:
        _metrics().shadow_pages.labels(model=name, version=version).inc(n)


def serve(port: int, settings: WorkerSettings | None = None) -> None:
    """Serve the metrics of every worker process on ``port`` (multiprocess mode when configured), and
    the quality of automatic routing read from the database (:class:`QualityCollector`)."""
    from prometheus_client import REGISTRY, CollectorRegistry, multiprocess, start_http_server

    settings = settings or get_worker_settings()
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    else:
        _metrics()
        registry = REGISTRY
    registry.register(QualityCollector.from_settings(settings))
    start_http_server(port, registry=registry)
    log.info("metrics.serving", port=port)


def child_exited(pid: int) -> None:
    """Tell the multiprocess collector a child is gone (its live gauges stop counting)."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid)


QUALITY_GAUGES = {
    "live_accuracy": "Accuracy of automatically routed documents shown by operators' audit answers "
    "(class empty: all classes).",
    "live_accuracy_low": "Lower end of the exact 95% interval of docsort_live_accuracy.",
    "live_accuracy_high": "Upper end of the exact 95% interval of docsort_live_accuracy.",
    "live_accuracy_answers": "Audit items answered.",
    "live_accuracy_target": "The accuracy the version's thresholds were chosen for.",
    "live_accuracy_alert": "1 when the live accuracy is below its target or not shown with enough answers.",
    "audit_waiting": "Audit items waiting for an operator's answer.",
    "drift_value": "Drift statistic over the window: KS D (ks), PSI (psi), live review rate (review_rate).",
    "drift_p_value": "p-value of the drift test (ks, review_rate).",
    "drift_alert": "1 when the statistic's verdict is drift.",
    "drift_live_pages": "Live pages compared with the validation pages.",
    "promised_review_rate": "Review rate the version's thresholds give on its validation pages.",
    "shadow_agreement": "Share of pages where a shadow version's class is the routing model's.",
    "shadow_operator_accuracy": "Accuracy on operator-labelled pages of a shadow version (who=shadow) and "
    "of the model that routed them (who=active).",
    "quality_alert": "1 when any live-accuracy or drift alert holds for the version.",
}


def quality_samples(report: QualityReport) -> Iterator[tuple[str, dict[str, str], float]]:
    """(gauge name without the ``docsort_`` prefix, labels, value) for every number of ``report``."""
    alerting: set[str] = set()
    for item in report.accuracy:
        labels = {"model": item.model_name, "version": item.model_version, "class": item.label or ""}
        ci = item.interval
        for name, value in (
            ("live_accuracy", ci.estimate),
            ("live_accuracy_low", ci.low),
            ("live_accuracy_high", ci.high),
            ("live_accuracy_answers", ci.n),
            ("live_accuracy_target", item.target),
            ("live_accuracy_alert", int(item.alert)),
        ):
            if value is not None:
                yield name, labels, float(value)
        if item.label is None:
            yield "audit_waiting", labels, float(item.waiting)
        if item.alert:
            alerting.add(item.model)
    for drift in report.drift:
        of_version = {"model": drift.model_name, "version": drift.model_version}
        yield "drift_live_pages", of_version, float(drift.n_live)
        for stat in drift.statistics:
            labels = {**of_version, "statistic": stat.key}
            if stat.value is not None:
                yield "drift_value", labels, stat.value
            if stat.p_value is not None:
                yield "drift_p_value", labels, stat.p_value
            yield "drift_alert", labels, float(stat.verdict == DRIFT)
            if stat.reference is not None:
                yield "promised_review_rate", of_version, stat.reference
            if stat.verdict == DRIFT:
                alerting.add(drift.model)
    for shadow in report.shadows:
        shadow_name, _, shadow_version = shadow.shadow.partition("/")
        labels = {"model": shadow_name, "version": shadow_version}
        if shadow.agreement.estimate is not None:
            yield "shadow_agreement", labels, shadow.agreement.estimate
        for who, ci in (("shadow", shadow.shadow_right), ("active", shadow.active_right)):
            if ci.estimate is not None:
                yield "shadow_operator_accuracy", {**labels, "who": who}, ci.estimate
    models = {(i.model_name, i.model_version) for i in report.accuracy} | {
        (d.model_name, d.model_version) for d in report.drift
    }
    for name, version in sorted(models):
        yield "quality_alert", {"model": name, "version": version}, float(f"{name}/{version}" in alerting)


class QualityCollector:
    """Quality gauges computed from the database when scraped, reused for ``refresh_seconds``."""

    def __init__(
        self,
        sessions: Callable[[], sessionmaker[Session]],
        window: timedelta,
        refresh_seconds: float,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._sessions = sessions
        self._window = window
        self._refresh = refresh_seconds
        self._now = now
        self._lock = threading.Lock()
        self._cached: tuple[float, list[tuple[str, dict[str, str], float]]] | None = None

    @classmethod
    def from_settings(cls, settings: WorkerSettings) -> QualityCollector:
        factory: list[sessionmaker[Session]] = []

        def sessions() -> sessionmaker[Session]:  # made on the first scrape, in the serving thread
            if not factory:
                factory.append(make_sessionmaker(make_engine(settings.database_url)))
            return factory[0]

        window = timedelta(hours=settings.drift_window_hours)
        return cls(sessions, window, settings.quality_refresh_seconds)

    def samples(self) -> list[tuple[str, dict[str, str], float]]:
        with self._lock:
            if self._cached is not None and time.monotonic() - self._cached[0] < self._refresh:
                return self._cached[1]
            try:
                with self._sessions()() as session:
                    found = list(quality_samples(quality_report(session, self._now(), self._window)))
            except Exception as exc:  # a scrape must answer: the worker's own metrics still count
                log.error("metrics.quality_failed", reason=str(exc))
                found = self._cached[1] if self._cached else []
            self._cached = (time.monotonic(), found)
            return found

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import GaugeMetricFamily

        families: dict[str, Any] = {}
        for name, labels, value in self.samples():
            family = families.get(name)
            if family is None:
                family = GaugeMetricFamily(f"docsort_{name}", QUALITY_GAUGES[name], labels=list(labels))
                families[name] = family
            family.add_metric(list(labels.values()), value)
        yield from families.values()

    def describe(self) -> list[Any]:
        return []  # registered without a first collect: the database may not answer yet
