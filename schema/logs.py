"""Structured logging (structlog) shared by every deployable.

A traceback is written once, as plain text: the console renderer's default (rich, with every frame's
local variables) took seconds for one web request's error, on the thread of the event loop. JSON
lines carry the traceback in their ``exception`` field.
"""

from __future__ import annotations

import logging
import sys
import unicodedata
from collections.abc import Callable, MutableMapping
from typing import Any

import structlog

# Control, format (bidi overrides, zero-width) and line/paragraph separator characters: they start
# new lines, move a terminal's cursor, or reorder and hide text.
HIDDEN_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})
_KEEP_AS_IS = {"exception", "stack"}  # tracebacks: multi-line by nature, rendered by structlog


def escape_hidden(text: str, spell: Callable[[str], str], keep: str = "") -> str:
    """``text`` with each hidden character (but those in ``keep``) replaced by ``spell(character)``."""
    if text.isprintable():
        return text
    return "".join(
        spell(c) if c not in keep and unicodedata.category(c) in HIDDEN_CATEGORIES else c for c in text
    )


def _ascii_escape(c: str) -> str:
    return ascii(c)[1:-1]


def escape_control_characters(
    _logger: Any, _method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """Write control, format and separator characters of string values as escapes (``\\n``, ``\\u202e``)."""
    for key, value in event_dict.items():
        if isinstance(value, str) and key not in _KEEP_AS_IS:
            event_dict[key] = escape_hidden(value.rstrip("\n") if key == "event" else value, _ascii_escape)
    return event_dict


def _renderers(fmt: str) -> list[structlog.types.Processor]:
    if fmt == "json":
        return [structlog.processors.format_exc_info, structlog.processors.JSONRenderer()]
    console = structlog.dev.ConsoleRenderer(colors=False, exception_formatter=structlog.dev.plain_traceback)
    return [escape_control_characters, console]


def configure_logging(level: str | int = "INFO", fmt: str = "console") -> None:
    """Route stdlib and structlog records through one renderer: readable on a console, JSON for shippers."""
    if isinstance(level, str):
        level = logging.getLevelName(level.upper())
    shared: list[structlog.types.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.make_filtering_bound_logger(int(level)),
        cache_logger_on_first_use=False,
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared,
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *_renderers(fmt)],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)


def get_logger(name: str) -> structlog.stdlib.BoundLogger:
    return structlog.get_logger(name)  # type: ignore[no-any-return]
