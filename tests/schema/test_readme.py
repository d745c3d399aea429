from __future__ import annotations

from pathlib import Path

from schema.settings import DocsortSettings

README = Path(__file__).resolve().parents[2] / "README.md"


def test_readme_settings_table_lists_every_setting() -> None:
    text = README.read_text()
    missing = [n for n in DocsortSettings.model_fields if f"`DOCSORT_{n.upper()}`" not in text]
    assert missing == []


def test_readme_shows_the_two_commands() -> None:
    text = README.read_text()
    assert "make demo" in text and "make test" in text
