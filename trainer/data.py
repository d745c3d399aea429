"""Training data: a folder with one subfolder per class, split by seed, decoded once into uint8 arrays.

Decoding and resizing go through :mod:`worker.imaging` (the worker's own code), so training and serving
see the same pixels. Each page of a multi-page file (TIFF, GIF, PDF) is one example with the folder's
label; all pages of a file stay in the same split, so no document is both trained on and validated on.
Unreadable files are listed and skipped, never fatal.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from schema.files import save_npz, visible_files, write_atomic
from schema.logs import get_logger
from trainer.errors import TrainerError
from trainer.recipe import Recipe, TrainOptions
from worker.imaging import ResizePolicy, UnreadableImage, load_model_inputs

log = get_logger(__name__)
CACHE_FORMAT = 1


@dataclass(frozen=True)
class LabelledFile:
    path: Path
    label: int


@dataclass(frozen=True)
class FolderScan:
    root: Path
    class_names: list[str]
    files: list[LabelledFile]

    def counts(self) -> dict[str, int]:
        out = dict.fromkeys(self.class_names, 0)
        for item in self.files:
            out[self.class_names[item.label]] += 1
        return out


@dataclass(frozen=True)
class Split:
    train: list[LabelledFile]
    val: list[LabelledFile]
    test: list[LabelledFile] = field(default_factory=list)


@dataclass
class Examples:
    """Decoded examples: ``images`` uint8 N×H×W×3 as :func:`worker.imaging.to_model_input` gives them."""

    images: np.ndarray
    labels: np.ndarray
    sources: list[str]  # file path per example
    pages: list[int]  # 1-based page number per example
    unreadable: list[dict[str, str]] = field(default_factory=list)

    def __len__(self) -> int:
        return int(self.labels.shape[0])


def scan_folder(data_dir: Path | str, class_names: Sequence[str] | None = None) -> FolderScan:
    """Every non-hidden file under ``data_dir/<class>/`` (recursively), labelled by its class folder.

    ``class_names`` fixes the label order (e.g. a model's); by default the sorted subfolder names.
    """
    root = Path(data_dir)
    if not root.is_dir():
        raise TrainerError(f"{root}: not a folder (expected one subfolder per class)")
    found = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    names = list(class_names) if class_names is not None else found
    if class_names is None and len(names) < 2:
        raise TrainerError(f"{root}: needs at least two class subfolders, found {found or 'none'}")
    unknown = sorted(set(found) - set(names))
    if unknown:
        raise TrainerError(f"{root}: subfolders {unknown} are not classes of the model ({names})")
    files: list[LabelledFile] = []
    for label, name in enumerate(names):
        folder = root / name
        if not folder.is_dir():
            continue
        files.extend(LabelledFile(path, label) for path in visible_files(folder))
    if not files:
        raise TrainerError(f"{root}: no files in the class subfolders {names}")
    return FolderScan(root, names, files)


def split_files(files: Sequence[LabelledFile], val_fraction: float, test_fraction: float, seed: int) -> Split:
    """A stratified split by file: each class is shuffled by ``seed`` and cut into val, test and train.

    The result depends only on the file paths, labels, fractions and seed (not on listing order).
    """
    if not 0.0 < val_fraction < 1.0 or not 0.0 <= test_fraction < 1.0 or val_fraction + test_fraction >= 1:
        raise TrainerError(f"bad split fractions: validation {val_fraction}, test {test_fraction}")
    rng = np.random.default_rng(seed)
    train: list[LabelledFile] = []
    val: list[LabelledFile] = []
    test: list[LabelledFile] = []
    for label in sorted({f.label for f in files}):
        group = sorted((f for f in files if f.label == label), key=lambda f: str(f.path))
        order = rng.permutation(len(group))
        n_val = max(1, round(len(group) * val_fraction)) if len(group) >= 2 else 0
        n_test = round(len(group) * test_fraction) if len(group) - n_val >= 2 else 0
        picked = [group[i] for i in order]
        val += picked[:n_val]
        test += picked[n_val : n_val + n_test]
        train += picked[n_val + n_test :]
    key = lambda f: str(f.path)  # noqa: E731
    return Split(sorted(train, key=key), sorted(val, key=key), sorted(test, key=key))


def _decode_one(item: LabelledFile, size: tuple[int, int], policy: ResizePolicy, pad_value: int):
    try:
        return item, load_model_inputs(item.path, size, policy, pad_value), None
    except UnreadableImage as exc:
        return item, [], exc.reason


def decode_examples(
    files: Sequence[LabelledFile],
    size: tuple[int, int],
    policy: ResizePolicy = "letterbox",
    pad_value: int = 255,
    *,
    threads: int = 2,
    desc: str = "decode",
    progress: bool = True,
) -> Examples:
    """Decode every page of every file once into a uint8 array (the cache that training epochs read)."""
    images: list[np.ndarray] = []
    labels: list[int] = []
    sources: list[str] = []
    pages: list[int] = []
    unreadable: list[dict[str, str]] = []
    with ThreadPoolExecutor(max_workers=max(1, threads)) as pool:
        results = pool.map(lambda f: _decode_one(f, size, policy, pad_value), files)
        for item, arrays, reason in tqdm(
            results, total=len(files), desc=desc, disable=not progress, leave=False
        ):
            if reason is not None:
                log.warning("unreadable_file_skipped", path=str(item.path), reason=reason)
                unreadable.append({"path": str(item.path), "reason": reason})
                continue
            for number, arr in enumerate(arrays, start=1):
                images.append(arr)
                labels.append(item.label)
                sources.append(str(item.path))
                pages.append(number)
    stacked = np.stack(images) if images else np.zeros((0, size[0], size[1], 3), np.uint8)
    return Examples(stacked, np.asarray(labels, np.int64), sources, pages, unreadable)


def cache_key(files: Sequence[LabelledFile], size: tuple[int, int], policy: str, pad_value: int) -> str:
    """A digest of what decoding depends on: file paths, labels, sizes, mtimes and the input spec."""
    digest = hashlib.sha256(f"{CACHE_FORMAT}|{size}|{policy}|{pad_value}".encode())
    for item in files:
        stat = item.path.stat() if item.path.exists() else None
        digest.update(
            f"{item.path}|{item.label}|{stat and stat.st_size}|{stat and stat.st_mtime_ns}\n".encode()
        )
    return digest.hexdigest()[:24]


def decode_cached(
    files: Sequence[LabelledFile],
    size: tuple[int, int],
    policy: ResizePolicy,
    pad_value: int,
    cache_dir: Path | None,
    **kwargs,
) -> Examples:
    """:func:`decode_examples`, reusing an ``.npz`` in ``cache_dir`` when the files are unchanged."""
    if cache_dir is None:
        return decode_examples(files, size, policy, pad_value, **kwargs)
    cache_dir.mkdir(parents=True, exist_ok=True)
    path = cache_dir / f"examples-{cache_key(files, size, policy, pad_value)}.npz"
    if path.is_file():
        with np.load(path, allow_pickle=False) as npz:
            meta = json.loads(str(npz["meta"]))
            log.info("decode_cache_hit", path=str(path))
            return Examples(npz["images"], npz["labels"], meta["sources"], meta["pages"], meta["unreadable"])
    examples = decode_examples(files, size, policy, pad_value, **kwargs)
    meta = {"sources": examples.sources, "pages": examples.pages, "unreadable": examples.unreadable}
    arrays = {"images": examples.images, "labels": examples.labels, "meta": np.asarray(json.dumps(meta))}
    write_atomic(path, lambda tmp: save_npz(tmp, arrays))
    return examples


def class_weights(labels: np.ndarray, n_classes: int) -> dict[int, float]:
    """Balanced weights n / (classes × count): each class contributes equally to the loss."""
    counts = np.bincount(labels, minlength=n_classes).astype(np.float64)
    total = counts.sum()
    return {i: float(total / (n_classes * c)) if c else 0.0 for i, c in enumerate(counts)}


@dataclass
class PreparedData:
    scan: FolderScan
    split: Split
    train: Examples
    val: Examples
    test: Examples | None

    @property
    def unreadable(self) -> list[dict[str, str]]:
        parts = [self.train, self.val] + ([self.test] if self.test is not None else [])
        return [u for part in parts for u in part.unreadable]


def prepare_data(opts: TrainOptions, recipe: Recipe) -> PreparedData:
    """Scan, split by seed and decode every page once (through worker.imaging) into uint8 arrays."""
    scan = scan_folder(opts.data_dir)
    split = split_files(scan.files, opts.val_fraction, opts.test_fraction, opts.seed)
    size = (recipe.image_size, recipe.image_size)

    def decode(files, desc):
        return decode_cached(files, size, opts.resize, 255, opts.cache_dir, desc=desc, progress=opts.progress)

    train, val = decode(split.train, "decode train"), decode(split.val, "decode validation")
    test = decode(split.test, "decode test") if split.test else None
    for part, examples in (("training", train), ("validation", val)):
        present = set(np.unique(examples.labels).tolist())
        missing = [n for i, n in enumerate(scan.class_names) if i not in present]
        if missing:
            raise TrainerError(f"{opts.data_dir}: no readable {part} examples of class(es) {missing}")
    return PreparedData(scan, split, train, val, test)
