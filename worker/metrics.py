"""Prometheus metrics of the worker: pages, decisions by kind, latency, errors by reason, model version.

Celery runs tasks in forked child processes, so the metrics use prometheus-client's multiprocess mode:
``docsort worker --metrics-port`` sets ``PROMETHEUS_MULTIPROC_DIR``, and the parent process serves the
sum of every child's values. prometheus-client chooses how it stores values when it is first imported,
so it is imported here on first use, never when this module is (the ``docsort`` command imports the
worker's modules before it knows whether a metrics directory will be set).
"""

from __future__ import annotations

import os
from functools import cache
from types import SimpleNamespace
from typing import Any

from schema.logs import get_logger

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


def serve(port: int) -> None:
    """Serve the metrics of every worker process on ``port`` (multiprocess mode when configured)."""
    from prometheus_client import CollectorRegistry, multiprocess, start_http_server

    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        start_http_server(port, registry=registry)
    else:
        _metrics()
        start_http_server(port)
    log.info("metrics.serving", port=port)


def child_exited(pid: int) -> None:
    """Tell the multiprocess collector a child is gone (its live gauges stop counting)."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid)
