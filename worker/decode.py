"""Step 2 of a job: decode every page of each file into the model's input, or fail the file with a reason.

One implementation of decoding serves training and serving (:mod:`worker.imaging`); this step adds the
job's concerns: files already finished are skipped, and a file whose decoding killed worker processes
:data:`~worker.poison.MAX_DECODE_CRASHES` times is dead-lettered instead of decoded again.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from PIL import Image

from schema.logs import get_logger
from schema.manifest import InputSpec
from worker import metrics
from worker.context import JobFile
from worker.imaging import PreparedPage, PreviewKeep, UnreadableImage, media_type_of, prepare_pages
from worker.limits import DecodeLimits
from worker.pixels import TIME_UP, preview_size
from worker.poison import MAX_DECODE_CRASHES, DecodeGuard, dead_letter_reason

log = get_logger(__name__)


@dataclass
class DecodedFile:
    path: Path
    media_type: str
    pages: list[PreparedPage]

    def kept_previews(self, numbers: set[int], side: int) -> dict[int, Callable[[], Image.Image]]:
        """{page number: what makes its preview (grey for a grey page) of longest side ``side``} for the
        pages ``numbers`` whose decode kept their pixels (:mod:`worker.kept`); the pages no longer hold
        them, whether asked for or not (a page routed automatically needs none): they live on only in
        what is returned."""
        previews: dict[int, Callable[[], Image.Image]] = {}
        for page in self.pages:
            if page.kept is not None and page.number in numbers:
                previews[page.number] = partial(
                    page.kept.preview, preview_size(side, page.width, page.height)
                )
            page.kept = None
        return previews


@dataclass(frozen=True)
class DecodeFailure:
    file: JobFile
    reason: str


def decode_file(
    path: Path,
    spec: InputSpec,
    preview_side: int | None = None,
    limits: DecodeLimits | None = None,
    keep: PreviewKeep | None = None,
) -> DecodedFile:
    """Every page of a file, each decoded once at the size needed (:func:`worker.imaging.prepare_pages`),
    ready for the model; with ``preview_side``, each page keeps a preview of that longest side; with
    ``keep``, the pixels of a review preview where the decode holds them. A page that cannot be decoded
    comes with its ``error`` (its document goes to review); a file that cannot be read raises
    UnreadableImage naming the reason."""
    media = media_type_of(path)
    pages = prepare_pages(path, spec, preview_side=preview_side, limits=limits, page_errors=True, keep=keep)
    return DecodedFile(Path(path), media, list(pages))


def decode_files(
    files: list[JobFile],
    spec: InputSpec,
    guard: DecodeGuard | None,
    limits: DecodeLimits | None = None,
    preview_side: Callable[[JobFile], int | None] | None = None,
    threads: int = 1,
    keep: PreviewKeep | None = None,
) -> tuple[list[tuple[JobFile, DecodedFile]], list[DecodeFailure]]:
    """The job's unfinished files decoded, in their order; (decoded, failures). With ``threads`` > 1,
    that many files are decoded at once (Pillow, OpenCV and the PDF render process work outside the
    GIL): for a process that has cores to itself and little else to do while it decodes. ``keep``
    (one per job: its byte budget is the job's) keeps review preview pixels (:mod:`worker.kept`). A
    file system fault (OSError) propagates: it is transient, and the task retries."""
    todo = [f for f in files if not (f.finished or f.repeat)]

    def one(job_file: JobFile) -> DecodedFile | str:
        side = preview_side(job_file) if preview_side is not None else None
        return _decode_guarded(job_file, spec, guard, limits, side, keep)

    if threads > 1 and len(todo) > 1:
        with ThreadPoolExecutor(max_workers=min(threads, len(todo)), thread_name_prefix="decode") as pool:
            results = list(pool.map(one, todo))
    else:
        results = [one(f) for f in todo]
    decoded: list[tuple[JobFile, DecodedFile]] = []
    failures: list[DecodeFailure] = []
    for job_file, result in zip(todo, results, strict=True):
        if isinstance(result, DecodedFile):
            decoded.append((job_file, result))
        else:
            failures.append(DecodeFailure(job_file, result))
    return decoded, failures


def _decode_guarded(
    job_file: JobFile,
    spec: InputSpec,
    guard: DecodeGuard | None,
    limits: DecodeLimits | None,
    preview_side: int | None,
    keep: PreviewKeep | None,
) -> DecodedFile | str:
    """One file decoded, or the reason it failed: unreadable, an unexpected decoder error, or content
    that killed the worker process ``MAX_DECODE_CRASHES`` times (dead-lettered)."""
    crashes = guard.start(job_file.sha256) if guard is not None else 0
    if crashes >= MAX_DECODE_CRASHES:
        metrics.error("poison")
        return dead_letter_reason(crashes)
    try:
        result = _decode_one(job_file, spec, limits, preview_side, keep)
    except Exception:  # the process lives on (a SystemExit from a kill at the time limit does not)
        if guard is not None:
            guard.finish(job_file.sha256)
        raise
    if guard is not None:
        guard.finish(job_file.sha256)
    return result


def _decode_one(
    job_file: JobFile,
    spec: InputSpec,
    limits: DecodeLimits | None,
    preview_side: int | None,
    keep: PreviewKeep | None,
) -> DecodedFile | str:
    try:
        if job_file.path is None:
            raise UnreadableImage(job_file.filename, "file not found")
        return decode_file(job_file.path, spec, preview_side, limits, keep)
    except UnreadableImage as exc:
        metrics.error("unreadable")
        return exc.reason
    except (OSError, *TIME_UP):
        raise
    except Exception as exc:  # the decoder failed in a way it does not report itself: this file only
        metrics.error("decoder")
        log.exception("decode.unexpected_error", document_id=job_file.document_id, file=job_file.filename)
        return f"the decoder failed on this file ({type(exc).__name__}: {exc})"
