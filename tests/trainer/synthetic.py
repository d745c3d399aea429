"""Tiny labelled image folders the trainer tests make for themselves (no shared data)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image


def text_like(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """Dark word-like blocks in rows on light paper."""
    img = np.full((height, width, 3), rng.integers(215, 256), np.uint8)
    y = int(rng.integers(2, 6))
    while y + 4 < height:
        x = int(rng.integers(1, 5))
        line_h = int(rng.integers(2, 4))
        while x + 3 < width:
            word = int(rng.integers(3, 9))
            img[y : y + line_h, x : min(width, x + word)] = rng.integers(0, 70)
            x += word + int(rng.integers(2, 4))
        y += line_h + int(rng.integers(3, 6))
    return img


def picture_like(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """Smooth colour gradients with a few large soft blobs."""
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    base = rng.uniform(40, 200, 3)
    grad = rng.uniform(-1.5, 1.5, (2, 3))
    img = base + xx[..., None] * grad[0] + yy[..., None] * grad[1]
    for _ in range(int(rng.integers(1, 4))):
        cy, cx, r = rng.uniform(0, height), rng.uniform(0, width), rng.uniform(4, max(5, height / 2))
        mask = np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * r * r))
        img += mask[..., None] * rng.uniform(-90, 90, 3)
    return np.clip(img, 0, 255).astype(np.uint8)


def make_folder(root: Path, per_class: int = 12, seed: int = 0, ext: str = ".png") -> Path:
    """``root/text/*`` and ``root/picture/*`` small images of varied shapes; returns ``root``."""
    rng = np.random.default_rng(seed)
    for name, draw in (("text", text_like), ("picture", picture_like)):
        folder = root / name
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            h, w = int(rng.integers(24, 56)), int(rng.integers(24, 72))
            Image.fromarray(draw(rng, h, w)).save(folder / f"{name}_{i:03d}{ext}")
    return root
