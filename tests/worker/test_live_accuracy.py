"""Live accuracy from audit answers: exact intervals, verdicts against the target, per version and class."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import pytest
from scipy.stats import binomtest

from schema.settings import DocsortSettings
from tests.support.quality import register_version, route_document
from tests.support.review import sessions_for
from tests.support.review_items import make_operator
from worker.binomial import interval, lower_bound, two_sided_p
from worker.live_accuracy import (
    BELOW,
    MEETS,
    NO_ANSWERS,
    NO_TARGET,
    NOT_SHOWN,
    TOO_FEW,
    accuracy_by_day,
    answers_needed,
    live_accuracy,
    verdict,
)

T0 = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)


@pytest.mark.parametrize(("k", "n"), [(0, 10), (7, 10), (10, 10), (995, 1000), (1, 1)])
def test_interval_is_scipys_exact_clopper_pearson(k: int, n: int) -> None:
    ci = interval(k, n, 0.95)
    ref = binomtest(k, n).proportion_ci(0.95, method="exact")
    assert (ci.low, ci.high) == pytest.approx((ref.low, ref.high), abs=1e-12)
    assert ci.estimate == k / n
    assert lower_bound(k, n, 0.975) == pytest.approx(ref.low, abs=1e-12)  # one end of a 95% two-sided = 97.5%
    assert interval(0, 0).low is None and two_sided_p(0, 0, 0.5) == 1.0


def test_answers_needed_is_the_fewest_all_correct_answers_that_show_the_target() -> None:
    n = answers_needed(0.995)
    assert n == math.ceil(math.log(0.025) / math.log(0.995)) == 736
    assert interval(n, n).low >= 0.995 > interval(n - 1, n - 1).low  # type: ignore[operator]
    assert answers_needed(1.0) is None


@pytest.mark.parametrize(
    ("k", "n", "target", "expected", "alert"),
    [
        (800, 800, 0.995, MEETS, False),
        (100, 100, 0.995, TOO_FEW, False),  # nothing wrong, but 100 answers cannot show 99.5%
        (90, 100, 0.995, BELOW, True),  # even the upper end is below the target
        (995, 1000, 0.995, NOT_SHOWN, True),  # enough answers, and the lower end stays below
        (5, 5, None, NO_TARGET, False),
        (0, 0, 0.99, NO_ANSWERS, False),
    ],
)
def test_verdicts(k: int, n: int, target: float | None, expected: str, alert: bool) -> None:
    assert verdict(interval(k, n), target) == (expected, alert)


def test_live_accuracy_per_version_and_class_with_targets_and_waiting_items(
    settings: DocsortSettings,
) -> None:
    sessions = sessions_for(settings)
    with sessions() as s:
        register_version(s, settings.models_dir, version="v1", target=0.99)
        register_version(s, settings.models_dir, version="v2", target=None, active=False)
        ann = make_operator(s, "ann")
        for i in range(40):  # v1: invoices 30 of 30 right, letters 8 of 10
            label = "invoice" if i < 30 else "letter"
            answer = label if i < 38 else "invoice"
            route_document(
                s, label=label, when=T0, audited=True, answered=True, answer=answer, operator_id=ann.id
            )
        route_document(s, label="invoice", when=T0, audited=True)  # waiting
        route_document(s, label="invoice", when=T0)  # not audited: not counted
        route_document(
            s, label="letter", when=T0, model_version="v2", audited=True, answered=True, answer=None
        )
        s.commit()
        found = {(a.model_version, a.label): a for a in live_accuracy(s)}
    assert list(found) == [("v1", None), ("v1", "invoice"), ("v1", "letter"), ("v2", None), ("v2", "letter")]
    overall = found[("v1", None)]
    assert (overall.interval.k, overall.interval.n, overall.waiting, overall.target) == (38, 40, 1, 0.99)
    assert overall.verdict == TOO_FEW and not overall.alert  # 38 of 40: upper end 99.4%, 368 needed
    letters = found[("v1", "letter")]
    assert (letters.interval.k, letters.interval.n) == (8, 10)
    assert letters.verdict == BELOW and letters.alert  # upper end 97.5% < 99%
    invoices = found[("v1", "invoice")]
    assert (invoices.interval.k, invoices.interval.n, invoices.waiting) == (30, 30, 1)
    assert invoices.verdict == TOO_FEW and not invoices.alert
    rejected = found[("v2", None)]
    assert (rejected.interval.k, rejected.interval.n, rejected.verdict) == (0, 1, NO_TARGET)


def test_accuracy_by_day_has_each_days_answers_and_the_running_total(settings: DocsortSettings) -> None:
    sessions = sessions_for(settings)
    with sessions() as s:
        register_version(s, settings.models_dir)
        ann = make_operator(s, "ann")
        for day, (right, wrong) in enumerate([(10, 0), (5, 5), (3, 0)]):
            when = T0 + timedelta(days=day)
            for i in range(right + wrong):
                answer = "invoice" if i < right else "letter"
                route_document(
                    s,
                    label="invoice",
                    when=when,
                    audited=True,
                    answered=True,
                    answer=answer,
                    operator_id=ann.id,
                )
        s.commit()
        days = accuracy_by_day(s, "docsort", "v1")
    assert [(d.interval.k, d.interval.n) for d in days] == [(10, 10), (5, 10), (3, 3)]
    assert [(d.cumulative.k, d.cumulative.n) for d in days] == [(10, 10), (15, 20), (18, 23)]
    assert [d.day.day for d in days] == [20, 21, 22]
