"""Prometheus metrics of the worker: pages, decisions by kind, latency, errors by reason, model version.

Celery runs tasks in forked child processes, so the metrics use prometheus-client's multiprocess mode:
``docsort worker --metrics-port`` sets ``PROMETHEUS_MULTIPROC_DIR`` before this module is imported, and
the parent process serves the sum of every child's values.
"""

from __future__ import annotations

import os

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server
from prometheus_client import multiprocess as prom_multiprocess

from schema.logs import get_logger

log = get_logger(__name__)

PAGES = Counter("docsort_pages_total", "Pages classified.", ["model"])
DECISIONS = Counter("docsort_decisions_total", "Routing decisions by kind.", ["kind"])
DOCUMENTS = Counter("docsort_documents_total", "Documents finished, by outcome.", ["outcome"])
ERRORS = Counter("docsort_errors_total", "Errors by reason.", ["reason"])
LATENCY = Histogram(
    "docsort_page_latency_seconds",
    "Model time per page (batch time / pages).",
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
)
TASK_SECONDS = Histogram(
    "docsort_task_seconds",
    "Wall time of one classify job.",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
)
MODEL = Gauge(
    "docsort_model_info",
    "The model version a worker process serves (1).",
    ["name", "version"],
    multiprocess_mode="liveall",
)


def page_done(model: str, kind: str, latency_s: float) -> None:
    PAGES.labels(model=model).inc()
    DECISIONS.labels(kind=kind).inc()
    LATENCY.observe(latency_s)


def document_done(outcome: str) -> None:
    DOCUMENTS.labels(outcome=outcome).inc()


def error(reason: str) -> None:
    ERRORS.labels(reason=reason).inc()


def model_loaded(name: str, version: str, previous: str | None = None) -> None:
    if previous is not None:
        MODEL.remove(name, previous)
    MODEL.labels(name=name, version=version).set(1)


def serve(port: int) -> None:
    """Serve the metrics of every worker process on ``port`` (multiprocess mode when configured)."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        prom_multiprocess.MultiProcessCollector(registry)
        start_http_server(port, registry=registry)
    else:
        start_http_server(port)
    log.info("metrics.serving", port=port)


def child_exited(pid: int) -> None:
    """Tell the multiprocess collector a child is gone (its live gauges stop counting)."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        prom_multiprocess.mark_process_dead(pid)
