"""Sort unlabelled pages into clusters so that a person can name them and start a labelled set.

Embedding: the backbone's global-average-pooled features of the first page of each file.

- ``--model VERSION_DIR`` (the usual route, no TensorFlow): the version's exported ONNX model, with
  the feature map that feeds both ``probs`` and ``cam`` (found in the graph, see
  :mod:`trainer.onnx_parts`) exposed as an extra output in memory and pooled; the version folder is not
  changed. These are the features the classifier itself decides on.
- otherwise a Keras backbone (``vgg16``, ``xception``, ``small-cnn``) with ``--weights`` (``imagenet``,
  a weights file, or ``none``), pooled the same way; needs the ``train`` extra.

Features are standardised, reduced by PCA to at most 50 dimensions and clustered by k-means. The
output folder gets ``cluster_01/``… (largest first) holding copies (or hard links) of the files,
``cluster_01.png``… contact sheets (the pages nearest the cluster centre first), and
``clusters.json`` (each file's cluster and distance, and the unreadable files with the reason).
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw
from tqdm import tqdm

from schema.errors import DocsortError
from schema.files import visible_files
from schema.logs import get_logger
from worker.imaging import EXTENSIONS, ResizePolicy, UnreadableImage, iter_pages, to_model_input

log = get_logger(__name__)

Embedder = Callable[[np.ndarray], np.ndarray]  # uint8 N×H×W×3 pages → N×F features
THUMB = 128
SHEET_MAX = 48
SHEET_COLUMNS = 8
BATCH = 32


class ClusterError(DocsortError):
    """Pages cannot be clustered: empty or unusable input folder, bad k, output folder not empty."""


@dataclass
class ClusterResult:
    out_dir: Path
    files: list[Path]
    labels: np.ndarray  # 0-based cluster of each file, clusters numbered largest first
    distances: np.ndarray
    unreadable: list[dict[str, str]] = field(default_factory=list)

    def sizes(self) -> list[int]:
        return [int(n) for n in np.bincount(self.labels)]


def list_files(in_dir: Path) -> list[Path]:
    """Every non-hidden file under ``in_dir`` with an extension the worker reads."""
    if not in_dir.is_dir():
        raise ClusterError(f"{in_dir}: not a folder")
    return [p for p in visible_files(in_dir) if p.suffix.lower() in EXTENSIONS]


def first_page(path: Path, size: tuple[int, int], policy: ResizePolicy, pad: int) -> np.ndarray:
    for page in iter_pages(path):  # decodes the first page only
        return to_model_input(page.image, size, policy, pad)
    raise UnreadableImage(path, "no pages")


def embed_files(
    files: Sequence[Path],
    embed: Embedder,
    size: tuple[int, int],
    policy: ResizePolicy = "letterbox",
    pad: int = 255,
    progress: bool = True,
) -> tuple[list[Path], np.ndarray, list[dict[str, str]]]:
    """Features of each readable file's first page, batch by batch; unreadable files are listed."""

    def load(path: Path) -> tuple[Path, np.ndarray | None, str]:
        try:
            return path, first_page(path, size, policy, pad), ""
        except UnreadableImage as exc:
            return path, None, exc.reason

    kept: list[Path] = []
    chunks: list[np.ndarray] = []
    unreadable: list[dict[str, str]] = []
    with (
        ThreadPoolExecutor(max_workers=2) as pool,
        tqdm(total=len(files), desc="embed pages", disable=not progress, leave=False) as bar,
    ):
        for start in range(0, len(files), BATCH):
            batch = []
            for path, image, reason in pool.map(load, files[start : start + BATCH]):
                if image is None:
                    log.warning("unreadable_file_skipped", path=str(path), reason=reason)
                    unreadable.append({"path": str(path), "reason": reason})
                else:
                    kept.append(path)
                    batch.append(image)
            if batch:
                chunks.append(np.asarray(embed(np.stack(batch)), dtype=np.float64).reshape(len(batch), -1))
            bar.update(len(files[start : start + BATCH]))
    features = np.concatenate(chunks) if chunks else np.zeros((0, 0))
    return kept, features, unreadable


def kmeans(features: np.ndarray, k: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Cluster labels (largest cluster 0) and each row's distance to its centre, in the reduced space."""
    from sklearn.cluster import KMeans  # scikit-learn (the `train` extra): only when clustering
    from sklearn.decomposition import PCA

    if features.shape[0] < k:
        raise ClusterError(f"{features.shape[0]} readable pages cannot make {k} clusters")
    std = features.std(axis=0)
    keep = std > 1e-6 * max(float(std.max(initial=0.0)), 1e-12)
    if not keep.any():
        raise ClusterError("every page has the same features: nothing to cluster on")
    z = (features[:, keep] - features[:, keep].mean(axis=0)) / std[keep]
    dims = min(50, z.shape[1], z.shape[0])
    if dims < z.shape[1]:
        z = PCA(n_components=dims, random_state=seed).fit_transform(z)
    model = KMeans(n_clusters=k, n_init=10, random_state=seed).fit(z)
    raw = model.labels_
    distances = np.linalg.norm(z - model.cluster_centers_[raw], axis=1)
    by_size = np.argsort(-np.bincount(raw, minlength=k), kind="stable")
    renumber = np.empty(k, dtype=np.int64)
    renumber[by_size] = np.arange(k)
    return renumber[raw], distances


def _place(src: Path, dst: Path, link: bool) -> None:
    if link:
        try:
            os.link(src, dst)
            return
        except OSError:
            pass  # another file system: copy instead
    shutil.copy2(src, dst)


def _flat_name(path: Path, root: Path) -> str:
    return "__".join(path.relative_to(root).parts)


def contact_sheet(files: Sequence[Path], title: str, out: Path) -> Path:
    """A grid of thumbnails (first pages) with their file names, under a title."""
    shown = list(files)[:SHEET_MAX]
    cols = min(SHEET_COLUMNS, max(len(shown), 1))
    rows = max(1, -(-len(shown) // cols))
    cell_h = THUMB + 14
    sheet = Image.new("RGB", (cols * (THUMB + 6) + 6, rows * cell_h + 30), "white")
    draw = ImageDraw.Draw(sheet)
    draw.text((6, 8), title, fill="black")
    for i, path in enumerate(shown):
        x, y = 6 + (i % cols) * (THUMB + 6), 28 + (i // cols) * cell_h
        try:
            thumb = first_page(path, (THUMB, THUMB), "letterbox", 255)
            sheet.paste(Image.fromarray(thumb), (x, y))
        except UnreadableImage:
            draw.rectangle((x, y, x + THUMB, y + THUMB), outline="red")
        draw.rectangle((x, y, x + THUMB - 1, y + THUMB - 1), outline="#bbbbbb")
        draw.text((x, y + THUMB + 1), path.name[:22], fill="black")
    sheet.save(out)
    return out


def write_clusters(result: ClusterResult, in_dir: Path, link: bool = False, progress: bool = True) -> None:
    out = result.out_dir
    k = int(result.labels.max()) + 1 if result.labels.size else 0
    assignments = []
    for c in tqdm(range(k), desc="write clusters", disable=not progress, leave=False):
        members = np.flatnonzero(result.labels == c)
        members = members[np.argsort(result.distances[members], kind="stable")]
        folder = out / f"cluster_{c + 1:02d}"
        folder.mkdir(parents=True)
        for i in members:
            _place(result.files[i], folder / _flat_name(result.files[i], in_dir), link)
            assignments.append(
                {"file": str(result.files[i]), "cluster": folder.name, "distance": float(result.distances[i])}
            )
        paths = [result.files[i] for i in members]
        contact_sheet(
            paths, f"{folder.name}: {len(paths)} pages (nearest the centre first)", out / f"{folder.name}.png"
        )
    summary = {"k": k, "sizes": result.sizes(), "files": assignments, "unreadable": result.unreadable}
    (out / "clusters.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")


def prepare_out_dir(out_dir: Path, in_dir: Path) -> None:
    if out_dir.resolve() == in_dir.resolve() or in_dir.resolve() in out_dir.resolve().parents:
        raise ClusterError(f"{out_dir}: the output folder must not be inside the input folder {in_dir}")
    if out_dir.exists() and any(out_dir.iterdir()):
        raise ClusterError(f"{out_dir}: output folder is not empty; choose a new one")
    out_dir.mkdir(parents=True, exist_ok=True)


def cluster_folder(
    in_dir: Path | str,
    out_dir: Path | str,
    k: int,
    embedder: tuple[Embedder, tuple[int, int], ResizePolicy, int],
    *,
    seed: int = 0,
    link: bool = False,
    progress: bool = True,
) -> ClusterResult:
    """Embed, cluster and write ``out_dir``. ``embedder`` is (function, input size, resize, pad value)."""
    in_dir, out_dir = Path(in_dir), Path(out_dir)
    if k < 2:
        raise ClusterError(f"k must be at least 2, got {k}")
    files = list_files(in_dir)
    if not files:
        raise ClusterError(f"{in_dir}: no image or PDF files")
    prepare_out_dir(out_dir, in_dir)
    embed, size, policy, pad = embedder
    kept, features, unreadable = embed_files(files, embed, size, policy, pad, progress)
    labels, distances = kmeans(features, k, seed)
    result = ClusterResult(out_dir, kept, labels, distances, unreadable)
    write_clusters(result, in_dir, link, progress)
    log.info("clustered", pages=len(kept), k=k, sizes=result.sizes(), unreadable=len(unreadable))
    return result
