"""Step 5 of a job, for pages sent to review: the page image and its CAM's cell votes, for the review page.

A review page's image comes from the pixels its first decode kept (:mod:`worker.kept`: pages decoded
whole, within the job's budget). Any other review page (a JPEG or PDF page decoded at 1/8 for the model,
a page past the budget) is not decoded again here: its image is recorded where it will be, and the review
server makes it from the received file on first view, or ahead of the operators
(:mod:`review.originals`), so that a page sent to review costs the worker little more than one routed
automatically; only its votes are saved now. An audited page (:mod:`worker.audit`) is decoded again.
Names are stable, so a retried job overwrites instead of adding files. The page image is
``<sha256[:16]>-p<page>.jpg`` (JPEG, quality ``worker.cam.PAGE_JPEG_QUALITY``), recorded as the page's
``image_path``; the CAM's cell votes ``<sha256[:16]>-p<page>-<model>-<version>-cam.json`` (a few KB,
:func:`worker.cam.save_cam_cells`: the review page draws the map over the page image in the browser),
recorded as the decision's ``cam_path``. Earlier versions recorded a heat map PNG (``-heat.png``) with
its votes beside it (:func:`cam_cells_path`), and before that ``.png`` pages and ``-cam.png``
side-by-side composites; their recorded paths still serve.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from schema.logs import get_logger
from worker import metrics
from worker.cam import save_cam_cells, save_image
from worker.imaging import UnreadableImage, preview_pages
from worker.infer import PageScores
from worker.inference import LoadedModel
from worker.limits import DecodeLimits
from worker.pixels import preview_size

log = get_logger(__name__)


@dataclass(frozen=True)
class Explanation:
    image_path: Path
    cam_path: Path | None


def review_files(review_dir: Path, sha256: str, page_number: int, model: LoadedModel) -> tuple[Path, Path]:
    """Where a review page's image and its CAM's cell votes are saved (stable names: a retry overwrites)."""
    folder = review_dir / sha256[:2]
    stem = f"{sha256[:16]}-p{page_number}"
    return folder / f"{stem}.jpg", folder / f"{stem}-{model.name}-{model.version}-cam.json"


def explain_page(
    page: Image.Image | tuple[int, int],
    page_number: int,
    scores: PageScores,
    model: LoadedModel,
    review_dir: Path,
    sha256: str,
) -> Explanation:
    """Save one review page's image (``page``; or only its size, when the review server makes it
    later) and its CAM's cell votes (every class: the review page shows the predicted class and the
    runner-up)."""
    image_path, cam_path = review_files(review_dir, sha256, page_number, model)
    if isinstance(page, Image.Image):
        save_image(page, image_path)
    if scores.cam is None:
        return Explanation(image_path, None)
    names = list(model.manifest.class_names)
    size = page.size if isinstance(page, Image.Image) else page
    save_cam_cells(scores.cam, names, size, model.manifest.input, cam_path)
    return Explanation(image_path, cam_path)


def cam_cells_path(overlay: Path) -> Path:
    """Where earlier versions saved the cell votes of a recorded CAM overlay image: beside it."""
    return overlay.with_suffix(".json")


def explain_file(
    path: Path | None,
    sha256: str,
    pages: dict[int, PageScores],
    model: LoadedModel,
    review_dir: Path,
    max_side: int,
    limits: DecodeLimits | None = None,
    ready: dict[int, Callable[[], Image.Image]] | None = None,
    later: dict[int, tuple[int, int]] | None = None,
) -> dict[int, Explanation]:
    """Images for the review pages of one file ({page number: scores}); {page number: files}.
    ``ready`` makes previews of longest side ``max_side`` from what the first decode kept; the other pages
    are left to the review server when ``later`` gives their sizes ({page number: (width, height)}),
    else decoded again. One preview is held at a time."""
    explained: dict[int, Explanation] = {}
    for number, make in (ready or {}).items():
        if number in pages:
            explained[number] = explain_page(make(), number, pages[number], model, review_dir, sha256)
    missing = set(pages) - set(explained)
    if later is not None:
        for number in missing & set(later):
            size = preview_size(max_side, *later[number])  # the image the review server will make
            explained[number] = explain_page(size, number, pages[number], model, review_dir, sha256)
        missing -= set(later)
    if missing and path is not None:
        try:
            for number, image in preview_pages(path, missing, max_side, limits=limits):
                explained[number] = explain_page(image, number, pages[number], model, review_dir, sha256)
        except UnreadableImage as exc:  # it decoded a moment ago: the file changed under us
            metrics.error("review_image")
            log.error("review.image_failed", sha256=sha256, reason=exc.reason)
    return dict(sorted(explained.items()))
