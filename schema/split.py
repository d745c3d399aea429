"""Separation rules: how the pages of one received file become documents, written as a short text.

``none`` (the default: the file is one document), ``blank`` (a blank page separates documents and is
dropped), ``barcode`` (a separator sheet with a barcode or QR code starts a new document and is
dropped), ``class`` (a change of class between pages starts a new document), ``pages:N`` (every N
pages); combined with commas (``blank,class``). ``drop-blank`` drops blank pages without separating
(the empty backs of duplex scans). Every door takes the same text: a watch subfolder's rule in the
routes file, ``split`` of ``POST /v1/jobs`` and of the Celery job message, ``--split`` of
``docsort submit``, and ``DOCSORT_SPLIT`` when none is given.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

MAX_EVERY = 10_000
_PAGES = re.compile(r"^pages:([1-9][0-9]*)$")


@dataclass(frozen=True)
class SplitRules:
    blank: bool = False
    barcode: bool = False
    by_class: bool = False
    every: int | None = None
    drop_blank: bool = False

    @classmethod
    def parse(cls, text: str | None) -> SplitRules:
        """The rules a text names; ValueError naming the first token it does not know."""
        values: dict[str, object] = {}
        tokens = [t.strip().lower() for t in (text or "none").split(",") if t.strip()]
        for token in tokens or ["none"]:
            match = _PAGES.match(token)
            if token == "none":
                continue
            if token in ("blank", "barcode"):
                values[token] = True
            elif token == "class":
                values["by_class"] = True
            elif token in ("drop-blank", "drop_blank"):
                values["drop_blank"] = True
            elif match and int(match.group(1)) <= MAX_EVERY:
                values["every"] = int(match.group(1))
            else:
                raise ValueError(
                    f"separation rule {token!r} is not one of none, blank, barcode, class, pages:N "
                    f"(1 to {MAX_EVERY}), drop-blank"
                )
        return cls(**values)  # type: ignore[arg-type]

    def __str__(self) -> str:
        parts = [name for name, on in (("blank", self.blank), ("barcode", self.barcode)) if on]
        parts += ["class"] if self.by_class else []
        parts += [f"pages:{self.every}"] if self.every else []
        parts += ["drop-blank"] if self.drop_blank else []
        return ",".join(parts) or "none"

    @property
    def splits(self) -> bool:
        """True when the file may become more than one document."""
        return self.blank or self.barcode or self.by_class or self.every is not None


def canonical_split(text: str | None) -> str | None:
    """The canonical text of a rule (validated), or None for no rule given."""
    return None if text is None or not text.strip() else str(SplitRules.parse(text))
