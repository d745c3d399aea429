"""Files the review page may show: only those inside the configured review directory."""

from __future__ import annotations

from pathlib import Path

IMAGE_TYPES = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".webp": "image/webp"}
VOTES_TYPES = {".json": "application/json"}  # a CAM's cell votes (worker.cam.save_cam_cells)


def review_file(review_dir: Path, stored: str | None, types: dict[str, str] = IMAGE_TYPES) -> Path | None:
    """The file ``stored`` names (absolute, or relative to ``review_dir``) if it exists inside
    ``review_dir`` and is of one of ``types`` (by suffix: images unless told); None otherwise. Symbolic
    links that lead outside are refused too."""
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
    if resolved.suffix.lower() not in types:
        return None
    return resolved
