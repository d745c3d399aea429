"""Settings of the review web application: the shared ones plus the review's own (prefix ``DOCSORT_``)."""

from __future__ import annotations

from pydantic import Field, ValidationError

from schema.errors import SettingsInvalid
from schema.settings import DocsortSettings, describe_validation_error


class ReviewSettings(DocsortSettings):
    review_claim_seconds: int = Field(
        300, ge=10, le=86400, description="How long opening a page holds it for one operator."
    )
    review_session_hours: int = Field(12, ge=1, le=720, description="How long an operator stays logged in.")
    review_secure_cookie: bool = Field(
        False, description="Send the session cookie over HTTPS only (set behind a TLS proxy)."
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
