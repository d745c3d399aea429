"""Settings shared by every deployable (pydantic-settings, env prefix ``DOCSORT_``, ``.env`` supported).

Each deployable may subclass :class:`DocsortSettings` to add its own fields; all of them validate at
start and say what to fix.
"""

from __future__ import annotations

import logging
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from schema.errors import SettingsInvalid

DEFAULT_SECRET = "change-me"
DEFAULT_DATA_DIR = Path("docsort-data")
DIRS = ("models", "inbox", "processing", "outbox", "error", "archive", "review")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


class DocsortSettings(BaseSettings):
    """Every setting, its default and its meaning. The README's settings table is made from this."""

    model_config = SettingsConfigDict(
        env_prefix="DOCSORT_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    environment: Literal["local", "production"] = Field(
        "local", description="`production` refuses default secrets and SQLite."
    )
    data_dir: Path = Field(DEFAULT_DATA_DIR, description="Root of every default path below.")
    database_url: str = Field(
        "", description="SQLAlchemy URL; default: a SQLite file `docsort.db` under the data directory."
    )
    broker_url: str = Field("redis://localhost:6379/0", description="Celery broker (Redis).")
    models_dir: Path = Field(
        DEFAULT_DATA_DIR / "models", description="Model versions; default `<data_dir>/models`."
    )
    inbox_dir: Path = Field(
        DEFAULT_DATA_DIR / "inbox", description="Watch folder; default `<data_dir>/inbox`."
    )
    processing_dir: Path = Field(
        DEFAULT_DATA_DIR / "processing",
        description="Files being classified; default `<data_dir>/processing`.",
    )
    outbox_dir: Path = Field(
        DEFAULT_DATA_DIR / "outbox", description="Root of folder destinations; default `<data_dir>/outbox`."
    )
    error_dir: Path = Field(
        DEFAULT_DATA_DIR / "error", description="Files that failed; default `<data_dir>/error`."
    )
    archive_dir: Path = Field(
        DEFAULT_DATA_DIR / "archive",
        description="Files whose outcome is recorded; default `<data_dir>/archive`.",
    )
    review_dir: Path = Field(
        DEFAULT_DATA_DIR / "review",
        description="CAM overlays and review images; default `<data_dir>/review`.",
    )
    routes_file: Path | None = Field(
        None, description="Routing rules (YAML); default: every class to a folder."
    )
    log_level: str = Field("INFO", description="DEBUG, INFO, WARNING, ERROR or CRITICAL.")
    log_format: Literal["console", "json"] = Field("console", description="`json` for log shippers.")
    secret_key: str = Field(DEFAULT_SECRET, description="Signs sessions and callbacks; set in production.")

    @field_validator("log_level")
    @classmethod
    def _known_level(cls, value: str) -> str:
        level = value.upper()
        if level not in LOG_LEVELS:
            raise ValueError(f"DOCSORT_LOG_LEVEL={value!r}: use one of {', '.join(LOG_LEVELS)}")
        return level

    @field_validator("broker_url")
    @classmethod
    def _known_broker(cls, value: str) -> str:
        if not value.startswith(("redis://", "rediss://", "memory://", "amqp://", "sentinel://")):
            raise ValueError(
                f"DOCSORT_BROKER_URL={value!r}: expected redis://host:port/db (or rediss:// with TLS)"
            )
        return value

    @model_validator(mode="before")
    @classmethod
    def _default_dirs(cls, data: object) -> object:
        """A directory not given lies under the data directory (resolved once, here)."""
        if isinstance(data, dict):
            root = Path(data.get("data_dir") or DEFAULT_DATA_DIR)
            for name in DIRS:
                if data.get(f"{name}_dir") in (None, ""):
                    data[f"{name}_dir"] = root / name
        return data

    @model_validator(mode="after")
    def _fill_defaults(self) -> DocsortSettings:
        root = self.data_dir
        if self.routes_file is not None and not self.routes_file.is_file():
            raise ValueError(f"DOCSORT_ROUTES_FILE={self.routes_file}: no such file")
        if not self.database_url:
            self.database_url = f"sqlite:///{(root / 'docsort.db').as_posix()}"
        try:
            make_url(self.database_url)
        except ArgumentError as exc:
            raise ValueError(
                f"DOCSORT_DATABASE_URL={self.database_url!r} is not a database URL "
                "(e.g. postgresql+psycopg://user@host/db or sqlite:///path/docsort.db)"
            ) from exc
        if self.environment == "production":
            if self.secret_key == DEFAULT_SECRET or len(self.secret_key) < 16:
                raise ValueError("DOCSORT_SECRET_KEY must be set to a random string of 16+ characters")
            if self.database_url.startswith("sqlite"):
                raise ValueError("DOCSORT_DATABASE_URL must name PostgreSQL in production, not SQLite")
        return self

    def dir(self, name: str) -> Path:
        """A configured directory, created if missing."""
        path: Path = getattr(self, f"{name}_dir")
        path.mkdir(parents=True, exist_ok=True)
        return path

    def ensure_dirs(self) -> None:
        for name in DIRS:
            self.dir(name)
        if self.database_url.startswith("sqlite:///"):
            Path(self.database_url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)

    @property
    def logging_level(self) -> int:
        return int(logging.getLevelName(self.log_level))


def describe_validation_error(exc: ValidationError) -> str:
    lines = ["docsort settings are invalid:"]
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"]) or "settings"
        msg = str(err["msg"]).removeprefix("Value error, ")
        env = f"DOCSORT_{loc.upper()}" if loc != "settings" else ""
        lines.append(f"  - {env + ': ' if env and env not in msg else ''}{msg}")
    return "\n".join(lines)


def load_settings(**overrides: object) -> DocsortSettings:
    """Read settings from the environment and ``.env``; raise :class:`SettingsInvalid` if invalid."""
    try:
        return DocsortSettings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        raise SettingsInvalid(describe_validation_error(exc)) from exc


@lru_cache(maxsize=1)
def get_settings() -> DocsortSettings:
    return load_settings()
