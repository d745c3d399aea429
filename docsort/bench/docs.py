"""Each benchmark's section of ``docs/benchmarks.md``: a table of runs with the machine and the rerun command.

A section lies between ``<!-- docsort-bench:NAME:begin -->`` and ``<!-- docsort-bench:NAME:end -->``;
its runs are kept as JSON in a comment inside it, and the section is drawn again from them on each
``--write-docs``. A run replaces the earlier run with the same key (backbone, size, batch ...). Text
outside the markers (other benchmarks' sections) is never touched; a missing section is appended.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from docsort.bench.machine import Machine
from schema.files import write_text_atomic

DOC_PATH = Path(__file__).resolve().parents[2] / "docs" / "benchmarks.md"
DOC_HEADER = "# Benchmarks\n\nMeasured side by side in one run each; every table says how to run it again.\n"

Column = tuple[str, Callable[[dict[str, Any]], str]]


@dataclass(frozen=True)
class Section:
    name: str
    title: str
    intro: str
    columns: list[Column]
    key: tuple[str, ...]
    footer: str = ""
    extra: dict[str, str] = field(default_factory=dict)

    def marker(self, what: str) -> str:
        return f"<!-- docsort-bench:{self.name}:{what}"


def _encode(rows: list[dict[str, Any]]) -> str:
    return json.dumps(rows, sort_keys=True).replace("--", "-\\u002d")  # "--" may not appear in a comment


def _decode(text: str) -> list[dict[str, Any]]:
    rows = json.loads(text)
    return rows if isinstance(rows, list) else []


def _pattern(section: Section) -> re.Pattern[str]:
    begin, end = re.escape(section.marker("begin") + " -->"), re.escape(section.marker("end") + " -->")
    return re.compile(f"{begin}.*?{end}\n?", re.S)


def existing_rows(text: str, section: Section) -> list[dict[str, Any]]:
    match = re.search(re.escape(section.marker("data")) + r" (.*?) -->", text, re.S)
    return _decode(match.group(1)) if match else []


def render(section: Section, rows: list[dict[str, Any]]) -> str:
    headers = [h for h, _ in section.columns] + ["load 1/5/15 min at start → 1 min at end"]
    lines = [
        f"{section.marker('begin')} -->",
        section.title,
        "",
        section.intro.strip(),
        "",
        "| " + " | ".join(headers) + " |",
        "|" + "---|" * len(headers),
    ]
    for row in rows:
        cells = [fmt(row["result"]) for _, fmt in section.columns] + [row["load"]]
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "Runs, in table order (machine, date, command):", ""]
    for i, row in enumerate(rows, start=1):
        lines.append(f"{i}. {row['machine']}; {row['date']}; `{row['command']}`")
    if section.footer:
        lines += ["", section.footer.strip()]
    lines += ["", f"{section.marker('data')} {_encode(rows)} -->", f"{section.marker('end')} -->", ""]
    return "\n".join(lines)


def record(
    section: Section, result: dict[str, Any], machine: Machine, command: str, path: Path = DOC_PATH
) -> Path:
    """Add (or replace) this run in its section of ``path`` and write the file atomically."""
    text = path.read_text(encoding="utf-8") if path.is_file() else DOC_HEADER
    row = {
        "result": result,
        "machine": machine.describe(),
        "load": f"{machine.load_text()} → {os.getloadavg()[0]:.2f}",
        "command": command,
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
    }
    key = [result.get(k) for k in section.key]
    rows = [r for r in existing_rows(text, section) if [r["result"].get(k) for k in section.key] != key]
    rows.append(row)
    rows.sort(key=lambda r: [str(r["result"].get(k)) for k in section.key])
    block = render(section, rows)
    pattern = _pattern(section)
    if pattern.search(text):
        text = pattern.sub(lambda _: block, text, count=1)
    else:
        text = text.rstrip("\n") + "\n\n" + block
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(path, text)
    return path


def num(key: str, digits: int = 1, suffix: str = "") -> Callable[[dict[str, Any]], str]:
    def fmt(result: dict[str, Any]) -> str:
        value = result.get(key)
        return "n/a" if value is None else f"{value:.{digits}f}{suffix}"

    return fmt


def plain(key: str) -> Callable[[dict[str, Any]], str]:
    return lambda result: str(result.get(key, ""))


def percent(key: str, digits: int = 1) -> Callable[[dict[str, Any]], str]:
    def fmt(result: dict[str, Any]) -> str:
        value = result.get(key)
        return "n/a" if value is None else f"{100 * value:.{digits}f}%"

    return fmt
