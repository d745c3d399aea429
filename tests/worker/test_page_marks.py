"""Blank pages and separator sheets read from generated scans (worker/page_marks.py)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from PIL import Image

from docsort.bench.sheets import (
    SYMBOLOGIES,
    Defects,
    a4_size,
    blank_sheet,
    code_modules,
    content_sheet,
    line_sheet,
    scan_sheet,
    separator_sheet,
)
from worker.page_marks import (
    BLANK_INK_MAX,
    Code,
    PageMarks,
    mark_page,
    measure_ink,
    read_codes,
    separator_of,
)

SIZE = a4_size(150)  # 1240 x 1754, a reduced decode of an A4 page
NAMES = ["invoice", "letter", "form"]
DEFECTS = {
    "clean": Defects(),
    "grey paper": Defects(paper=200),
    "uneven light": Defects(paper=240, light=0.3),
    "dust and hairs": Defects(dust=150, hairs=4),
    "bleed-through": Defects(paper=235, bleed=0.14),
    "sensor noise": Defects(noise=9.0),
    "skew on a dark bed": Defects(skew=2.5, bed=True),
    "punch holes": Defects(holes=3),
    "spine shadow": Defects(shadow=0.6),
    "all at once": Defects(
        paper=215, light=0.2, dust=120, hairs=3, bleed=0.12, noise=7.0, skew=-2.0, bed=True, blur=0.8, holes=2
    ),
}
ROUGH = DEFECTS["all at once"]


def rng(seed: int) -> np.random.Generator:
    return np.random.default_rng([seed, 42])


# --- blank pages ----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(DEFECTS))
def test_blank_sheet_is_blank_whatever_the_scanner_adds(name: str) -> None:
    for seed in range(3):
        ink = measure_ink(blank_sheet(rng(seed), SIZE, DEFECTS[name]))
        assert ink.blank, (name, seed, ink)
        assert ink.ink_fraction <= BLANK_INK_MAX


@pytest.mark.parametrize("name", list(DEFECTS))
def test_one_short_line_of_text_is_not_blank(name: str) -> None:
    for seed in range(3):
        ink = measure_ink(line_sheet(rng(seed), SIZE, DEFECTS[name], words=3))
        assert not ink.blank, (name, seed, ink)
        assert ink.marks >= 5  # the letters, counted


@pytest.mark.parametrize("kind", ["text", "form", "photo", "drawing"])
def test_content_pages_are_not_blank(kind: str) -> None:
    ink = measure_ink(content_sheet(rng(1), kind, SIZE, ROUGH))
    assert not ink.blank and ink.ink_fraction > 10 * BLANK_INK_MAX


def test_a_mark_from_the_edge_into_the_page_counts_a_streak_or_fold_does_not() -> None:
    into = np.full((SIZE[1], SIZE[0]), 255, np.uint8)
    cv2.line(into, (0, 900), (700, 900), 20, 4)  # a stroke from the left edge to the middle
    assert not measure_ink(scan_sheet(rng(1), into, Defects(noise=3.0))).blank
    streak = np.full((SIZE[1], SIZE[0]), 255, np.uint8)
    cv2.line(streak, (600, 0), (600, SIZE[1]), 30, 3)  # from a speck on the scanner glass
    fold = np.full((SIZE[1], SIZE[0]), 255, np.uint8)
    cv2.line(fold, (0, 580), (SIZE[0], 590), 90, 4)  # a letter folded in three
    for sheet in (streak, fold):
        assert measure_ink(scan_sheet(rng(1), sheet, Defects(noise=3.0))).blank


def test_bleed_through_is_not_ink_but_the_same_text_printed_is() -> None:
    faint = measure_ink(blank_sheet(rng(5), SIZE, Defects(bleed=0.14)))
    printed = measure_ink(blank_sheet(rng(5), SIZE, Defects(bleed=0.9)))  # the same text, dark
    assert faint.blank and faint.ink_fraction == 0.0
    assert not printed.blank and printed.ink_fraction > 0.01


def test_measurements_come_back_for_the_log() -> None:
    ink = measure_ink(blank_sheet(rng(2), SIZE, Defects(paper=210, noise=4.0)))
    assert ink.paper == pytest.approx(210, abs=6)
    assert ink.threshold == pytest.approx(0.25 * ink.paper, rel=0.1)  # contrast, not noise, sets it here
    assert ink.largest_mark <= ink.ink_fraction


def test_any_image_form_and_resolution_gives_the_same_answer() -> None:
    page = line_sheet(rng(3), a4_size(300), ROUGH, words=3)
    blank = blank_sheet(rng(3), a4_size(300), ROUGH)
    for image in (page, Image.fromarray(page), Image.fromarray(page).convert("RGB"), page[::2, ::2]):
        assert not measure_ink(image).blank
    for image in (blank, Image.fromarray(blank).convert("RGB"), blank[::2, ::2]):
        assert measure_ink(image).blank


def test_bilevel_scans_are_judged_too() -> None:
    def bilevel(grey: np.ndarray) -> Image.Image:
        return Image.fromarray(np.where(grey > 140, 255, 0).astype(np.uint8)).convert("1")

    assert measure_ink(bilevel(blank_sheet(rng(4), SIZE, Defects(dust=150, noise=30.0)))).blank
    assert not measure_ink(bilevel(line_sheet(rng(4), SIZE, Defects(noise=5.0), words=3))).blank


# --- separator sheets -----------------------------------------------------------------------------


@pytest.mark.parametrize("symbology", ["qr", "code128"])
@pytest.mark.parametrize("defects", [Defects(), Defects(skew=2.0, noise=8.0, blur=0.8, dust=80, paper=225)])
def test_separator_sheet_is_read_back(symbology: str, defects: Defects) -> None:
    image = separator_sheet(rng(6), SIZE, "PATCHT:letter", symbology, defects)  # type: ignore[arg-type]
    marks = mark_page(image, blank=True, barcode=True, class_names=NAMES)
    assert marks.separator is not None
    assert marks.separator.value == "PATCHT:letter" and marks.separator.label == "letter"
    assert marks.separator.format == ("QRCode" if symbology == "qr" else "Code128")
    assert not marks.blank  # a code is ink


def test_separator_without_a_class_or_naming_an_unknown_one() -> None:
    plain = mark_page(separator_sheet(rng(7), SIZE, "PATCHT", "qr", ROUGH), blank=False, barcode=True)
    assert plain.separator is not None and plain.separator.label is None and plain.ink is None
    image = separator_sheet(rng(7), SIZE, "PATCHT:recipe", "code128", Defects(noise=4.0))
    unknown = mark_page(image, blank=False, barcode=True, class_names=NAMES)
    assert unknown.separator is not None and unknown.separator.label is None
    assert "'recipe' names no class" in unknown.separator.rule


def test_bare_class_name_separates_only_on_a_sheet_with_little_else() -> None:
    for symbology in SYMBOLOGIES:
        sheet = separator_sheet(rng(8), SIZE, "Form", symbology, Defects(noise=4.0), caption=False)
        marks = mark_page(sheet, blank=False, barcode=True, class_names=NAMES)
        assert marks.separator is not None and marks.separator.label == "form", symbology
    on_a_page = _with_code(content_sheet(rng(8), "text", SIZE, Defects()), "form")
    assert read_codes(on_a_page)[0].value == "form"
    assert mark_page(on_a_page, blank=True, barcode=True, class_names=NAMES) == PageMarks(
        measure_ink(on_a_page), None
    )


def test_other_codes_never_make_a_separator() -> None:
    payment = "BCD\n002\n1\nSCT\nBANKDEFFXXX\nInvoice Ltd\nDE02100100109307118603\nEUR12.30"
    page = _with_code(content_sheet(rng(9), "form", SIZE, Defects(noise=3.0)), payment)
    marks = mark_page(page, blank=True, barcode=True, class_names=NAMES)
    assert marks.separator is None and not marks.blank
    lone = separator_sheet(rng(9), SIZE, "1Z999AA10123456784", "code128", Defects(), caption=False)
    lone_marks = mark_page(lone, blank=True, barcode=True, class_names=NAMES)
    assert lone_marks.separator is None and not lone_marks.blank  # a parcel label is kept, as a page


def test_prefix_rule() -> None:
    def code(value: str) -> list[Code]:
        return [Code(value, "QRCode", (0, 0, 10, 10))]

    assert separator_of(code("patcht invoice"), NAMES).label == "invoice"  # type: ignore[union-attr]
    assert separator_of(code("PATCHT"), NAMES).label is None  # type: ignore[union-attr]
    assert separator_of(code("PATCHTX"), NAMES) is None
    assert separator_of(code("SEP-form"), NAMES, prefix="SEP").label == "form"  # type: ignore[union-attr]
    assert separator_of(code("PATCHT"), NAMES, prefix="SEP") is None
    assert separator_of(code("letter"), NAMES) is None  # no ink measure: a bare name is not enough
    assert separator_of(code("letter"), NAMES, sheet_ink=0.001).label == "letter"  # type: ignore[union-attr]
    assert separator_of(code("letter"), NAMES, sheet_ink=0.05) is None


def test_nothing_is_measured_when_the_rules_ask_for_nothing() -> None:
    assert mark_page(blank_sheet(rng(1), SIZE, Defects()), blank=False, barcode=False) == PageMarks(
        None, None
    )


def _with_code(page: np.ndarray, value: str) -> np.ndarray:
    """``page`` with a QR code of ``value`` printed in its lower right corner."""
    dark = np.kron(code_modules(value, "qr"), np.ones((5, 5), bool))
    out = page.copy()
    h, w = out.shape
    bh, bw = dark.shape
    top, left = h - bh - 140, w - bw - 140
    out[top - 20 : top + bh + 20, left - 20 : left + bw + 20] = 255
    out[top : top + bh, left : left + bw] = np.where(dark, 20, 255).astype(np.uint8)
    return out
