"""The job callback task, hosted by the worker processes (their app includes ``ingest.callbacks``).

``docsort.callback.v1`` (kwargs ``{"job_id": ...}``), sent by the worker when a job ends: POST the
job's result JSON to the job's callback URL, signed (see :mod:`ingest.signing`). A failed
attempt (network error, timeout, 408, 429 or 5xx) is retried with exponential backoff up to
``callback_max_retries`` times; another 4xx answer is final. ``callback_state`` on the job is set when
the callback is queued (:func:`worker.jobs.mark_callback_queued`), then ``retrying``, ``delivered`` or
``failed`` by this task. A delivered callback is never sent again. A callback URL whose host resolves
to an address that is not public (loopback, private, link-local ...) and not in
``DOCSORT_CALLBACK_ALLOWED_NETWORKS`` is refused when it would be sent: ``failed``, without a request.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

import httpx
from celery import Task, shared_task
from sqlalchemy.orm import Session, sessionmaker

from ingest.callback_target import CallbackRefused, Network, Target, check_target
from ingest.results import job_result
from ingest.settings import IngestSettings, get_ingest_settings
from ingest.signing import SIGNATURE_HEADER, callback_secret, sign_body
from schema import db
from schema.logs import get_logger
from schema.messages import CALLBACK_TASK
from schema.tables import ApiClient, SubmissionJob

log = get_logger(__name__)
RETRYABLE_STATUS = {408, 425, 429}
MAX_BACKOFF_SECONDS = 3600.0


@lru_cache(maxsize=4)
def _sessions(url: str) -> sessionmaker[Session]:
    return db.make_sessionmaker(db.make_engine(url))


def _set_state(sessions: sessionmaker[Session], job_id: str, state: str) -> None:
    with db.session_scope(sessions) as session:
        job = session.get(SubmissionJob, job_id)
        if job is not None:
            job.callback_state = state


def _prepare(sessions: sessionmaker[Session], job_id: str, settings: IngestSettings) -> dict[str, Any] | None:
    """URL, body and secret of the callback; None when there is nothing (more) to send."""
    with db.session_scope(sessions) as session:
        job = session.get(SubmissionJob, job_id)
        if job is None or not job.callback_url or job.callback_state == "delivered":
            return None
        result = job_result(session, job_id)
        assert result is not None
        client = session.get(ApiClient, job.client_id) if job.client_id else None
        payload = {
            "event": "job.finished",
            "sent_at": datetime.now(UTC).isoformat(),
            **result.model_dump(mode="json"),
        }
        return {
            "url": job.callback_url,
            "body": json.dumps(payload, separators=(",", ":")).encode(),
            "secret": callback_secret(
                settings.secret_key, client.name if client else "", client.secret_version if client else 0
            ),
        }


def post_callback(
    url: str, body: bytes, secret: str, job_id: str, timeout: float, allowed: Sequence[Network] = ()
) -> tuple[bool, bool, str]:
    """One attempt: (delivered, worth retrying, what happened). The URL's host is resolved and checked
    now, and the request goes to the address checked (:mod:`ingest.callback_target`); a refused address
    is final."""
    try:
        target = check_target(url, allowed)
    except CallbackRefused as exc:
        return False, False, f"refused: {exc}"
    headers = {
        "Content-Type": "application/json",
        SIGNATURE_HEADER: sign_body(secret, body),
        "X-Docsort-Job": job_id,
        "User-Agent": "docsort-callback/1",
        **target.headers,
    }
    try:
        response = _send_to_first_answering(target, body, headers, timeout)
    except httpx.HTTPError as exc:
        return False, True, f"{type(exc).__name__}: {exc}"
    code = response.status_code
    if 200 <= code < 300:
        return True, False, f"HTTP {code}"
    return False, code >= 500 or code in RETRYABLE_STATUS, f"HTTP {code}"


def _send_to_first_answering(
    target: Target, body: bytes, headers: dict[str, str], timeout: float
) -> httpx.Response:
    """POST to the checked addresses in turn until one accepts the connection."""
    with httpx.Client(timeout=timeout, follow_redirects=False) as client:
        for url in target.urls[:-1]:
            try:
                return client.send(_request(client, url, body, headers, target))
            except httpx.ConnectError:
                continue
        return client.send(_request(client, target.urls[-1], body, headers, target))


def _request(
    client: httpx.Client, url: httpx.URL, body: bytes, headers: dict[str, str], target: Target
) -> httpx.Request:
    return client.build_request("POST", url, content=body, headers=headers, extensions=target.extensions)


def backoff_seconds(settings: IngestSettings, retries: int) -> float:
    return float(min(settings.callback_backoff_seconds * (2**retries), MAX_BACKOFF_SECONDS))


@shared_task(name=CALLBACK_TASK, bind=True, max_retries=None, acks_late=True, ignore_result=True)
def send_job_callback(self: Task, job_id: str) -> str:
    """POST the finished job's result to its callback URL; returns the callback state."""
    settings = get_ingest_settings()
    sessions = _sessions(settings.database_url)
    call = _prepare(sessions, job_id, settings)
    if call is None:
        return "skipped"
    delivered, retryable, what = post_callback(
        call["url"],
        call["body"],
        call["secret"],
        job_id,
        settings.callback_timeout_seconds,
        settings.callback_allowed_networks,
    )
    attempt = self.request.retries + 1
    if delivered:
        _set_state(sessions, job_id, "delivered")
        log.info("callback delivered", job_id=job_id, attempt=attempt)
        return "delivered"
    if not retryable or self.request.retries >= settings.callback_max_retries:
        _set_state(sessions, job_id, "failed")
        log.error("callback failed", job_id=job_id, attempt=attempt, outcome=what, url=call["url"])
        return "failed"
    _set_state(sessions, job_id, "retrying")
    delay = backoff_seconds(settings, self.request.retries)
    log.warning(
        "callback attempt failed; retrying", job_id=job_id, attempt=attempt, outcome=what, delay=delay
    )
    raise self.retry(countdown=delay)
