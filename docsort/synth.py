"""Synthetic scanned pages in a few classes, for demos, tests and quick training runs.

``generate(out_dir, options)`` writes ``OUT_DIR/<class>/<class>-00001.jpg ...`` (one subfolder per
class, ready for ``docsort train``), or with ``unlabelled`` one flat folder of neutrally named files
(for a drop into an inbox) and, optionally, a CSV of the true classes written elsewhere. Every page
is drawn from its own random generator seeded by (seed, class, index), so a seed gives the same bytes
on the same machine, and a page does not change when more pages or other classes are asked for.
"""

from __future__ import annotations

import csv
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import cv2
import numpy as np
from PIL import Image
from tqdm import tqdm

from docsort.synth_pages import RENDERERS, Size
from docsort.synth_scan import Scanned, scan
from schema.errors import DocsortError
from schema.files import write_atomic, write_bytes_atomic
from schema.logs import get_logger

log = get_logger(__name__)

CLASSES: tuple[str, ...] = tuple(RENDERERS)
OutputFormat = Literal["jpg", "png", "mixed"]
FORMATS: tuple[str, ...] = ("jpg", "png", "mixed")
OVERSAMPLE = 2  # pages are drawn at twice the output size, then scanned down
MIXED = (("jpg", 0.45), ("png", 0.18), ("tif", 0.2), ("pdf", 0.1), ("webp", 0.04), ("bmp", 0.03))
EPOCH = 1_704_067_200  # 2024-01-01T00:00:00Z: fixed PDF dates keep the bytes repeatable
BROKEN_KINDS = ("truncated", "empty", "not-an-image")


class SynthError(DocsortError):
    """The generator was asked for something it cannot make; the message says what to change."""


@dataclass(frozen=True)
class SynthOptions:
    per_class: int = 50
    size: Size = (200, 256)  # (width, height) of a portrait page; photos and drawings may turn
    seed: int = 0
    classes: tuple[str, ...] = CLASSES
    fmt: OutputFormat = "jpg"
    unlabelled: bool = False
    broken: int = 0  # unreadable files added (truncated, empty, not an image), for failure demos
    labels_csv: Path | None = None

    def __post_init__(self) -> None:
        if self.per_class < 1:
            raise SynthError(f"--per-class must be at least 1 (got {self.per_class})")
        if min(self.size) < 32 or max(self.size) > 4000:
            raise SynthError(f"--size {self.size[0]}x{self.size[1]}: each side must be 32 to 4000 pixels")
        unknown = [c for c in self.classes if c not in CLASSES]
        if unknown or not self.classes:
            raise SynthError(
                f"unknown class {', '.join(unknown) or '(none)'}: choose from {', '.join(CLASSES)}"
            )
        if len(set(self.classes)) != len(self.classes):
            raise SynthError(f"--classes names a class twice: {','.join(self.classes)}")
        if self.fmt not in FORMATS:
            raise SynthError(f"--format {self.fmt!r}: choose jpg, png or mixed")
        if self.broken < 0:
            raise SynthError(f"--broken must not be negative (got {self.broken})")


@dataclass
class SynthSummary:
    out_dir: Path
    files: list[tuple[Path, str]] = field(default_factory=list)  # (path, class; "broken" for broken)

    @property
    def by_class(self) -> Counter[str]:
        return Counter(label for _, label in self.files)


def parse_size(text: str) -> Size:
    """``"200x256"`` → (200, 256); a single number is a square."""
    parts = text.lower().replace("×", "x").split("x")
    try:
        values = [int(p) for p in parts]
    except ValueError as exc:
        raise SynthError(f"--size {text!r}: expected WIDTHxHEIGHT in pixels, e.g. 200x256") from exc
    if len(values) == 1:
        values *= 2
    if len(values) != 2:
        raise SynthError(f"--size {text!r}: expected WIDTHxHEIGHT in pixels, e.g. 200x256")
    return values[0], values[1]


def parse_classes(text: str) -> tuple[str, ...]:
    return tuple(c.strip() for c in text.split(",") if c.strip())


def page_rng(seed: int, kind: str, index: int, salt: int = 0) -> np.random.Generator:
    return np.random.default_rng([seed, CLASSES.index(kind), index, salt])


def page_size(rng: np.random.Generator, kind: str, size: Size) -> Size:
    """The page's own size: a few per cent from nominal, photos and drawings sometimes landscape."""
    w, h = size
    if kind in ("photo", "drawing") and rng.random() < 0.45:
        w, h = h, w
    jitter = rng.uniform(0.94, 1.0)
    return max(32, round(w * jitter * rng.uniform(0.97, 1.03))), max(32, round(h * jitter))


def make_page(seed: int, kind: str, index: int, size: Size, salt: int = 0) -> Scanned:
    """One synthetic scan of class ``kind``; the same arguments give the same pixels."""
    rng = page_rng(seed, kind, index, salt)
    out = page_size(rng, kind, size)
    clean = RENDERERS[kind](rng, (out[0] * OVERSAMPLE, out[1] * OVERSAMPLE))
    return scan(rng, clean, out, kind)


def choose_format(rng: np.random.Generator, fmt: OutputFormat, scanned: Scanned) -> str:
    if fmt != "mixed":
        return fmt
    names, weights = zip(*MIXED, strict=True)
    choice = str(rng.choice(names, p=np.array(weights) / sum(weights)))
    if scanned.mode == "bilevel" and choice in ("jpg", "webp"):
        return "tif"  # a bilevel scan is a G4 TIFF far more often than a JPEG
    return choice


def _save_options(rng: np.random.Generator, ext: str, scanned: Scanned, stamp: int, title: str) -> dict:
    if ext == "jpg":
        return {"format": "JPEG", "quality": int(rng.integers(55, 93)), "dpi": (150, 150)}
    if ext == "png":
        return {"format": "PNG", "optimize": False, "dpi": (150, 150)}
    if ext == "tif":
        compression = (
            "group4" if scanned.mode == "bilevel" else str(rng.choice(["tiff_lzw", "tiff_adobe_deflate"]))
        )
        return {"format": "TIFF", "compression": compression, "dpi": (150, 150)}
    if ext == "webp":
        return {"format": "WEBP", "quality": int(rng.integers(60, 90)), "method": 4}
    if ext == "bmp":
        return {"format": "BMP"}
    date = time.gmtime(stamp)
    return {"format": "PDF", "resolution": 150.0, "title": title, "creationDate": date, "modDate": date}


def write_image(
    path: Path, image: Image.Image, options: dict, extra_pages: Sequence[Image.Image] = ()
) -> None:
    """Write through a hidden temporary name and rename, so a watcher never takes half a file."""
    if options["format"] in ("JPEG", "WEBP") and image.mode == "1":
        image = image.convert("L")
    if extra_pages:
        options = {**options, "save_all": True, "append_images": list(extra_pages)}
    write_atomic(path, lambda tmp: image.save(tmp, **options))


def _write_broken(rng: np.random.Generator, out: Path, index: int, sample: Path | None) -> Path:
    kind = BROKEN_KINDS[index % len(BROKEN_KINDS)]
    if kind == "truncated" and sample is not None:
        data = sample.read_bytes()
        path, payload = out / f"broken-{index + 1:03d}.jpg", data[: max(64, len(data) // 3)]
    elif kind == "empty":
        path, payload = out / f"broken-{index + 1:03d}.png", b""
    else:
        path, payload = out / f"broken-{index + 1:03d}.tif", rng.bytes(2048)
    write_bytes_atomic(path, payload)
    return path


def _targets(opts: SynthOptions) -> list[tuple[str, int]]:
    jobs = [(kind, i) for kind in opts.classes for i in range(opts.per_class)]
    if opts.unlabelled:  # interleave classes so a drop is not sorted by class
        order = np.random.default_rng([opts.seed, 99]).permutation(len(jobs))
        jobs = [jobs[i] for i in order]
    return jobs


def generate(out_dir: Path | str, opts: SynthOptions, progress: bool = True) -> SynthSummary:
    """Write the pages that ``opts`` asks for under ``out_dir``; return what was written."""
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
        for kind in () if opts.unlabelled else opts.classes:
            (out / kind).mkdir(exist_ok=True)
    except OSError as exc:
        raise SynthError(f"{out}: cannot create the output folder ({exc.strerror or exc})") from exc
    cv2.setNumThreads(1)
    summary = SynthSummary(out)
    jobs = _targets(opts)
    for n, (kind, index) in enumerate(tqdm(jobs, desc="synth", unit="page", disable=not progress)):
        summary.files.append((_write_page(out, opts, kind, index, n), kind))
    sample = next((p for p, _ in summary.files if p.suffix == ".jpg"), None)
    broken_rng = np.random.default_rng([opts.seed, 7])
    for index in range(opts.broken):
        summary.files.append((_write_broken(broken_rng, out, index, sample), "broken"))
    if opts.labels_csv is not None:
        _write_labels(opts.labels_csv, summary)
    log.info("synth.done", out_dir=str(out), pages=len(summary.files), by_class=dict(summary.by_class))
    return summary


def _write_page(out: Path, opts: SynthOptions, kind: str, index: int, n: int) -> Path:
    scanned = make_page(opts.seed, kind, index, opts.size)
    rng = page_rng(opts.seed, kind, index, salt=1)
    ext = choose_format(rng, opts.fmt, scanned)
    stem = f"page-{n + 1:05d}" if opts.unlabelled else f"{kind}-{index + 1:05d}"
    path = (out if opts.unlabelled else out / kind) / f"{stem}.{ext}"
    extra: list[Image.Image] = []
    if opts.unlabelled and ext in ("tif", "pdf") and rng.random() < 0.3:  # a two-page document
        second = make_page(opts.seed, kind, index, opts.size, salt=2).image
        extra = [second.convert(scanned.image.mode)]
    try:
        write_image(path, scanned.image, _save_options(rng, ext, scanned, EPOCH + n, stem), extra)
    except OSError as exc:
        raise SynthError(f"{path}: cannot be written ({exc.strerror or exc})") from exc
    return path


def _write_labels(path: Path, summary: SynthSummary) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["file", "label"])
        for file, label in summary.files:
            writer.writerow([file.name, label])
