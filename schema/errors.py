"""Named exceptions shared across packages (one per area; raise them `from` their cause)."""


class DocsortError(Exception):
    """Base of every docsort error that carries a message meant for a person."""


class SettingsInvalid(DocsortError):
    """A setting is missing or wrong; the message says which and how to fix it."""


class ModelIncompatible(DocsortError):
    """A model folder cannot be used: missing file, bad manifest, hash mismatch, wrong format version."""


class DatabaseNotReady(DocsortError):
    """The database cannot be reached, or is not migrated to the revision this docsort needs."""
