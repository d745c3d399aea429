"""The Celery application of docsort workers (Redis or RabbitMQ broker, JSON only).

Delivery guarantees: a job is acknowledged after it ran (``acks_late``), goes back to the queue if its
process dies (``task_reject_on_worker_lost``) or is killed at the hard time limit
(``task_acks_on_timeout`` off: its death is then counted like any other, and a job that keeps dying is
failed with the reason, see :mod:`worker.tasks`), one job is reserved at a time per process (prefetch 1),
and an unacknowledged job returns only after ``visibility_timeout``, which is checked to exceed the
task time limit. A pickled (or any non-JSON) message is refused and dropped; the worker keeps running.

Unacknowledged messages are tracked under keys named after the worker's first queue, so workers of
different queues sharing one Redis never restore each other's jobs.
"""

from __future__ import annotations

from typing import Any

from celery import Celery

from schema.messages import CLASSIFY_TASK, RUN_TASK
from worker.settings import WorkerSettings, get_worker_settings

# The worker processes also host the ingest tasks that run beside jobs: the Celery door and the
# job callbacks. Named here, not imported: the worker package never imports ingest.
INCLUDE = ["worker.tasks", "ingest.celery_door", "ingest.callbacks"]


def celery_config(settings: WorkerSettings) -> dict[str, Any]:
    primary = settings.queues[0]
    soft_limit = max(1, settings.task_time_limit - min(60, settings.task_time_limit // 10))
    return {
        "broker_url": settings.broker_url,
        "broker_connection_retry_on_startup": True,
        "broker_transport_options": {
            "visibility_timeout": settings.visibility_timeout,
            "unacked_key": f"{primary}.unacked",
            "unacked_index_key": f"{primary}.unacked_index",
            "unacked_mutex_key": f"{primary}.unacked_mutex",
        },
        "task_serializer": "json",
        "accept_content": ["json"],
        "result_serializer": "json",
        "result_accept_content": ["json"],
        "task_ignore_result": True,
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "task_acks_on_failure": True,
        "task_acks_on_timeout": False,
        "worker_prefetch_multiplier": 1,
        "task_default_queue": primary,
        "task_routes": {CLASSIFY_TASK: {"queue": primary}, RUN_TASK: {"queue": primary}},
        "task_time_limit": settings.task_time_limit,
        "task_soft_time_limit": soft_limit,
        "worker_hijack_root_logger": False,
        "worker_redirect_stdouts": False,
        "worker_send_task_events": False,
        "worker_cancel_long_running_tasks_on_connection_loss": False,
        "enable_utc": True,
    }


def make_app() -> Celery:
    """The app, configured from the worker settings when its configuration is first read (not on
    import: a command sets its options before that), or by :func:`configure` with given settings."""
    app = Celery("docsort", include=INCLUDE, set_as_current=True)
    app.add_defaults(lambda: celery_config(get_worker_settings()))
    return app


def configure(settings: WorkerSettings) -> None:
    app.conf.update(celery_config(settings))


app = make_app()
