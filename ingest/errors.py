"""The errors of the ingest doors."""

from __future__ import annotations

from schema.errors import DocsortError


class IntakeError(DocsortError):
    """A file could not be taken in (not found, unreadable, too large, outside the allowed root)."""


class UploadTooLarge(IntakeError):
    """An upload passed the configured size limit."""
