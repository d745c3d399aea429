"""Clean page renderers for the synthetic generator: typed text, forms, photos and drawings.

Each renderer draws one page of ``(width, height)`` pixels (already at the generator's oversampled
resolution) as an RGB ``uint8`` array on white; :mod:`docsort.synth_scan` then adds the scan defects.
"""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np
from PIL import Image, ImageDraw

from docsort.synth_text import (
    draw_justified,
    line_height,
    phrase,
    pick_font,
    sentence,
    wrap,
)

Size = tuple[int, int]  # (width, height)
INK = (20, 40)  # range of near-black ink levels


def _ink(rng: np.random.Generator) -> int:
    return int(rng.integers(*INK))


def smooth_noise(rng: np.random.Generator, size: Size, cells: int, channels: int = 1) -> np.ndarray:
    """Low-frequency noise in [0, 1]: a coarse random grid upsampled with cubic interpolation."""
    w, h = size
    gw, gh = max(2, cells), max(2, round(cells * h / w))
    grid = rng.random((gh, gw, channels)).astype(np.float32)
    out = cv2.resize(grid, (w, h), interpolation=cv2.INTER_CUBIC)
    out = out.reshape(h, w, channels)
    return np.clip(out, 0.0, 1.0)


# --- typed text -------------------------------------------------------------------------------------


def render_text(rng: np.random.Generator, size: Size) -> np.ndarray:
    """A typed page: optional heading, paragraphs in one or two columns, sometimes a page number."""
    w, h = size
    page = Image.new("L", size, 255)
    draw = ImageDraw.Draw(page)
    margin = int(w * rng.uniform(0.07, 0.14))
    body = pick_font(rng, h * rng.uniform(0.012, 0.024))
    lh = int(line_height(body) * rng.uniform(1.35, 1.8))
    y = int(h * rng.uniform(0.06, 0.12))
    if rng.random() < 0.7:
        head = pick_font(rng, h * rng.uniform(0.025, 0.045), bold=True)
        for line in wrap(phrase(rng, 2, 6), head, w - 2 * margin)[:2]:
            x = (w - head.getlength(line)) / 2 if rng.random() < 0.5 else margin
            draw.text((x, y), line, font=head, fill=_ink(rng))
            y += int(line_height(head) * 1.6)
        y += lh
    columns = 2 if rng.random() < 0.25 else 1
    gutter = int(w * 0.04)
    col_w = (w - 2 * margin - gutter * (columns - 1)) / columns
    justified = rng.random() < 0.5
    bottom = h - int(h * rng.uniform(0.06, 0.12))
    top = y
    for col in range(columns):
        x0 = margin + col * (col_w + gutter)
        y = top
        while y < bottom - lh:
            text = " ".join(sentence(rng) for _ in range(int(rng.integers(2, 7))))
            lines = wrap(text, body, col_w - (lh if rng.random() < 0.5 else 0))
            for i, line in enumerate(lines):
                if y >= bottom - lh:
                    break
                indent = lh if i == 0 and rng.random() < 0.5 else 0
                if justified and i < len(lines) - 1:
                    draw_justified(draw, (x0 + indent, y), line, body, col_w - indent, _ink(rng))
                else:
                    draw.text((x0 + indent, y), line, font=body, fill=_ink(rng))
                y += lh
            y += int(lh * rng.uniform(0.3, 1.0))
    if rng.random() < 0.5:
        draw.text((w / 2, h - margin / 2), str(int(rng.integers(1, 300))), font=body, fill=_ink(rng))
    return np.asarray(page.convert("RGB"))


# --- forms ------------------------------------------------------------------------------------------


def _field_row(
    draw: ImageDraw.ImageDraw, rng: np.random.Generator, x0: int, x1: int, y: int, lh: int
) -> None:
    font = pick_font(rng, lh * 0.7)
    ink = _ink(rng)
    x = x0
    while x < x1 - 4 * lh:
        label = phrase(rng, 1, 2) + ":"
        draw.text((x, y), label, font=font, fill=ink)
        bx = x + font.getlength(label) + lh * 0.3
        bw = min(x1 - bx, lh * rng.uniform(4, 12))
        if bw < lh:
            break
        if rng.random() < 0.6:
            draw.rectangle((bx, y - lh * 0.2, bx + bw, y + lh * 0.9), outline=ink, width=max(1, lh // 12))
        else:
            draw.line((bx, y + lh * 0.85, bx + bw, y + lh * 0.85), fill=ink, width=max(1, lh // 14))
        if rng.random() < 0.5:  # a filled-in value, often in blue ink
            value_ink = (30, 50, 150) if rng.random() < 0.5 else (ink, ink, ink)
            draw.text((bx + lh * 0.3, y), phrase(rng, 1, 2, title=False), font=font, fill=value_ink)
        x = int(bx + bw + lh)


def _checkboxes(
    draw: ImageDraw.ImageDraw, rng: np.random.Generator, x0: int, x1: int, y: int, lh: int
) -> None:
    font = pick_font(rng, lh * 0.65)
    ink = _ink(rng)
    box = int(lh * 0.7)
    x = x0
    while x < x1 - 5 * lh:
        draw.rectangle((x, y, x + box, y + box), outline=ink, width=max(1, lh // 12))
        if rng.random() < 0.35:
            draw.line((x, y, x + box, y + box), fill=ink, width=max(1, lh // 10))
            draw.line((x, y + box, x + box, y), fill=ink, width=max(1, lh // 10))
        label = phrase(rng, 1, 2)
        draw.text((x + box + lh * 0.3, y), label, font=font, fill=ink)
        x = int(x + box + font.getlength(label) + lh * 1.2)


def _table(draw: ImageDraw.ImageDraw, rng: np.random.Generator, x0: int, x1: int, y: int, lh: int) -> int:
    rows, cols = int(rng.integers(3, 8)), int(rng.integers(2, 6))
    ink = _ink(rng)
    font = pick_font(rng, lh * 0.6)
    width = max(1, lh // 12)
    edges = np.linspace(x0, x1, cols + 1)
    if rng.random() < 0.6:
        shade = int(rng.integers(200, 235))
        draw.rectangle((x0, y, x1, y + lh), fill=(shade, shade, shade))
    for r in range(rows + 1):
        draw.line((x0, y + r * lh, x1, y + r * lh), fill=ink, width=width)
    for c in edges:
        draw.line((c, y, c, y + rows * lh), fill=ink, width=width)
    for c in range(cols):
        draw.text((edges[c] + lh * 0.2, y + lh * 0.15), phrase(rng, 1, 1), font=font, fill=ink)
        for r in range(1, rows):
            if rng.random() < 0.5:
                draw.text(
                    (edges[c] + lh * 0.2, y + r * lh + lh * 0.15), phrase(rng, 1, 1), font=font, fill=ink
                )
    return y + rows * lh


def render_form(rng: np.random.Generator, size: Size) -> np.ndarray:
    """A form: title, section bars, labelled boxes and lines, checkboxes, a table, a signature line."""
    w, h = size
    page = Image.new("RGB", size, (255, 255, 255))
    draw = ImageDraw.Draw(page)
    margin = int(w * rng.uniform(0.06, 0.1))
    lh = int(h * rng.uniform(0.026, 0.04))
    y = int(h * rng.uniform(0.05, 0.09))
    ink = _ink(rng)
    if rng.random() < 0.5:  # a logo block
        draw.rectangle((margin, y, margin + lh * 2, y + lh * 2), fill=(ink, ink, ink))
    title = pick_font(rng, lh * rng.uniform(0.9, 1.4), bold=True)
    heading = phrase(rng, 2, 3).upper()
    x = max(margin + lh * 2.5, (w - title.getlength(heading)) / 2)
    draw.text((x, y), heading, font=title, fill=ink)
    section = pick_font(rng, lh * 0.7, bold=True)
    y += int(lh * 2.6)
    if rng.random() < 0.5:
        draw.rectangle((margin, y - lh // 2, w - margin, h - margin), outline=ink, width=max(1, lh // 10))
    while y < h - margin - 3 * lh:
        choice = rng.random()
        if choice < 0.2:  # section bar
            shade = int(rng.integers(150, 230))
            draw.rectangle((margin, y, w - margin, y + lh), fill=(shade, shade, shade))
            draw.text((margin + lh * 0.3, y + lh * 0.1), phrase(rng, 1, 3).upper(), font=section, fill=ink)
            y += int(lh * 1.6)
        elif choice < 0.65:
            _field_row(draw, rng, margin + lh // 2, w - margin - lh // 2, y, lh)
            y += int(lh * rng.uniform(1.4, 2.0))
        elif choice < 0.8:
            _checkboxes(draw, rng, margin + lh // 2, w - margin - lh // 2, y, lh)
            y += int(lh * 1.5)
        elif y < h - margin - 9 * lh:
            y = _table(draw, rng, margin + lh // 2, w - margin - lh // 2, y, lh) + lh
    sig_y = h - margin - lh
    draw.line((w * 0.55, sig_y, w - margin - lh, sig_y), fill=ink, width=max(1, lh // 14))
    draw.text((w * 0.55, sig_y + lh * 0.2), "Signature", font=pick_font(rng, lh * 0.5), fill=ink)
    return np.asarray(page)


# --- photos -----------------------------------------------------------------------------------------


def _blob_mask(
    rng: np.random.Generator, size: Size, centre: tuple[float, float], radius: float
) -> np.ndarray:
    """A soft, irregular blob (a bush, a stone, a head) as a float mask in [0, 1]."""
    w, h = size
    cx, cy = centre
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    angle = np.arctan2(yy - cy, xx - cx)
    wobble = 1.0
    for _ in range(2):
        wobble = wobble + rng.uniform(0.03, 0.15) * np.sin(
            angle * int(rng.integers(2, 9)) + rng.uniform(0, 6.3)
        )
    dist = np.hypot((xx - cx) / rng.uniform(0.7, 1.3), yy - cy) / (radius * wobble)
    return np.clip((1.0 - dist) * rng.uniform(3, 12), 0.0, 1.0)


def _tone(rng: np.random.Generator, palette: str) -> np.ndarray:
    """A natural colour: sky, vegetation, earth, skin, or any muted colour."""
    ranges = {
        "sky": ((90, 200), (140, 220), (190, 255)),
        "dusk": ((200, 255), (110, 180), (60, 140)),
        "green": ((30, 110), (70, 160), (20, 80)),
        "earth": ((90, 170), (70, 130), (40, 90)),
        "skin": ((170, 240), (120, 190), (90, 160)),
        "grey": ((60, 200),) * 3,
    }
    lo_hi = ranges.get(palette, ((30, 230),) * 3)
    return np.array([rng.uniform(lo, hi) for lo, hi in lo_hi], np.float32)


def _ridge_mask(rng: np.random.Generator, size: Size, base: float, amplitude: float) -> np.ndarray:
    """Everything below a wavy skyline (hills, a shoreline): 1 below, 0 above, softly edged."""
    w, h = size
    profile = smooth_noise(rng, (w, 1), int(rng.integers(3, 10)))[0, :, 0]
    skyline = (base + (profile - 0.5) * amplitude) * h
    yy = np.arange(h, dtype=np.float32)[:, None]
    return np.clip((yy - skyline[None, :]) / 2.0, 0.0, 1.0)


def _muted_field(rng: np.random.Generator, size: Size) -> np.ndarray:
    """A background of soft light and shade in one muted colour with a little tint variation."""
    light = 0.55 + 0.6 * smooth_noise(rng, size, int(rng.integers(2, 6)))
    tint = 0.85 + 0.3 * smooth_noise(rng, size, int(rng.integers(2, 4)), 3)
    return _tone(rng, str(rng.choice(["grey", "earth", "sky", "any"]))) * light * tint


def _landscape(rng: np.random.Generator, size: Size) -> np.ndarray:
    w, h = size
    t = np.linspace(0.0, 1.0, h, dtype=np.float32)[:, None, None]
    sky_a, sky_b = _tone(rng, str(rng.choice(["sky", "sky", "dusk", "grey"]))), _tone(rng, "sky")
    img = np.broadcast_to(sky_a * (1 - t) + sky_b * t, (h, w, 3)).copy()
    if rng.random() < 0.3:  # sun or moon
        mask = _blob_mask(rng, size, (rng.uniform(0.1, 0.9) * w, rng.uniform(0.05, 0.3) * h), 0.05 * w)
        img += mask[..., None] * 90
    base = rng.uniform(0.35, 0.6)
    for layer in range(int(rng.integers(1, 4))):  # far hills are paler (atmospheric perspective)
        mask = _ridge_mask(rng, size, base + layer * 0.08, rng.uniform(0.1, 0.4))[..., None]
        colour = _tone(rng, str(rng.choice(["green", "earth", "grey"])))
        haze = 0.5 / (layer + 1)
        colour = colour * (1 - haze) + img.mean(axis=(0, 1)) * haze
        shade = 0.75 + 0.5 * smooth_noise(rng, size, int(rng.integers(6, 20)))
        img = img * (1 - mask) + colour * shade * mask
    for _ in range(int(rng.integers(0, 6))):  # trees and bushes
        cx, cy = rng.uniform(0, 1) * w, rng.uniform(base + 0.05, 0.95) * h
        r = rng.uniform(0.03, 0.12) * w
        trunk = (slice(int(cy), int(min(h, cy + r * 1.5))), slice(int(cx - r * 0.1), int(cx + r * 0.1) + 1))
        img[trunk] = _tone(rng, "earth") * 0.5
        mask = _blob_mask(rng, size, (cx, cy - r * 0.3), r)[..., None]
        img = img * (1 - mask) + _tone(rng, "green") * (0.7 + 0.6 * smooth_noise(rng, size, 30)) * mask
    return img


def _portrait(rng: np.random.Generator, size: Size) -> np.ndarray:
    w, h = size
    img = cv2.GaussianBlur(_muted_field(rng, size), (0, 0), w * 0.03)
    cx = rng.uniform(0.35, 0.65) * w
    body = _blob_mask(rng, size, (cx, h * rng.uniform(0.95, 1.1)), w * rng.uniform(0.3, 0.45))[..., None]
    img = img * (1 - body) + _tone(rng, "any") * body
    head_r, head_y = w * rng.uniform(0.12, 0.2), h * rng.uniform(0.35, 0.5)
    hair = _blob_mask(rng, size, (cx, head_y - head_r * 0.3), head_r * 1.05)[..., None]
    img = img * (1 - hair) + _tone(rng, "earth") * rng.uniform(0.2, 1.0) * hair
    head = _blob_mask(rng, size, (cx, head_y + head_r * 0.1), head_r * 0.85)[..., None]
    face = _tone(rng, "skin") * (0.8 + 0.4 * smooth_noise(rng, size, 8))
    return img * (1 - head) + face * head


def _still_life(rng: np.random.Generator, size: Size) -> np.ndarray:
    w, h = size
    img = _muted_field(rng, size)
    for _ in range(int(rng.integers(3, 12))):
        centre = (rng.uniform(0.1, 0.9) * w, rng.uniform(0.2, 0.9) * h)
        mask = _blob_mask(rng, size, centre, rng.uniform(0.05, 0.25) * min(w, h))[..., None]
        yy = np.linspace(1.2, 0.6, h, dtype=np.float32)[:, None, None]  # light from above
        img = img * (1 - mask) + _tone(rng, "any") * yy * mask
    return img


def render_photo(rng: np.random.Generator, size: Size) -> np.ndarray:
    """A photograph: a landscape, a portrait or a still life, with grain and soft focus."""
    w, _ = size
    scenes = (_landscape, _landscape, _portrait, _still_life)
    scene = scenes[int(rng.integers(len(scenes)))](rng, size).astype(np.float32)
    img: np.ndarray = np.asarray(cv2.GaussianBlur(scene, (0, 0), rng.uniform(0.6, 2.0)), np.float32)
    img = img + (smooth_noise(rng, size, max(8, w // 6), 1) - 0.5) * rng.uniform(4, 20)  # fine detail
    img = img * rng.uniform(0.75, 1.15)  # exposure
    photo = np.clip(img, 0, 255).astype(np.uint8)
    if rng.random() < 0.35:  # a print placed on a page, perhaps with a caption
        return _on_page(rng, photo, size)
    return photo


def _on_page(rng: np.random.Generator, photo: np.ndarray, size: Size) -> np.ndarray:
    w, h = size
    scale = rng.uniform(0.55, 0.85)
    pw, ph = int(w * scale), int(h * scale * rng.uniform(0.6, 1.0))
    page = np.full((h, w, 3), 255, np.uint8)
    x = int(rng.integers(int(w * 0.05), int(w * 0.95) - pw + 1))
    y = int(rng.integers(int(h * 0.03), max(int(h * 0.03) + 1, int(h * 0.92) - ph - int(h * 0.06))))
    page[y : y + ph, x : x + pw] = cv2.resize(photo, (pw, ph), interpolation=cv2.INTER_AREA)
    if rng.random() < 0.6:
        canvas = Image.fromarray(page)
        font = pick_font(rng, h * 0.018)
        ImageDraw.Draw(canvas).text((x, y + ph + h * 0.015), sentence(rng, 3, 8), font=font, fill=_ink(rng))
        page = np.asarray(canvas)
    return page


# --- drawings ---------------------------------------------------------------------------------------


def _curve(rng: np.random.Generator, size: Size, steps: int) -> list[tuple[float, float]]:
    w, h = size
    x, y = rng.uniform(0.1, 0.9) * w, rng.uniform(0.1, 0.9) * h
    heading = rng.uniform(0, 2 * np.pi)
    pts = []
    for _ in range(steps):
        heading += rng.normal(0, 0.35)
        x = float(np.clip(x + np.cos(heading) * w * 0.02, w * 0.05, w * 0.95))
        y = float(np.clip(y + np.sin(heading) * h * 0.02, h * 0.05, h * 0.95))
        pts.append((x, y))
    return pts


def _sketch(draw: ImageDraw.ImageDraw, rng: np.random.Generator, size: Size, stroke: int) -> None:
    w, h = size
    for _ in range(int(rng.integers(3, 10))):
        kind = rng.random()
        color = tuple(int(c) for c in rng.integers(0, 255, 3)) if rng.random() < 0.5 else None
        box = sorted(rng.uniform(0.05, 0.95, 2) * w), sorted(rng.uniform(0.05, 0.95, 2) * h)
        rect = (box[0][0], box[1][0], box[0][1], box[1][1])
        if kind < 0.3:
            draw.ellipse(rect, outline=_ink(rng), width=stroke, fill=color)
        elif kind < 0.5:
            pts = [(float(rng.uniform(0.05, 0.95) * w), float(rng.uniform(0.05, 0.95) * h)) for _ in range(3)]
            draw.polygon(pts, outline=_ink(rng), width=stroke, fill=color)
        else:
            draw.line(
                _curve(rng, size, int(rng.integers(20, 80))), fill=_ink(rng), width=stroke, joint="curve"
            )


def _chart(draw: ImageDraw.ImageDraw, rng: np.random.Generator, size: Size, stroke: int) -> None:
    w, h = size
    x0, y0, x1, y1 = w * 0.15, h * 0.15, w * 0.9, h * 0.8
    ink = _ink(rng)
    draw.line((x0, y0, x0, y1, x1, y1), fill=ink, width=stroke)
    n = int(rng.integers(4, 12))
    values = rng.uniform(0.1, 1.0, n)
    xs = np.linspace(x0, x1, n + 1)
    color = tuple(int(c) for c in rng.integers(0, 200, 3))
    for i, v in enumerate(values):
        if rng.random() < 0.5:
            pad = (xs[1] - xs[0]) * 0.15
            draw.rectangle((xs[i] + pad, y1 - v * (y1 - y0), xs[i + 1] - pad, y1), fill=color, outline=ink)
        draw.line((xs[i], y1, xs[i], y1 + stroke * 3), fill=ink, width=stroke)
    line = [(float(xs[i] + (xs[1] - xs[0]) / 2), float(y1 - v * (y1 - y0))) for i, v in enumerate(values)]
    draw.line(line, fill=ink, width=stroke)
    font = pick_font(rng, h * 0.025)
    draw.text((x0, y0 - h * 0.08), phrase(rng, 2, 4), font=font, fill=ink)


def render_drawing(rng: np.random.Generator, size: Size) -> np.ndarray:
    """Line art on white: sketches of shapes and curves, hatching, flat fills, or a chart."""
    w, h = size
    page = Image.new("RGB", size, (255, 255, 255))
    draw = ImageDraw.Draw(page)
    stroke = max(1, int(min(w, h) * rng.uniform(0.003, 0.012)))
    if rng.random() < 0.3:
        _chart(draw, rng, size, stroke)
    else:
        _sketch(draw, rng, size, stroke)
    if rng.random() < 0.4:  # hatching over part of the drawing
        x0, y0 = rng.uniform(0.1, 0.6) * w, rng.uniform(0.1, 0.6) * h
        span = rng.uniform(0.15, 0.35) * w
        gap = max(3, int(rng.uniform(0.01, 0.025) * w))
        for k in range(0, int(span), gap):
            draw.line(
                (x0 + k, y0, x0 + k + span * 0.3, y0 + span * 0.6), fill=_ink(rng), width=max(1, stroke // 2)
            )
    return np.asarray(page)


RENDERERS: dict[str, Callable[[np.random.Generator, Size], np.ndarray]] = {
    "text": render_text,
    "form": render_form,
    "photo": render_photo,
    "drawing": render_drawing,
}
