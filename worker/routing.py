"""Routing: where a page goes once its label is decided, by the model or by an operator.

Rules (YAML) map a class to a destination: a folder under the outbox root (a path template such as
``{label}/{date:%Y-%m}``), a Celery queue, or a webhook. A folder destination can never leave its
root, whatever the label or file name holds. Delivery is idempotent: delivering the same page twice
leaves one file.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import yaml
from pydantic import BaseModel, Field, ValidationError, model_validator

from schema.errors import DocsortError

ROUTED_TASK = "docsort.routed.v1"
_UNSAFE = re.compile(r"[^A-Za-z0-9._ -]+")

QueueSender = Callable[[str, dict[str, Any]], None]


class RoutingError(DocsortError):
    """A destination is invalid or could not be written."""


class Destination(BaseModel):
    """Exactly one of ``folder`` (a template under the outbox root), ``queue`` or ``webhook``."""

    folder: str | None = None
    queue: str | None = None
    webhook: str | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> Destination:
        chosen = [k for k in ("folder", "queue", "webhook") if getattr(self, k)]
        if len(chosen) != 1:
            raise ValueError(
                f"a destination names exactly one of folder, queue, webhook (got {chosen or 'none'})"
            )
        if self.webhook and not self.webhook.startswith(("http://", "https://")):
            raise ValueError(f"webhook {self.webhook!r} must be an http(s) URL")
        return self

    def describe(self) -> str:
        if self.folder:
            return f"folder:{self.folder}"
        if self.queue:
            return f"queue:{self.queue}"
        return f"webhook:{self.webhook}"


class RoutingRules(BaseModel):
    default: Destination = Field(default_factory=lambda: Destination(folder="{label}/{date:%Y-%m}"))
    classes: dict[str, Destination] = Field(default_factory=dict)
    rejected: Destination = Field(default_factory=lambda: Destination(folder="_rejected/{date:%Y-%m}"))

    @classmethod
    def load(cls, path: Path | str | None) -> RoutingRules:
        """Rules from a YAML file, or the defaults (every class to ``{label}/{date:%Y-%m}``) when None."""
        if path is None:
            return cls()
        path = Path(path)
        try:
            raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise RoutingError(f"{path}: cannot read routing rules ({exc})") from exc
        try:
            return cls.model_validate(raw)
        except ValidationError as exc:
            raise RoutingError(f"{path}: invalid routing rules: {exc}") from exc

    def for_label(self, label: str | None) -> tuple[str, Destination]:
        """(rule name, destination) for a label; ``None`` means the operator rejected the page."""
        if label is None:
            return "rejected", self.rejected
        if label in self.classes:
            return f"classes.{label}", self.classes[label]
        return "default", self.default


def safe_component(text: str, limit: int = 100) -> str:
    """One path component that cannot climb out: no separators, no leading dots, no control chars."""
    cleaned = _UNSAFE.sub("_", text).strip(" ").lstrip(".")
    return (cleaned or "_")[:limit]


def render_folder(template: str, label: str, when: datetime, root: Path) -> Path:
    """The folder a template names for ``label`` inside ``root``; RoutingError if it would leave it."""
    try:
        rendered = template.format(label=safe_component(label), date=when)
    except (KeyError, IndexError, ValueError) as exc:
        raise RoutingError(f"folder template {template!r}: {exc}") from exc
    parts = [p for p in re.split(r"[\\/]+", rendered) if p not in ("", ".")]
    if any(p == ".." for p in parts):
        raise RoutingError(f"folder template {template!r} climbs out of the outbox ({rendered!r})")
    root_resolved = root.resolve()
    target = root_resolved.joinpath(*[safe_component(p) for p in parts]).resolve()
    if not target.is_relative_to(root_resolved):
        raise RoutingError(f"destination {target} is outside the outbox {root_resolved}")
    return target


@dataclass(frozen=True)
class RouteItem:
    """One page to deliver. ``content`` is the file to copy (the original for a one-page document,
    the rendered page for a page of a multi-page one)."""

    document_id: int
    page_number: int
    page_count: int
    label: str | None
    sha256: str
    filename: str
    content: Path

    def target_name(self) -> str:
        stem = safe_component(Path(self.filename).stem or "page", 80)
        suffix = self.content.suffix.lower() or Path(self.filename).suffix.lower()
        page = f"-p{self.page_number}" if self.page_count > 1 else ""
        ext = "." + safe_component(suffix.lstrip("."), 10) if suffix else ""
        return f"{stem}-{self.sha256[:10]}{page}{ext}"

    def payload(self) -> dict[str, Any]:
        return {
            "document_id": self.document_id,
            "page": self.page_number,
            "label": self.label,
            "sha256": self.sha256,
            "filename": self.filename,
            "path": str(self.content),
        }


def _copy_atomic(src: Path, dst: Path) -> None:
    tmp = dst.with_name(f".{dst.name}.part-{os.getpid()}")
    try:
        shutil.copyfile(src, tmp)
        os.replace(tmp, dst)
    finally:
        tmp.unlink(missing_ok=True)


def deliver_to_folder(item: RouteItem, template: str, root: Path, when: datetime) -> Path:
    folder = render_folder(template, item.label or "rejected", when, root)
    target = folder / item.target_name()
    if target.exists() and target.stat().st_size == item.content.stat().st_size:
        return target  # delivered before (a redelivered task): nothing to do
    try:
        folder.mkdir(parents=True, exist_ok=True)
        _copy_atomic(item.content, target)
    except OSError as exc:
        raise RoutingError(f"cannot write {target}: {exc.strerror or exc}") from exc
    return target


def post_webhook(url: str, payload: dict[str, Any], attempts: int = 3, backoff_s: float = 0.5) -> None:
    last: Exception | None = None
    for attempt in range(attempts):
        try:
            response = httpx.post(
                url, content=json.dumps(payload), timeout=10.0, headers={"content-type": "application/json"}
            )
            if response.status_code < 500:
                response.raise_for_status()
                return
            last = RoutingError(f"webhook {url} answered {response.status_code}")
        except httpx.HTTPStatusError as exc:
            raise RoutingError(f"webhook {url} refused the page: {exc.response.status_code}") from exc
        except httpx.HTTPError as exc:
            last = exc
        time.sleep(backoff_s * (2**attempt))
    raise RoutingError(f"webhook {url} failed after {attempts} attempts: {last}") from last


def deliver(
    item: RouteItem,
    destination: Destination,
    outbox: Path,
    *,
    when: datetime | None = None,
    send_to_queue: QueueSender | None = None,
) -> str:
    """Deliver a page; return where it went (a path, ``queue:NAME`` or ``webhook:URL``)."""
    when = when or datetime.now(UTC)
    if destination.folder:
        return str(deliver_to_folder(item, destination.folder, outbox, when))
    if destination.queue:
        if send_to_queue is None:
            raise RoutingError(f"queue destination {destination.queue!r} needs a broker connection")
        send_to_queue(destination.queue, item.payload())
        return f"queue:{destination.queue}"
    assert destination.webhook
    post_webhook(destination.webhook, item.payload())
    return f"webhook:{destination.webhook}"
