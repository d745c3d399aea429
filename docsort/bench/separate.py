"""``docsort bench separate``: how many documents the separation rules recover exactly from batch files.

Batch files hold documents of 1-4 pages, 3-8 per file, each of the generator's classes
(:data:`docsort.synth.CLASSES`), two neighbours never of the same class. A document counts as recovered
when an output document holds exactly its pages and has its class.

- **class** rule, on simulated page probabilities (:class:`PageModel`): the segmentation with each
  new-document cost λ, λ = 0 being the greedy rule (a cut at every change of the top class).
- **blank** and **barcode** rules, on generated scans (A4, grey, :mod:`docsort.bench.sheets`, with
  random defects): blank sheets, or QR / Code 128 separator sheets (half of them naming the next
  document's class), between the documents; one content page in ten carries a single short line of
  text (the hard case for blank detection). Marks come from :func:`worker.page_marks.mark_page`;
  page probabilities from the same simulated classifier.
"""

from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from docsort.bench.machine import Machine
from docsort.bench.sheets import (
    SYMBOLOGIES,
    Defects,
    a4_size,
    blank_sheet,
    content_sheet,
    line_sheet,
    random_defects,
    scan_sheet,
    separator_sheet,
)
from docsort.synth import CLASSES
from schema.files import write_text_atomic
from schema.split import SplitRules
from worker.page_marks import SEPARATOR_PREFIX, mark_page
from worker.separate import PageEvidence, Separation, default_new_document_cost, separate

DOC_PATH = Path(__file__).resolve().parents[2] / "docs" / "documents.md"
MARKER = "<!-- docsort-bench:separate:{} -->"
LAMBDAS = (0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 8.0)
ACCURACY = 0.95
ODD_SHARE = 0.03
DOC_PAGES = (1, 4)
DOCS_PER_FILE = (3, 8)
LINE_SHARE = 0.1
RULES = ("blank", "barcode")  # the rules measured on generated scans
POOL = 4  # clean renders per class, scanned anew with fresh defects for each page

File = list[tuple[str, int]]  # (class, pages) per document


@dataclass(frozen=True)
class PageModel:
    """A calibrated page classifier: class scores ``z_k ~ N(mu * [k = true], 1)`` and probabilities
    ``softmax(mu * z)``, which is the exact posterior of that model (so calibrated), with ``mu`` set for
    the top-1 ``accuracy``. With ``odd_share``, that share of pages belongs in content to another class
    (an enclosure: a letter page inside an invoice), and is scored as a page of that class."""

    n_classes: int
    accuracy: float = ACCURACY
    odd_share: float = 0.0

    @property
    def mu(self) -> float:
        low, high = 0.0, 20.0
        for _ in range(60):
            mid = (low + high) / 2
            low, high = (mid, high) if _top1(mid, self.n_classes) < self.accuracy else (low, mid)
        return (low + high) / 2

    def probs(self, rng: np.random.Generator, labels: np.ndarray, mu: float) -> np.ndarray:
        shown = labels.copy()
        odd = rng.random(labels.size) < self.odd_share
        shown[odd] = (labels[odd] + rng.integers(1, self.n_classes, odd.sum())) % self.n_classes
        z = rng.normal(0.0, 1.0, (labels.size, self.n_classes))
        z[np.arange(labels.size), shown] += mu
        e = np.exp(mu * (z - z.max(axis=1, keepdims=True)))
        return e / e.sum(axis=1, keepdims=True)


def _top1(mu: float, k: int) -> float:
    """P(the true class scores highest) = ∫ φ(x − mu) Φ(x)^(k−1) dx, on a grid."""
    x = np.linspace(-8.0, mu + 8.0, 4001)
    phi = np.exp(-0.5 * (x - mu) ** 2) / np.sqrt(2 * np.pi)
    cdf = np.cumsum(np.exp(-0.5 * x**2)) * (x[1] - x[0]) / np.sqrt(2 * np.pi)
    return float(np.trapezoid(phi * cdf ** (k - 1), x))


def class_names(n_classes: int) -> list[str]:
    """The generator's classes when there are as many, else neutral names."""
    return list(CLASSES) if n_classes == len(CLASSES) else [f"class{i:02d}" for i in range(n_classes)]


def plan_file(rng: np.random.Generator, names: list[str]) -> File:
    """3-8 documents of 1-4 pages each; two neighbours never of the same class."""
    docs: File = []
    for _ in range(int(rng.integers(DOCS_PER_FILE[0], DOCS_PER_FILE[1] + 1))):
        label = names[int(rng.integers(len(names)))]
        while docs and label == docs[-1][0]:
            label = names[int(rng.integers(len(names)))]
        docs.append((label, int(rng.integers(DOC_PAGES[0], DOC_PAGES[1] + 1))))
    return docs


def score(truth: list[tuple[tuple[int, ...], str]], found: Separation) -> tuple[int, int, int]:
    """(true documents recovered exactly, those with the right pages whatever their class, found)."""
    got = {(d.pages, d.label) for d in found.documents}
    pages = {d.pages for d in found.documents}
    return sum(doc in got for doc in truth), sum(doc[0] in pages for doc in truth), len(found.documents)


def class_rule(files: int, model: PageModel, lambdas: tuple[float, ...], seed: int) -> dict[str, Any]:
    """Exact recovery by the class rule for each λ, and the default λ, on the same simulated files."""
    rng = np.random.default_rng([seed, 1, model.n_classes, round(model.odd_share * 1000)])
    mu, names = model.mu, class_names(model.n_classes)
    batches, correct, pages_total = [], 0, 0
    for _ in range(files):
        plan = plan_file(rng, names)
        labels = np.array([names.index(c) for c, n in plan for _ in range(n)])
        probs = model.probs(rng, labels, mu)
        correct += int((probs.argmax(axis=1) == labels).sum())
        pages_total += labels.size
        starts = np.cumsum([1] + [n for _, n in plan])
        truth = [
            (tuple(range(int(a), int(a) + n)), label) for a, (label, n) in zip(starts, plan, strict=False)
        ]
        batches.append(([PageEvidence(i + 1, p) for i, p in enumerate(probs)], truth))
    default = round(default_new_document_cost(model.n_classes, sum(DOC_PAGES) / 2), 2)
    rows = []
    for lam in sorted({*lambdas, default}):
        exact = found = true = 0
        for evidence, truth in batches:
            done = separate(evidence, names, SplitRules(by_class=True), new_document_cost=lam)
            hit, _, n = score(truth, done)
            exact, found, true = exact + hit, found + n, true + len(truth)
        rows.append({"lambda": lam, "exact": exact / true, "found_per_true": found / true})
    return {
        "classes": model.n_classes,
        "odd_share": model.odd_share,
        "page_accuracy": correct / pages_total,
        "documents": true,
        "default_lambda": default,
        "rows": rows,
    }


class _Pool:
    """Clean renders of each class, scanned anew with fresh defects for every page."""

    def __init__(self, rng: np.random.Generator, size: tuple[int, int]) -> None:
        self.size = size
        self.clean = {k: [content_sheet(rng, k, size, Defects()) for _ in range(POOL)] for k in CLASSES}

    def page(self, rng: np.random.Generator, kind: str) -> tuple[np.ndarray, bool]:
        """A scanned page of class ``kind``, and whether it is a short-line page."""
        if rng.random() < LINE_SHARE:
            return line_sheet(rng, self.size, random_defects(rng), words=int(rng.integers(3, 7))), True
        clean = self.clean[kind][int(rng.integers(POOL))]
        return scan_sheet(rng, clean, random_defects(rng)), False


@dataclass
class _Marker:
    """Marks each page as the worker would (timed), gives it simulated scores, and counts the marks."""

    rng: np.random.Generator
    rules: SplitRules
    model: PageModel
    classes: list[str]
    mu: float
    sheets: int = 0
    sheets_found: int = 0
    content: int = 0
    content_marked: int = 0
    lines: int = 0
    lines_marked: int = 0
    seconds: float = 0.0
    pages: int = 0

    def page(self, image: np.ndarray, number: int, label: int | None, is_line: bool = False) -> PageEvidence:
        """``label``: the content page's class (None: a blank or separator sheet)."""
        started = time.perf_counter()
        marks = mark_page(
            image, blank=self.rules.drops_blank, barcode=self.rules.barcode, class_names=self.classes
        )
        self.seconds += time.perf_counter() - started
        self.pages += 1
        marked = marks.blank if self.rules.blank else marks.separator is not None
        if label is None:
            self.sheets, self.sheets_found = self.sheets + 1, self.sheets_found + marked
        else:
            self.content, self.content_marked = self.content + 1, self.content_marked + marked
            self.lines, self.lines_marked = self.lines + is_line, self.lines_marked + (is_line and marked)
        shown = int(self.rng.integers(len(self.classes))) if label is None else label
        probs = self.model.probs(self.rng, np.array([shown]), self.mu)[0]
        return PageEvidence(number, probs, blank=marks.blank, separator=marks.separator)


def _sheet(rng: np.random.Generator, rule: str, size: tuple[int, int], label: str, named: bool) -> np.ndarray:
    if rule == "blank":
        return blank_sheet(rng, size, random_defects(rng))
    value = f"{SEPARATOR_PREFIX}:{label}" if named else SEPARATOR_PREFIX
    symbology = SYMBOLOGIES[int(rng.integers(len(SYMBOLOGIES)))]
    return separator_sheet(rng, size, value, symbology, random_defects(rng))


def image_rule(rule: str, files: int, model: PageModel, dpi: int, seed: int) -> dict[str, Any]:
    """Exact recovery by the ``blank`` or ``barcode`` rule on generated scans; detection counts."""
    rng = np.random.default_rng([seed, 2, RULES.index(rule)])
    size, classes = a4_size(dpi), class_names(model.n_classes)
    pool = _Pool(rng, size)
    marker = _Marker(rng, SplitRules.parse(rule), model, classes, model.mu)
    exact = same_pages = found = true = 0
    for index in range(files):
        named = rule == "barcode" and index % 2 == 1
        evidence: list[PageEvidence] = []
        truth = []
        for d, (label, n) in enumerate(plan_file(rng, classes)):
            if d > 0 or named:
                evidence.append(marker.page(_sheet(rng, rule, size, label, named), len(evidence) + 1, None))
            start = len(evidence) + 1
            for _ in range(n):
                image, is_line = pool.page(rng, label)
                evidence.append(marker.page(image, len(evidence) + 1, classes.index(label), is_line))
            truth.append((tuple(range(start, start + n)), label))
        hit, cut_right, n_found = score(truth, separate(evidence, classes, marker.rules))
        exact, same_pages, found = exact + hit, same_pages + cut_right, found + n_found
        true += len(truth)
    return {
        "rule": rule,
        "files": files,
        "documents": true,
        "pages": marker.pages,
        "exact": exact / true,
        "same_pages": same_pages / true,
        "found_per_true": found / true,
        "sheets": marker.sheets,
        "sheets_found": marker.sheets_found,
        "content_pages": marker.content,
        "content_marked": marker.content_marked,
        "line_pages": marker.lines,
        "line_marked": marker.lines_marked,
        "marks_ms_per_page": 1000 * marker.seconds / max(1, marker.pages),
        "size": f"{size[0]}x{size[1]}",
    }


def run(
    files: int, image_files: int, lambdas: tuple[float, ...], classes: tuple[int, ...], dpi: int, seed: int
) -> dict[str, Any]:
    settings = [PageModel(k, odd_share=odd) for k in classes for odd in (0.0, ODD_SHARE)]
    plain = PageModel(len(CLASSES))
    return {
        "files": files,
        "class_rule": [class_rule(files, model, lambdas, seed) for model in settings],
        "images": [image_rule(r, image_files, plain, dpi, seed) for r in RULES if image_files],
        "dpi": dpi,
        "seed": seed,
    }


def _class_table(result: dict[str, Any]) -> list[str]:
    """One row per λ, one column per simulated classifier; the best of each column in bold."""
    columns = result["class_rule"]
    lambdas = sorted({r["lambda"] for c in columns for r in c["rows"]})
    head = ["λ (nats)"] + [
        f"{c['classes']} classes, {c['page_accuracy']:.1%} of pages right"
        + (f" ({c['odd_share']:.0%} odd pages)" if c["odd_share"] else "")
        for c in columns
    ]
    lines = ["| " + " | ".join(head) + " |", "|---" * len(head) + "|"]
    for lam in lambdas:
        defaults = sorted({c["classes"] for c in columns if c["default_lambda"] == lam})
        label = f"{lam:g}" + (" (greedy)" if lam == 0 else "")
        label += f" (default for {', '.join(map(str, defaults))} classes)" if defaults else ""
        cells = []
        for c in columns:
            row = next((r for r in c["rows"] if r["lambda"] == lam), None)
            best = max(r["exact"] for r in c["rows"])
            cell = "" if row is None else f"{row['exact']:.1%} ({row['found_per_true']:.2f})"
            cells.append(f"**{cell}**" if row is not None and row["exact"] == best else cell)
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return lines


def _image_table(result: dict[str, Any]) -> list[str]:
    lines = [
        "| rule | files | documents | pages | exact | same pages | found ÷ true | sheets found "
        "| content pages marked (short-line pages) | marks ms/page |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in result["images"]:
        lines.append(
            f"| {r['rule']} | {r['files']} | {r['documents']} | {r['pages']} | {r['exact']:.1%} | "
            f"{r['same_pages']:.1%} | "
            f"{r['found_per_true']:.2f} | {r['sheets_found']}/{r['sheets']} | {r['content_marked']}/"
            f"{r['content_pages']} ({r['line_marked']}/{r['line_pages']}) | {r['marks_ms_per_page']:.0f} |"
        )
    return lines


def summary(result: dict[str, Any]) -> list[str]:
    """The tables, as Markdown."""
    lines = [
        f"Class rule, {result['files']} simulated files per column: documents recovered exactly "
        "(documents found ÷ true documents); the best of each column in bold.",
        "",
        *_class_table(result),
    ]
    if result["images"]:
        size = result["images"][0]["size"]
        lines += [
            "",
            f"Blank and barcode rules on generated A4 scans at {result['dpi']} dpi ({size} px):",
            "",
        ]
        lines += _image_table(result)
    return lines


def write_docs(result: dict[str, Any], machine: Machine, command: str, path: Path = DOC_PATH) -> Path:
    """Replace the measured block of ``path`` (between the separate markers) with this run."""
    date = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    load = f"load {machine.load_text()} → {os.getloadavg()[0]:.2f}"
    block = [MARKER.format("begin"), *summary(result), "", f"Measured on {machine.describe()}; {load}; "
             f"{date}; `{command}`", MARKER.format("end")]  # fmt: skip
    text = path.read_text(encoding="utf-8") if path.is_file() else ""
    pattern = re.compile(re.escape(MARKER.format("begin")) + ".*?" + re.escape(MARKER.format("end")), re.S)
    new = "\n".join(block)
    text = (
        pattern.sub(lambda _: new, text, count=1)
        if pattern.search(text)
        else text.rstrip("\n") + "\n\n" + new
    )
    write_text_atomic(path, text.rstrip("\n") + "\n")
    return path
