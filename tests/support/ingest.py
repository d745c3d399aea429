"""Helpers of the ingest suite: real Redis queue reading, page files, `docsort` subprocesses, waiting."""

from __future__ import annotations

import base64
import io
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import redis
from PIL import Image

from schema.messages import RUN_TASK, ClassifyJob

DOCSORT = Path(sys.executable).with_name("docsort")


def png_bytes(seed: int, grey: int | None = None, size: int = 24) -> bytes:
    """A small PNG page, distinct for each seed (so each has its own sha256)."""
    rng = np.random.default_rng(seed)
    level = int(rng.integers(0, 256)) if grey is None else grey
    arr = np.full((size, size, 3), level, dtype=np.uint8)
    arr[0, :4, 0] = np.frombuffer(seed.to_bytes(4, "big"), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr, "RGB").save(buf, format="PNG")
    return buf.getvalue()


def raw_messages(client: redis.Redis, queue: str) -> list[dict[str, Any]]:
    """Every message waiting on a Celery/kombu Redis queue, oldest first, left in place."""
    out = []
    for raw in reversed(client.lrange(queue, 0, -1)):
        envelope = json.loads(raw)
        body = envelope["body"]
        if envelope["properties"].get("body_encoding") == "base64":
            body = base64.b64decode(body)
        args, kwargs, _embed = json.loads(body)
        out.append(
            {"task": envelope["headers"]["task"], "args": args, "kwargs": kwargs, "envelope": envelope}
        )
    return out


def classify_jobs(client: redis.Redis, queue: str) -> list[ClassifyJob]:
    return [
        ClassifyJob.model_validate(m["kwargs"]["job"])
        for m in raw_messages(client, queue)
        if m["task"] == RUN_TASK
    ]


def queued_document_ids(client: redis.Redis, queue: str) -> list[int]:
    ids = []
    for job in classify_jobs(client, queue):
        for ref in job.documents:
            assert ref.document_id is not None
            ids.append(ref.document_id)
    return ids


def wait_until(predicate: Callable[[], Any], timeout: float, interval: float = 0.1, what: str = "") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what or predicate}")
        time.sleep(interval)


def docsort_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """This process's environment (the fixtures' DOCSORT_* settings) plus ``extra``."""
    return {**os.environ, **(extra or {})}


def start_docsort(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    fh = log.open("ab")
    return subprocess.Popen([str(DOCSORT), *args], env=env, stdout=fh, stderr=subprocess.STDOUT)


def stop(proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM, timeout: float = 30) -> int:
    if proc.poll() is None:
        proc.send_signal(sig)
    return proc.wait(timeout=timeout)
