"""Model versions: the folders under ``models_dir``, the ``model_versions`` table, and which one is active.

Exactly one version per name is active. A worker serves the active version of its model name and,
between tasks, switches to a newly activated one without a restart (:class:`ModelCache`).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from schema.errors import DocsortError, ModelIncompatible
from schema.logs import get_logger
from schema.manifest import MANIFEST_NAME, ModelManifest, load_manifest
from schema.tables import ModelVersion, utcnow
from worker import metrics
from worker.inference import LoadedModel, load_model
from worker.settings import WorkerSettings

log = get_logger(__name__)


class ModelUnavailable(DocsortError):
    """No usable model version for a name: none registered, none active, or its folder is unusable."""


@dataclass(frozen=True)
class FoundVersion:
    path: Path
    manifest: ModelManifest


def scan_models_dir(models_dir: Path) -> tuple[list[FoundVersion], list[str]]:
    """Version folders ``models_dir/<name>/<version>/`` with a valid manifest; (found, problems)."""
    found: list[FoundVersion] = []
    problems: list[str] = []
    if not models_dir.is_dir():
        return found, problems
    for manifest_path in sorted(models_dir.glob(f"*/*/{MANIFEST_NAME}")):
        folder = manifest_path.parent
        if folder.name.startswith("."):
            continue  # a version being published (written under a dot name, then renamed)
        try:
            found.append(FoundVersion(folder, load_manifest(folder)))
        except ModelIncompatible as exc:
            problems.append(str(exc))
    return found, problems


def version_row(session: Session, name: str, version: str) -> ModelVersion | None:
    return session.scalar(
        select(ModelVersion).where(ModelVersion.name == name, ModelVersion.version == version)
    )


def sync_registry(session: Session, models_dir: Path) -> list[str]:
    """Add (or refresh) a row for every valid version folder; returns the problems found. No commit."""
    found, problems = scan_models_dir(models_dir)
    for item in found:
        m = item.manifest
        row = version_row(session, m.name, m.version)
        if row is None:
            session.add(
                ModelVersion(
                    name=m.name,
                    version=m.version,
                    sha256=m.sha256,
                    path=str(item.path.resolve()),
                    manifest=m.model_dump(mode="json"),
                    created_at=utcnow(),
                )
            )
        else:
            row.sha256, row.path, row.manifest = m.sha256, str(item.path.resolve()), m.model_dump(mode="json")
    session.flush()
    return problems


def activate(session: Session, models_dir: Path, name: str, version: str) -> ModelVersion:
    """Make ``name``/``version`` the active version of ``name`` (registering folders first). No commit."""
    sync_registry(session, models_dir)
    row = version_row(session, name, version)
    if row is None:
        known = [f"{r.name}/{r.version}" for r in session.scalars(select(ModelVersion))]
        raise ModelUnavailable(
            f"no model version {name}/{version} in {models_dir} (known: {known or 'none'})"
        )
    load_manifest(Path(row.path))  # refuse a folder whose model file does not match its manifest
    for other in session.scalars(select(ModelVersion).where(ModelVersion.name == name, ModelVersion.active)):
        if other.id != row.id:
            other.active = False
    row.active = True
    row.activated_at = utcnow()
    session.flush()
    log.info("models.activated", name=name, version=version, path=row.path)
    return row


def active_version(session: Session, name: str | None = None) -> ModelVersion | None:
    """The active version of ``name``; with no name, the most recently activated of any name."""
    stmt = select(ModelVersion).where(ModelVersion.active)
    if name is not None:
        stmt = stmt.where(ModelVersion.name == name)
    return session.scalar(stmt.order_by(ModelVersion.activated_at.desc(), ModelVersion.id.desc()).limit(1))


class ModelCache:
    """The models one worker process serves: loaded once, swapped when another version becomes active."""

    def __init__(self, settings: WorkerSettings) -> None:
        self.settings = settings
        self._loaded: dict[str, LoadedModel] = {}
        self._fixed: LoadedModel | None = None
        self._lock = threading.Lock()

    def _load(self, path: Path) -> LoadedModel:
        s = self.settings
        return load_model(path, s.provider, s.intra_op_threads(), s.batch_size)

    def fixed(self) -> LoadedModel:
        if self._fixed is None:
            assert self.settings.model_dir is not None
            self._fixed = self._load(self.settings.model_dir)
            metrics.model_loaded(self._fixed.name, self._fixed.version)
        return self._fixed

    def get(self, session: Session | None, name: str | None = None) -> LoadedModel:
        """The model to use for a job asking for ``name`` (None: the worker's own model name)."""
        wanted = name or self.settings.model_name
        with self._lock:
            if self.settings.model_dir is not None:
                model = self.fixed()
                if wanted and wanted != model.name:
                    raise ModelUnavailable(f"this worker serves model {model.name!r} only, not {wanted!r}")
                return model
            if session is None:
                raise ModelUnavailable("no database to find the active model in; pass a model folder")
            row = active_version(session, wanted)
            if row is None:
                raise ModelUnavailable(
                    f"no active version of model {wanted or '(any)'}: "
                    "run `docsort models activate NAME VERSION`"
                )
            current = self._loaded.get(row.name)
            if current is not None and current.version == row.version:
                return current
            try:
                model = self._load(Path(row.path))
            except ModelIncompatible as exc:
                if current is not None:  # keep serving the version that works, and say so
                    log.error(
                        "models.switch_failed", name=row.name, wanted=row.version, serving=current.version
                    )
                    return current
                raise ModelUnavailable(
                    f"active model {row.name}/{row.version} cannot be used: {exc}"
                ) from exc
            if current is not None:
                log.info("models.switched", name=row.name, old=current.version, new=row.version)
            metrics.model_loaded(model.name, model.version, current.version if current else None)
            self._loaded[row.name] = model
            return model

    def loaded(self) -> list[LoadedModel]:
        return [*self._loaded.values(), *([self._fixed] if self._fixed else [])]
