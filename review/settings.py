"""Settings of the review web application: the shared ones plus the review's own (prefix ``DOCSORT_``)."""

from __future__ import annotations

from pydantic import Field, ValidationError

from schema.errors import SettingsInvalid
from schema.settings import DocsortSettings, describe_validation_error


class ReviewSettings(DocsortSettings):
    review_claim_seconds: int = Field(
        300, ge=10, le=86400, description="How long opening a page holds it for one operator."
    )
    review_undo_seconds: float = Field(
        10,
        ge=0,
        le=600,
        description="How long an operator can undo an answer; a document is delivered only after its "
        "latest answer is this old (plus 2 s). 0: no undo, delivered at once.",
    )
    review_refresh_seconds: int = Field(
        30, ge=0, le=3600, description="How often the queue page reloads itself (0: never)."
    )
    review_target_minutes: int = Field(
        60,
        ge=1,
        le=10080,
        description="How long a page may wait for review; the queue marks pages past three quarters of "
        "it as due soon and past it as overdue.",
    )
    review_session_hours: int = Field(12, ge=1, le=720, description="How long an operator stays logged in.")
    review_secure_cookie: bool = Field(
        False, description="Send the session cookie over HTTPS only (set behind a TLS proxy)."
    )
    review_login_max_failures: int = Field(
        5,
        ge=1,
        le=1000,
        description="Failed logins for one name that lock it out "
        "(counted over `DOCSORT_REVIEW_LOGIN_WINDOW_MINUTES`).",
    )
    review_login_max_failures_per_address: int = Field(
        20,
        ge=1,
        le=10000,
        description="Failed logins from one client address (IPv6: its /64) that lock it out, "
        "whatever the names tried.",
    )
    review_login_window_minutes: int = Field(
        15, ge=1, le=1440, description="Time over which failed logins count towards a lockout."
    )
    review_login_lockout_minutes: int = Field(
        15,
        ge=1,
        le=1440,
        description="How long a locked account or address is refused, even with the right password.",
    )
    review_hash_concurrency: int = Field(
        2,
        ge=1,
        le=64,
        description="Password checks one server process runs at once (argon2: 64 MiB each); "
        "more logins wait their turn.",
    )
    review_shutdown_seconds: int = Field(
        5,
        ge=0,
        le=600,
        description="On SIGTERM or SIGINT, how long `docsort serve` lets running requests finish "
        "before it cancels them.",
    )


def review_settings(base: DocsortSettings | None = None) -> ReviewSettings:
    """Review settings: the fields of ``base`` as given, the review's own from the environment."""
    try:
        if base is None:
            return ReviewSettings()
        if isinstance(base, ReviewSettings):
            return base
        return ReviewSettings(**base.model_dump())
    except ValidationError as exc:
        raise SettingsInvalid(describe_validation_error(exc)) from exc
