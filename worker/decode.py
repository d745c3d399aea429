"""Step 2 of a job: decode every page of each file into the model's input, or fail the file with a reason.

One implementation of decoding serves training and serving (:mod:`worker.imaging`); this step adds the
job's concerns: files already finished are skipped, and a file whose decoding killed worker processes
:data:`~worker.poison.MAX_DECODE_CRASHES` times is dead-lettered instead of decoded again.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from schema.logs import get_logger
from schema.manifest import InputSpec
from worker import metrics
from worker.cam import preview
from worker.context import JobFile
from worker.imaging import UnreadableImage, iter_pages, media_type_of, to_model_input
from worker.poison import MAX_DECODE_CRASHES, DecodeGuard, dead_letter_reason

log = get_logger(__name__)


@dataclass
class PreparedPage:
    """One decoded page: its size and the model's input. The full page is not kept (memory stays small);
    ``preview`` only when asked for."""

    number: int
    width: int
    height: int
    model_input: np.ndarray
    preview: Image.Image | None = None


@dataclass
class DecodedFile:
    path: Path
    media_type: str
    pages: list[PreparedPage]


@dataclass(frozen=True)
class DecodeFailure:
    file: JobFile
    reason: str


def decode_file(path: Path, spec: InputSpec, preview_side: int | None = None) -> DecodedFile:
    """Every page of a file, ready for the model; raises UnreadableImage naming the reason.

    With ``preview_side``, each page also keeps a preview of that longest side (the worker does not ask:
    it renders previews of review pages only, with :func:`render_previews`).
    """
    media = media_type_of(path)
    pages: list[PreparedPage] = []
    for page in iter_pages(path):
        image = page.image
        model_input = to_model_input(image, (spec.height, spec.width), spec.resize, spec.pad_value)
        small = preview(image, preview_side) if preview_side else None
        pages.append(PreparedPage(page.number, image.width, image.height, model_input, small))
        image.close()
    return DecodedFile(Path(path), media, pages)


def render_previews(path: Path, numbers: set[int], max_side: int) -> dict[int, Image.Image]:
    """The wanted pages again, scaled to ``max_side`` at most (for review images and CAM overlays)."""
    found: dict[int, Image.Image] = {}
    if not numbers:
        return found
    for page in iter_pages(path):
        if page.number in numbers:
            found[page.number] = preview(page.image, max_side)
        if len(found) == len(numbers):
            break
    return found


def decode_files(
    files: list[JobFile], spec: InputSpec, guard: DecodeGuard | None
) -> tuple[list[tuple[JobFile, DecodedFile]], list[DecodeFailure]]:
    """The job's unfinished files decoded; (decoded, failures). A file system fault (OSError) propagates:
    it is transient, and the task retries."""
    decoded: list[tuple[JobFile, DecodedFile]] = []
    failures: list[DecodeFailure] = []
    for job_file in files:
        if job_file.finished or job_file.repeat:
            continue
        result = _decode_guarded(job_file, spec, guard)
        if isinstance(result, DecodedFile):
            decoded.append((job_file, result))
        else:
            failures.append(DecodeFailure(job_file, result))
    return decoded, failures


def _decode_guarded(job_file: JobFile, spec: InputSpec, guard: DecodeGuard | None) -> DecodedFile | str:
    """One file decoded, or the reason it failed: unreadable, an unexpected decoder error, or content
    that killed the worker process ``MAX_DECODE_CRASHES`` times (dead-lettered)."""
    crashes = guard.start(job_file.sha256) if guard is not None else 0
    if crashes >= MAX_DECODE_CRASHES:
        metrics.error("poison")
        return dead_letter_reason(crashes)
    try:
        if job_file.path is None:
            raise UnreadableImage(job_file.filename, "file not found")
        return decode_file(job_file.path, spec)
    except UnreadableImage as exc:
        metrics.error("unreadable")
        return exc.reason
    except OSError:
        raise
    except Exception as exc:  # the decoder failed in a way it does not report itself: this file only
        metrics.error("decoder")
        log.exception("decode.unexpected_error", document_id=job_file.document_id, file=job_file.filename)
        return f"the decoder failed on this file ({type(exc).__name__}: {exc})"
    finally:
        if guard is not None:
            guard.finish(job_file.sha256)
