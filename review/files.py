"""Files the review page may show: only those inside the configured review directory."""

from __future__ import annotations

from pathlib import Path

IMAGE_TYPES = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".webp": "image/webp"}


def review_file(review_dir: Path, stored: str | None) -> Path | None:
    """The file ``stored`` names (absolute, or relative to ``review_dir``) if it is an image inside
    ``review_dir`` that exists; None otherwise. Symbolic links that lead outside are refused too."""
    if not stored or "\x00" in stored:
        return None
    root = review_dir.resolve()
    candidate = Path(stored)
    if not candidate.is_absolute():
        candidate = root / candidate
    try:
        resolved = candidate.resolve(strict=True)
    except (OSError, RuntimeError):
        return None
    if not resolved.is_relative_to(root) or not resolved.is_file():
        return None
    if resolved.suffix.lower() not in IMAGE_TYPES:
        return None
    return resolved
