"""Fonts and word-like text for the synthetic page generator (:mod:`docsort.synth`).

Uses DejaVu or Liberation fonts when the system has them (Debian: ``fonts-dejavu-core``) and falls back
to Pillow's built-in font, so pages render on any machine; the same machine gives the same pixels.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import ImageDraw, ImageFont

Font = ImageFont.FreeTypeFont | ImageFont.ImageFont
FONT_DIRS = (Path("/usr/share/fonts/truetype/dejavu"), Path("/usr/share/fonts/truetype/liberation"))
REGULAR_FONTS = (
    "DejaVuSerif.ttf",
    "DejaVuSans.ttf",
    "DejaVuSansMono.ttf",
    "DejaVuSansCondensed.ttf",
    "LiberationSerif-Regular.ttf",
    "LiberationSans-Regular.ttf",
    "LiberationMono-Regular.ttf",
)
BOLD_FONTS = ("DejaVuSans-Bold.ttf", "DejaVuSerif-Bold.ttf", "LiberationSans-Bold.ttf")
ONSETS = (
    "",
    "b",
    "c",
    "d",
    "f",
    "g",
    "h",
    "l",
    "m",
    "n",
    "p",
    "r",
    "s",
    "t",
    "v",
    "w",
    "st",
    "tr",
    "ch",
    "pl",
)
VOWELS = ("a", "e", "i", "o", "u", "ea", "ou", "io", "a", "e")
CODAS = ("", "", "n", "r", "s", "t", "l", "nd", "ng", "st", "m")
SHORT_WORDS = ("the", "of", "and", "to", "in", "a", "is", "for", "on", "by", "with", "at", "or", "as")


@lru_cache(maxsize=1)
def available_fonts() -> tuple[tuple[Path, ...], tuple[Path, ...]]:
    """(regular, bold) TrueType fonts found on this system; empty tuples mean Pillow's built-in font."""

    def found(names: tuple[str, ...]) -> tuple[Path, ...]:
        return tuple(d / n for n in names for d in FONT_DIRS if (d / n).is_file())

    return found(REGULAR_FONTS), found(BOLD_FONTS)


@lru_cache(maxsize=512)
def _font(path: Path | None, size: int) -> Font:
    if path is None:
        return ImageFont.load_default(size=size)
    return ImageFont.truetype(str(path), size)


def pick_font(rng: np.random.Generator, size: float, bold: bool = False) -> Font:
    """A random system font of ``size`` pixels (bold if asked and available), else Pillow's default."""
    regular, bolds = available_fonts()
    choices = bolds if bold and bolds else regular
    path = choices[int(rng.integers(len(choices)))] if choices else None
    return _font(path, max(4, int(size)))


def word(rng: np.random.Generator) -> str:
    if rng.random() < 0.3:
        return SHORT_WORDS[int(rng.integers(len(SHORT_WORDS)))]
    syllables = int(rng.choice((1, 2, 2, 3, 3, 4)))
    parts = [
        ONSETS[int(rng.integers(len(ONSETS)))]
        + VOWELS[int(rng.integers(len(VOWELS)))]
        + CODAS[int(rng.integers(len(CODAS)))]
        for _ in range(syllables)
    ]
    return "".join(parts) or "a"


def sentence(rng: np.random.Generator, lo: int = 4, hi: int = 16) -> str:
    words = [word(rng) for _ in range(int(rng.integers(lo, hi + 1)))]
    if len(words) > 5 and rng.random() < 0.4:
        words[int(rng.integers(2, len(words) - 2))] += ","
    if rng.random() < 0.1:
        words.insert(int(rng.integers(len(words))), str(int(rng.integers(1, 2000))))
    return " ".join(words).capitalize() + str(rng.choice([".", ".", ".", ":", "?"]))


def phrase(rng: np.random.Generator, lo: int = 1, hi: int = 3, title: bool = True) -> str:
    words = [word(rng) for _ in range(int(rng.integers(lo, hi + 1)))]
    return " ".join(w.capitalize() if title else w for w in words)


def wrap(text: str, font: Font, width: float) -> list[str]:
    """Greedy line breaking of ``text`` into lines no wider than ``width`` pixels."""
    lines: list[str] = []
    line = ""
    for token in text.split():
        candidate = f"{line} {token}" if line else token
        if line and font.getlength(candidate) > width:
            lines.append(line)
            line = token
        else:
            line = candidate
    if line:
        lines.append(line)
    return lines


def line_height(font: Font) -> int:
    _, top, _, bottom = font.getbbox("Hg")
    return max(1, int(bottom - top))


def draw_justified(
    draw: ImageDraw.ImageDraw, xy: tuple[float, float], line: str, font: Font, width: float, fill: int
) -> None:
    """Draw ``line`` stretched to ``width`` by widening the gaps between words."""
    words = line.split()
    if len(words) < 2:
        draw.text(xy, line, font=font, fill=fill)
        return
    lengths = [font.getlength(w) for w in words]
    gap = (width - sum(lengths)) / (len(words) - 1)
    x, y = xy
    for w, length in zip(words, lengths, strict=True):
        draw.text((x, y), w, font=font, fill=fill)
        x += length + gap
