"""Errors of the review area. Each carries a message meant for the operator or the administrator."""

from __future__ import annotations

from schema.errors import DocsortError


class ReviewError(DocsortError):
    """A review action cannot be carried out; the message says why."""


class ItemNotFound(ReviewError):
    """No page waits for review under this id."""


class ItemTaken(ReviewError):
    """Another operator holds a live claim on the page."""

    def __init__(self, message: str, holder: str) -> None:
        super().__init__(message)
        self.holder = holder


class AlreadyDecided(ReviewError):
    """The page has a review already; a page is never decided twice."""


class NotUndoable(ReviewError):
    """The answer cannot be undone any more (too old, someone else's, or its document delivered)."""


class InvalidLabel(ReviewError):
    """The label is not one of the model's classes."""


class OperatorError(ReviewError):
    """An operator account cannot be created or changed (name taken, password too short, ...)."""


class ExportError(ReviewError):
    """Reviewed pages cannot be exported (output folder unusable)."""
