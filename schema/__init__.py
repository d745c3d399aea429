"""Contracts shared by every docsort part: tables, migrations, messages, manifest, settings."""

from schema.errors import DocsortError, ModelIncompatible, SettingsInvalid

__all__ = ["DocsortError", "ModelIncompatible", "SettingsInvalid"]
