"""The README tells the truth about the commands and settings that exist."""

from __future__ import annotations

import importlib
import json
import re
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from docsort.cli import app
from schema.messages import ClassifyJob
from schema.settings import DocsortSettings

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
PACKAGES = ("schema", "worker", "ingest", "review", "trainer", "docsort")
SUBCLASS = re.compile(r"^class \w+\((?:\w+\.)?DocsortSettings\)", re.MULTILINE)


def _section(title: str) -> str:
    text = README.read_text(encoding="utf-8")
    start = text.index(f"\n## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else None]


def readme_commands() -> list[list[str]]:
    """The command words of each row of the README's command table (`docsort models list` ...)."""
    rows = re.findall(r"^\| `docsort ([^`]+)` \|", _section("Commands"), re.MULTILINE)
    words = [list(re.match(r"[a-z][a-z0-9-]*(?: [a-z][a-z0-9-]*)*", row).group(0).split()) for row in rows]  # type: ignore[union-attr]
    assert len(words) > 10
    return words


@pytest.mark.parametrize("words", readme_commands(), ids=" ".join)
def test_readme_command_answers_help(words: list[str]) -> None:
    result = CliRunner().invoke(app, [*words, "--help"])
    assert result.exit_code == 0, result.output
    assert f"docsort {' '.join(words)}" in " ".join(result.output.split())


def settings_classes() -> list[type[DocsortSettings]]:
    """DocsortSettings and every subclass any package defines (found in the sources, then imported)."""
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            if SUBCLASS.search(path.read_text(encoding="utf-8")):
                importlib.import_module(".".join(path.relative_to(ROOT).with_suffix("").parts))
    found: list[type[DocsortSettings]] = [DocsortSettings]
    for cls in found:
        found.extend(c for c in cls.__subclasses__() if c not in found)
    return found


def test_readme_settings_tables_list_every_setting_of_every_deployable() -> None:
    text = _section("Settings")
    classes = settings_classes()
    assert len(classes) >= 4  # the shared settings and the worker's, ingest's and review's at least
    missing = sorted(
        {f"DOCSORT_{n.upper()}" for c in classes for n in c.model_fields}
        - set(re.findall(r"`(DOCSORT_\w+)`", text))
    )
    assert missing == [], f"README's settings tables lack: {missing}"


def test_readme_names_no_setting_that_does_not_exist() -> None:
    known = {f"DOCSORT_{n.upper()}" for c in settings_classes() for n in c.model_fields}
    known.add("DOCSORT_TF_THREADS")  # read by the trainer when it configures TensorFlow
    named = set(re.findall(r"\b(DOCSORT_[A-Z0-9_]+)\b", README.read_text(encoding="utf-8")))
    assert sorted(named - known) == []


def test_readme_celery_payload_is_a_valid_classify_job() -> None:
    blocks = re.findall(r"```json\n(.*?)```", _section("Submit pages"), re.DOTALL)
    payloads = [json.loads(b) for b in blocks]
    assert payloads and all("job" in p for p in payloads)
    for payload in payloads:
        assert ClassifyJob.model_validate(payload["job"]).documents


@pytest.mark.parametrize("words", readme_commands(), ids=" ".join)
def test_help_names_every_option_whole_in_80_columns(words: list[str]) -> None:
    command = typer.main.get_command(app)
    for word in words:
        command = command.commands[word]  # type: ignore[attr-defined]
    options = [name for param in command.params for name in param.opts if name.startswith("--")]
    result = CliRunner().invoke(app, [*words, "--help"], terminal_width=80, env={"COLUMNS": "80"})
    assert result.exit_code == 0, result.output
    assert "…" not in result.output and max(len(line) for line in result.output.splitlines()) <= 80
    shown = set(re.findall(r"(?<![\w-])--[a-z][a-z0-9-]*", result.output))
    assert set(options) <= shown, sorted(set(options) - shown)


def test_readme_shows_the_two_commands_first() -> None:
    text = README.read_text(encoding="utf-8")
    section = _section("Two commands")
    assert "make demo" in section and "make test" in section
    assert text.index("## Two commands") < text.index("## Install")
