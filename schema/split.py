"""Separation rules: how the pages of one received file become documents, written as a short text.

``none`` (the default: the file is one document), ``blank`` (a blank page separates documents and is
dropped), ``barcode`` (a separator sheet with a barcode or QR code starts a new document and is
dropped), ``class`` (a change of class between pages starts a new document), ``pages:N`` (every N
pages); combined with commas (``blank,class``). ``drop-blank`` drops blank pages without separating
(the empty backs of duplex scans). Every door takes the same text: a watch subfolder's rule in the
routes file, ``split`` of ``POST /v1/jobs`` and of the Celery job message, ``--split`` of
``docsort submit``, and ``DOCSORT_SPLIT`` when none is given. :mod:`worker.separate` applies them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic_core import core_schema

from schema.errors import DocsortError

MAX_PAGES = 10_000  # the most pages:N may name
TOKENS = ("none", "blank", "barcode", "class", "pages:N", "drop-blank")


class SplitRulesError(DocsortError, ValueError):
    """A separation spec that cannot be read; the message names the token and the valid ones."""


@dataclass(frozen=True)
class SplitRules:
    """How a file is separated into documents; ``str()`` gives back the spec ``parse`` reads."""

    blank: bool = False
    barcode: bool = False
    by_class: bool = False
    every: int | None = None  # pages:N
    drop_blank: bool = False

    @classmethod
    def parse(cls, text: str) -> SplitRules:
        """``none``, or tokens joined by commas: ``blank,class``, ``barcode,pages:2,drop-blank``."""
        tokens = [t.strip().lower() for t in str(text).split(",")]
        if not any(tokens):
            raise SplitRulesError(f"empty separation rules: give {_choices()}")
        flags: dict[str, Any] = {}
        for token in tokens:
            name, value = _token(token, text)
            if name == "none" and len(tokens) > 1:
                raise SplitRulesError(
                    f"separation rules {text!r}: 'none' cannot be combined with other rules"
                )
            if name in flags:
                raise SplitRulesError(f"separation rules {text!r}: {token!r} is given twice")
            flags[name] = value
        flags.pop("none", None)
        return cls(**flags)

    def __post_init__(self) -> None:
        if self.every is not None and not 1 <= self.every <= MAX_PAGES:
            raise SplitRulesError(f"pages:{self.every} needs a page count from 1 to {MAX_PAGES}")

    def __str__(self) -> str:
        flags = (("blank", self.blank), ("barcode", self.barcode), ("class", self.by_class))
        words = [name for name, on in flags if on]
        words += [f"pages:{self.every}"] if self.every else []
        words += ["drop-blank"] if self.drop_blank else []
        return ",".join(words) or "none"

    @property
    def drops_blank(self) -> bool:
        return self.blank or self.drop_blank

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: Any) -> Any:
        return core_schema.no_info_plain_validator_function(
            lambda v: v if isinstance(v, SplitRules) else cls.parse(v),
            json_schema_input_schema=core_schema.str_schema(),
            serialization=core_schema.plain_serializer_function_ser_schema(str),
        )


def _choices() -> str:
    return ", ".join(TOKENS) + " (joined by commas)"


FIELDS = {
    "none": "none",
    "blank": "blank",
    "barcode": "barcode",
    "class": "by_class",
    "drop-blank": "drop_blank",
}


def _token(token: str, text: str) -> tuple[str, Any]:
    if token.replace("_", "-") in FIELDS:
        return FIELDS[token.replace("_", "-")], True
    if token.startswith("pages"):
        count = token.removeprefix("pages").lstrip(":= ")
        if count.isdigit() and 1 <= int(count) <= MAX_PAGES:
            return "every", int(count)
        raise SplitRulesError(
            f"separation rules {text!r}: {token!r} needs a page count from 1 to {MAX_PAGES}, e.g. pages:2"
        )
    raise SplitRulesError(f"separation rules {text!r}: unknown rule {token!r}; choose {_choices()}")


def canonical_split(text: str | None) -> str | None:
    """The canonical text of a rule (validated), or None for no rule given."""
    return None if text is None or not text.strip() else str(SplitRules.parse(text))
