"""The live accuracy of automatic routing, from operators' answers on audit items (:mod:`worker.audit`).

Audited documents are a uniform draw from the automatically routed ones, so the share an operator
confirms estimates the accuracy of automatic routing. Each estimate comes with its exact two-sided
binomial (Clopper–Pearson) interval at :data:`LEVEL`, per model version and per class the model routed
to, and is compared with the target the version's thresholds were chosen for (its manifest's
``thresholds.target_auto_accuracy``). The verdict, stated once here:

- ``below target``: the whole interval lies below the target: routing is failing it (alert);
- ``not shown``: the interval's lower end is below the target although there are enough answers that
  all-correct ones would have shown it: the target is not borne out (alert);
- ``too few answers``: the lower end is below the target, but even all-correct answers this few could
  not lift it above (:func:`answers_needed` says how many it takes): no alert yet;
- ``meets target``: the lower end is at or above the target;
- ``no target``: the version states none (thresholds set by hand).

An answer that rejects the document (not any class) counts as wrong: it should not have been routed.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from schema.tables import Audit, ModelVersion
from worker.binomial import Interval, interval
from worker.labels import as_utc

LEVEL = 0.95  # two-sided: each end holds with 97.5%
BELOW, NOT_SHOWN, TOO_FEW, MEETS, NO_TARGET, NO_ANSWERS = (
    "below target",
    "not shown",
    "too few answers",
    "meets target",
    "no target",
    "no answers yet",
)


def answers_needed(target: float, level: float = LEVEL) -> int | None:
    """The fewest answers, all correct, whose interval's lower end reaches ``target`` (None for 1)."""
    if target >= 1.0:
        return None
    return math.ceil(math.log((1.0 - level) / 2.0) / math.log(target) - 1e-9)


def verdict(ci: Interval, target: float | None) -> tuple[str, bool]:
    """(verdict, alert) for an interval against a target; see the module's docstring."""
    if target is None:
        return NO_TARGET, False
    if ci.n == 0 or ci.low is None or ci.high is None:
        return NO_ANSWERS, False
    if ci.high < target:
        return BELOW, True
    if ci.low >= target:
        return MEETS, False
    needed = answers_needed(target, ci.level)
    if needed is None or ci.n < needed:
        return TOO_FEW, False
    return NOT_SHOWN, True


@dataclass(frozen=True)
class LiveAccuracy:
    """Answered audits of one model version (``label`` None: all its classes) or of one class."""

    model_name: str
    model_version: str
    label: str | None
    interval: Interval
    waiting: int  # audit items with no answer yet
    target: float | None
    verdict: str
    alert: bool

    @property
    def model(self) -> str:
        return f"{self.model_name}/{self.model_version}"

    def as_dict(self) -> dict[str, Any]:
        ci = self.interval
        return {
            "model": self.model,
            "class": self.label,
            "answered": ci.n,
            "correct": ci.k,
            "accuracy": ci.estimate,
            "low": ci.low,
            "high": ci.high,
            "level": ci.level,
            "waiting": self.waiting,
            "target": self.target,
            "answers_needed": answers_needed(self.target) if self.target else None,
            "verdict": self.verdict,
            "alert": self.alert,
        }


def version_targets(session: Session) -> dict[tuple[str, str], float | None]:
    """The target accuracy each registered version's thresholds were chosen for."""
    targets: dict[tuple[str, str], float | None] = {}
    for name, version, manifest in session.execute(
        select(ModelVersion.name, ModelVersion.version, ModelVersion.manifest)
    ):
        thresholds = (manifest or {}).get("thresholds") or {}
        guarantee = thresholds.get("guarantee") or {}
        target = thresholds.get("target_auto_accuracy") or guarantee.get("target")
        targets[(name, version)] = float(target) if target else None
    return targets


def _rows(session: Session, since: datetime | None) -> list[Any]:
    stmt = select(Audit.model_name, Audit.model_version, Audit.label, Audit.answered_at, Audit.correct)
    if since is not None:
        stmt = stmt.where(Audit.chosen_at >= since)
    return list(session.execute(stmt))


def live_accuracy(
    session: Session, since: datetime | None = None, level: float = LEVEL
) -> list[LiveAccuracy]:
    """Per model version, then per class of that version, the accuracy of automatic routing shown by
    the answered audits (documents chosen at or after ``since``); versions in name/version order."""
    answered: dict[tuple[str, str, str | None], list[int]] = defaultdict(lambda: [0, 0, 0])
    for name, version, label, answered_at, correct in _rows(session, since):
        for key in ((name, version, None), (name, version, label)):
            counts = answered[key]
            if answered_at is None:
                counts[2] += 1
            else:
                counts[0] += bool(correct)
                counts[1] += 1
    targets = version_targets(session)
    out: list[LiveAccuracy] = []
    for (name, version, label), (k, n, waiting) in sorted(
        answered.items(), key=lambda item: (item[0][0], item[0][1], item[0][2] or "")
    ):
        ci = interval(k, n, level)
        target = targets.get((name, version))
        text, alert = verdict(ci, target)
        out.append(LiveAccuracy(name, version, label, ci, waiting, target, text, alert))
    return out


@dataclass(frozen=True)
class DayAccuracy:
    day: datetime
    interval: Interval  # answers on documents routed that day
    cumulative: Interval  # all answers on documents routed up to that day


def accuracy_by_day(
    session: Session, model_name: str, model_version: str, level: float = LEVEL
) -> list[DayAccuracy]:
    """Answered audits of one version by the day their document was routed, with the running total."""
    rows = session.execute(
        select(Audit.chosen_at, Audit.correct).where(
            Audit.model_name == model_name,
            Audit.model_version == model_version,
            Audit.answered_at.is_not(None),
        )
    )
    per_day: dict[datetime, list[int]] = defaultdict(lambda: [0, 0])
    for chosen_at, correct in rows:
        day = as_utc(chosen_at).replace(hour=0, minute=0, second=0, microsecond=0, tzinfo=None)
        per_day[day][0] += bool(correct)
        per_day[day][1] += 1
    out: list[DayAccuracy] = []
    total_k = total_n = 0
    for day in sorted(per_day):
        k, n = per_day[day]
        total_k, total_n = total_k + k, total_n + n
        out.append(DayAccuracy(day, interval(k, n, level), interval(total_k, total_n, level)))
    return out
