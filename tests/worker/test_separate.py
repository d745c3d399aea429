"""Separation rules, segmentation by class and the document decision (worker/separate.py)."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from pydantic import BaseModel, ValidationError

from schema.enums import DecisionKind
from schema.manifest import Thresholds
from schema.split import SplitRules, SplitRulesError
from worker.decide import Policy, decide
from worker.page_marks import Separator
from worker.separate import (
    PROB_FLOOR,
    PageEvidence,
    SeparationError,
    class_path,
    decide_document,
    default_new_document_cost,
    separate,
)

NAMES = ["invoice", "letter", "form"]
CODES = {"i": "invoice", "l": "letter", "f": "form"}
POLICY = Policy.from_thresholds(Thresholds(confidence=0.8, margin=0.2))


def vector(label: str, p: float = 0.92) -> np.ndarray:
    out = np.full(len(NAMES), (1.0 - p) / (len(NAMES) - 1))
    out[NAMES.index(label)] = p
    return out


def pages(spec: str, p: float = 0.92) -> list[PageEvidence]:
    """One page per letter: i/l/f a page of that class, b blank, s a separator sheet (PATCHT),
    F a separator sheet naming "form", x an unreadable page."""
    out = []
    for n, code in enumerate(spec, start=1):
        if code in CODES:
            out.append(PageEvidence(n, vector(CODES[code], p)))
        elif code == "b":
            out.append(PageEvidence(n, vector("letter", 0.5), blank=True))
        elif code in "sF":
            label = "form" if code == "F" else None
            value = "PATCHT:form" if label else "PATCHT"
            out.append(
                PageEvidence(n, vector("form", 0.6), separator=Separator(value, "QRCode", label, "test"))
            )
        elif code == "x":
            out.append(PageEvidence(n, None, error="truncated page data"))
    return out


def run(
    spec: str, rules: str, p: float = 0.92, cost: float | None = None
) -> list[tuple[tuple[int, ...], str]]:
    result = separate(pages(spec, p), NAMES, SplitRules.parse(rules), new_document_cost=cost)
    return [(d.pages, d.label or "") for d in result.documents]


# --- the rules as text ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "rules"),
    [
        ("none", SplitRules()),
        ("blank", SplitRules(blank=True)),
        ("barcode", SplitRules(barcode=True)),
        ("class", SplitRules(by_class=True)),
        ("pages:3", SplitRules(every=3)),
        ("drop-blank", SplitRules(drop_blank=True)),
        ("blank,class", SplitRules(blank=True, by_class=True)),
        (
            "barcode,class,pages:2,drop-blank",
            SplitRules(barcode=True, by_class=True, every=2, drop_blank=True),
        ),
    ],
)
def test_spec_parses_and_prints_back(text: str, rules: SplitRules) -> None:
    assert SplitRules.parse(text) == rules
    assert str(rules) == text
    assert SplitRules.parse(str(rules)) == rules


def test_spec_ignores_case_spaces_and_order() -> None:
    assert SplitRules.parse(" Class , BLANK ") == SplitRules(blank=True, by_class=True)
    assert str(SplitRules.parse("class,blank")) == "blank,class"
    assert SplitRules.parse("drop_blank") == SplitRules(drop_blank=True)


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("blnk", "'blnk'"),
        ("blank,colour", "'colour'"),
        ("pages", "'pages'"),
        ("pages:0", "'pages:0'"),
        ("pages:two", "'pages:two'"),
        ("pages:100000", "'pages:100000'"),
        ("none,blank", "'none' cannot be combined"),
        ("blank,blank", "'blank' is given twice"),
        ("pages:2,pages:3", "'pages:3' is given twice"),
        ("", "empty"),
        ("blank,", "unknown rule ''"),
    ],
)
def test_bad_spec_names_the_token(text: str, named: str) -> None:
    with pytest.raises(SplitRulesError) as err:
        SplitRules.parse(text)
    assert named in str(err.value)
    assert isinstance(err.value, ValueError)


def test_rules_are_a_pydantic_field_read_and_written_as_text() -> None:
    class Job(BaseModel):
        split: SplitRules = SplitRules()

    assert Job().split == SplitRules()
    assert Job(split="blank,class").split == SplitRules(blank=True, by_class=True)  # type: ignore[arg-type]
    assert Job(split=SplitRules(every=2)).model_dump(mode="json") == {"split": "pages:2"}
    assert Job.model_json_schema()["properties"]["split"]["type"] == "string"
    with pytest.raises(ValidationError, match="unknown rule 'bogus'"):
        Job(split="bogus")  # type: ignore[arg-type]


# --- each rule ------------------------------------------------------------------------------------


def test_none_makes_the_file_one_document_with_the_mean_class() -> None:
    result = separate(pages("iilii"), NAMES, SplitRules())
    (doc,) = result.documents
    assert doc.pages == (1, 2, 3, 4, 5) and doc.label == "invoice"
    assert doc.cut == "first page of the file" and result.dropped == ()
    mean = np.mean([vector("invoice")] * 4 + [vector("letter")], axis=0)
    assert doc.probs == pytest.approx(tuple(mean))
    assert doc.confidence == pytest.approx(mean[0]) and doc.margin == pytest.approx(mean[0] - mean[1])


def test_blank_page_separates_and_is_dropped() -> None:
    result = separate(pages("bilbbfb"), NAMES, SplitRules(blank=True))
    assert [d.pages for d in result.documents] == [(2, 3), (6,)]
    assert [d.number for d in result.dropped] == [1, 4, 5, 7]
    assert all("blank page" in d.reason for d in result.dropped)
    assert result.documents[1].cut == "after the blank pages 4-5"


def test_drop_blank_drops_without_separating() -> None:
    assert run("ibibl", "drop-blank") == [((1, 3, 5), "invoice")]
    assert run("ibibl", "none") == [((1, 2, 3, 4, 5), "invoice")]  # blank pages kept without the rule


def test_separator_sheet_starts_a_document_and_is_dropped() -> None:
    result = separate(pages("iisllsf"), NAMES, SplitRules(barcode=True))
    assert [d.pages for d in result.documents] == [(1, 2), (4, 5), (7,)]
    assert [d.number for d in result.dropped] == [3, 6]
    assert result.documents[1].cut == "after the separator sheet on page 3 ('PATCHT')"
    assert not result.documents[1].named_by_separator
    assert run("iisll", "none") == [((1, 2, 3, 4, 5), "invoice")]  # without the rule it is a page


def test_class_named_by_the_separator_wins_for_the_documents_it_heads() -> None:
    result = separate(pages("Fiibllsl"), NAMES, SplitRules(barcode=True, blank=True, by_class=True))
    docs = result.documents
    assert [(d.pages, d.label) for d in docs] == [((2, 3), "form"), ((5, 6), "form"), ((8,), "letter")]
    assert docs[0].named_by_separator and "separator sheet on page 1 ('PATCHT:form')" in docs[0].label_reason
    decision = decide_document(docs[0], NAMES, POLICY)
    assert (decision.kind, decision.label) == (DecisionKind.auto, "form")
    assert "named by the separator sheet" in decision.reason
    assert docs[2].label_reason.startswith("top class of the mean") and not docs[2].named_by_separator


def test_pages_rule_cuts_every_n_kept_pages_and_restarts_after_a_separator() -> None:
    assert run("iiiii", "pages:2") == [((1, 2), "invoice"), ((3, 4), "invoice"), ((5,), "invoice")]
    assert run("iiibiii", "blank,pages:2") == [((1, 2), "invoice"), ((3,), "invoice"), ((5, 6), "invoice"),
                                               ((7,), "invoice")]  # fmt: skip
    assert run("ibibib", "pages:2,drop-blank") == [((1, 3), "invoice"), ((5,), "invoice")]
    result = separate(pages("iii"), NAMES, SplitRules(every=2))
    assert result.documents[1].cut == "every 2 pages (pages:2)"


def test_class_rule_cuts_where_the_class_changes() -> None:
    result = separate(pages("iiilllff"), NAMES, SplitRules(by_class=True))
    assert [(d.pages, d.label) for d in result.documents] == [
        ((1, 2, 3), "invoice"),
        ((4, 5, 6), "letter"),
        ((7, 8), "form"),
    ]
    assert result.documents[1].cut.startswith("class changes from invoice to letter")


def test_blank_and_class_combine() -> None:
    assert run("iillbll", "blank,class") == [((1, 2), "invoice"), ((3, 4), "letter"), ((6, 7), "letter")]


# --- segmentation by class: dynamic programming against greedy --------------------------------------


def test_default_cost_is_the_prior_cost_of_a_change_of_class() -> None:
    assert default_new_document_cost(4) == pytest.approx(math.log(4.5))  # 2.5 pages per document
    assert default_new_document_cost(16) == pytest.approx(math.log(22.5))
    assert default_new_document_cost(3, mean_pages=6) == pytest.approx(math.log(10))
    assert default_new_document_cost(1) == 0.0
    with pytest.raises(SeparationError, match="more than 1"):
        default_new_document_cost(4, mean_pages=1)


def test_one_odd_page_stays_inside_its_document() -> None:
    odd = pages("iiiiiiiii")
    odd[4] = PageEvidence(5, [0.2, 0.7, 0.1])  # reads as a letter, could be an invoice
    result = separate(odd, NAMES, SplitRules(by_class=True))
    assert [(d.pages, d.label) for d in result.documents] == [(tuple(range(1, 10)), "invoice")]
    greedy = separate(odd, NAMES, SplitRules(by_class=True), new_document_cost=0.0)  # cut at every change
    assert [d.pages for d in greedy.documents] == [(1, 2, 3, 4), (5,), (6, 7, 8, 9)]


def test_one_confident_odd_page_never_cuts_when_twice_the_cost_exceeds_the_floor() -> None:
    odd = pages("iiiiiiiii")
    odd[4] = PageEvidence(5, vector("letter", 1.0 - 1e-9))
    cost = 4.0
    assert 2 * cost >= -math.log(PROB_FLOOR)
    result = separate(odd, NAMES, SplitRules(by_class=True), new_document_cost=cost)
    assert [d.pages for d in result.documents] == [tuple(range(1, 10))]
    assert len(separate(odd, NAMES, SplitRules(by_class=True)).documents) == 3  # the default cost is lower


def test_a_real_change_over_several_pages_cuts() -> None:
    assert run("iiiilliiii", "class") == [
        ((1, 2, 3, 4), "invoice"),
        ((5, 6), "letter"),
        ((7, 8, 9, 10), "invoice"),
    ]


def test_larger_cost_cuts_less() -> None:
    spec = "iiiilliiii"
    counts = [len(run(spec, "class", cost=cost)) for cost in (0.0, 2.0, 4.0, 8.0, 20.0)]
    assert counts == sorted(counts, reverse=True)
    assert counts[0] == 3 and counts[-1] == 1


def _segment_cost(vectors: np.ndarray, starts: list[int], cost: float) -> float:
    bounds = [*starts, len(vectors)]
    total = cost * (len(starts) - 1)
    for a, b in itertools.pairwise(bounds):
        total += float(np.min(-np.log(vectors[a:b]).sum(axis=0)))
    return total


def test_class_path_finds_the_cheapest_segmentation() -> None:
    """Against every segmentation of short runs: cost of a segment is -Σ log p for its best class."""
    rng = np.random.default_rng(7)
    for _ in range(40):
        n = int(rng.integers(1, 8))
        vectors = np.clip(rng.dirichlet(np.full(3, 0.4), size=n), PROB_FLOOR, 1.0)
        cost = float(rng.choice([0.0, 0.5, 2.0, 5.0]))
        path = class_path(list(vectors), 3, cost)
        starts = [0, *(np.flatnonzero(path[1:] != path[:-1]) + 1).tolist()]
        best = min(
            _segment_cost(vectors, [0, *cuts], cost)
            for k in range(n)
            for cuts in itertools.combinations(range(1, n), k)
        )
        assert _segment_cost(vectors, starts, cost) == pytest.approx(best)


# --- edge cases and bad input ---------------------------------------------------------------------


def test_a_file_of_blank_pages_only_gives_no_document_and_a_reason() -> None:
    result = separate(pages("bbb"), NAMES, SplitRules(blank=True))
    assert result.documents == () and len(result.dropped) == 3
    assert result.failure == "every page is blank (3 of 3)"
    assert separate([], NAMES, SplitRules()).failure == "the file has no pages"
    only_marks = separate(pages("sbs"), NAMES, SplitRules(barcode=True, drop_blank=True))
    assert only_marks.failure == "no page is left to deliver: 1 blank, 2 separator sheet(s) of 3 pages"


def test_unreadable_page_stays_in_its_document_which_goes_to_review() -> None:
    result = separate(pages("iixi"), NAMES, SplitRules(by_class=True))
    (doc,) = result.documents
    assert doc.pages == (1, 2, 3, 4) and doc.unreadable == (3,) and doc.label == "invoice"
    assert doc.review_reason == "page 3 could not be read: truncated page data"
    decision = decide_document(doc, NAMES, POLICY)
    assert decision.kind == DecisionKind.review and decision.reason.startswith("page 3 could not be read")
    assert decide(np.asarray(doc.probs), NAMES, POLICY).kind == DecisionKind.auto  # its scores alone pass


def test_document_of_unreadable_pages_only_has_no_class_and_goes_to_review() -> None:
    result = separate(pages("iibxbl"), NAMES, SplitRules(blank=True))
    doc = result.documents[1]
    assert doc.pages == (4,) and doc.label is None and doc.probs is None
    decision = decide_document(doc, NAMES, POLICY)
    assert (decision.kind, decision.label) == (DecisionKind.review, "")
    assert "page 4 could not be read" in decision.reason


def test_non_finite_scores_count_as_unreadable() -> None:
    bad = [PageEvidence(1, vector("invoice")), PageEvidence(2, [float("nan"), 0.5, 0.5])]
    (doc,) = separate(bad, NAMES, SplitRules()).documents
    assert (
        doc.unreadable == (2,)
        and doc.review_reason == "page 2 could not be read: scores are not finite numbers"
    )


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ([PageEvidence(2, vector("invoice")), PageEvidence(1, vector("invoice"))], "increasing"),
        ([PageEvidence(0, vector("invoice"))], "1-based"),
        ([PageEvidence(1, [0.5, 0.5])], "page 1: 2 scores for 3 classes"),
    ],
)
def test_pages_that_break_the_contract_are_refused(given: list[PageEvidence], message: str) -> None:
    with pytest.raises(SeparationError, match=message):
        separate(given, NAMES, SplitRules())


def test_more_pages_than_the_limit_are_refused() -> None:
    with pytest.raises(SeparationError, match="6 pages: a file may hold at most 5"):
        separate(pages("iiiiii"), NAMES, SplitRules(), max_pages=5)


# --- the document's decision ----------------------------------------------------------------------


def test_document_decision_is_the_page_rule_on_the_mean_vector() -> None:
    confident = separate(pages("iii", p=0.95), NAMES, SplitRules()).documents[0]
    assert decide_document(confident, NAMES, POLICY).kind == DecisionKind.auto
    mixed = separate(pages("iil", p=0.95), NAMES, SplitRules()).documents[0]  # mean invoice 0.65
    decision = decide_document(mixed, NAMES, POLICY)
    assert decision == decide(np.asarray(mixed.probs), NAMES, POLICY)
    assert decision.kind == DecisionKind.review and "below threshold 0.800" in decision.reason
