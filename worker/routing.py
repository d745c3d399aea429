"""Routing rules: which destination a label goes to, by the model's decision or an operator's.

Rules (YAML) map a class to a destination: a folder under the outbox root (a path template such as
``{label}/{date:%Y-%m}``), a Celery queue, or a webhook. A folder destination can never leave its
root, whatever the label or file name holds. :mod:`worker.delivery` carries the deliveries out.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import yaml
from pydantic import BaseModel, Field, ValidationError, field_validator, model_validator

from schema.errors import DocsortError
from schema.split import canonical_split

_UNSAFE = re.compile(r"[^A-Za-z0-9._ -]+")


class RoutingError(DocsortError):
    """A destination is invalid or could not be written."""


NAME_FIELDS = "{label}, {date}, {stem}, {sha}, {index}, {pages}"


class Destination(BaseModel):
    """Exactly one of ``folder`` (a template under the outbox root), ``queue`` or ``webhook``; ``name``
    is the template of a delivered document's file name (its suffix is added: ``.pdf``, ``.tif`` or the
    source's), from {label}, {date}, {stem} (the source's name), {sha} (10 characters of its sha256),
    {index} (the document's place in the source, 1-based) and {pages} (``1-3``)."""

    folder: str | None = None
    queue: str | None = None
    webhook: str | None = None
    name: str | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> Destination:
        chosen = [k for k in ("folder", "queue", "webhook") if getattr(self, k)]
        if len(chosen) != 1:
            raise ValueError(
                f"a destination names exactly one of folder, queue, webhook (got {chosen or 'none'})"
            )
        if self.webhook and not self.webhook.startswith(("http://", "https://")):
            raise ValueError(f"webhook {self.webhook!r} must be an http(s) URL")
        if self.name is not None:
            try:
                self.name.format(label="x", date=datetime.now(UTC), stem="x", sha="x", index=1, pages="1")
            except (KeyError, IndexError, ValueError) as exc:
                raise ValueError(f"name {self.name!r}: use the fields {NAME_FIELDS} ({exc})") from exc
        return self

    def describe(self) -> str:
        if self.folder:
            return f"folder:{self.folder}"
        if self.queue:
            return f"queue:{self.queue}"
        return f"webhook:{self.webhook}"


class SourceRules(BaseModel):
    """What a watch subfolder (a source tag) asks of its files."""

    split: str | None = Field(None, description="Separation rules of its files (schema.split).")

    _split = field_validator("split")(lambda v: canonical_split(v))


class RoutingRules(BaseModel):
    sources: dict[str, SourceRules] = Field(default_factory=dict)
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

    def split_for(self, tag: str) -> str | None:
        """The separation rules of a source tag: its own, or its nearest parent folder's."""
        parts = [p for p in tag.split("/") if p]
        for n in range(len(parts), 0, -1):
            found = self.sources.get("/".join(parts[:n]))
            if found is not None and found.split is not None:
                return found.split
        return None

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
