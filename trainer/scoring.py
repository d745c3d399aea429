"""Run a version's ONNX model over a labelled folder's training or validation split (no TensorFlow).

The split is the trainer's own (:func:`trainer.data.split_files` with the seed and fractions the
manifest records), so "validation images" here are the pages the model was validated on, and
"training images" are pages it was trained on. Pages go through :mod:`worker.imaging` with the
manifest's input spec, as on a worker.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from schema.logs import get_logger
from schema.manifest import ModelManifest
from trainer.data import Examples, LabelledFile, decode_examples, scan_folder, split_files
from trainer.errors import TrainerError

log = get_logger(__name__)

DEFAULT_VAL_FRACTION = 0.2
DEFAULT_SEED = 42
SPLIT_FILE = (
    "split.json"  # written by trainer.publish: seed, fractions, train/val/test paths per class folder
)


def version_split(
    manifest: ModelManifest, data_dir: Path, report_dir: Path | None = None
) -> tuple[list[LabelledFile], list[LabelledFile]]:
    """(training files, validation files) of ``data_dir`` as the trainer split them for this version:
    the lists in ``report/split.json`` when there is one, else the split made again from the seed."""
    if report_dir is not None and (report_dir / SPLIT_FILE).is_file():
        return _recorded_split(manifest, data_dir, report_dir / SPLIT_FILE)
    info = manifest.training
    val_fraction = info.val_fraction or DEFAULT_VAL_FRACTION
    seed = info.split_seed if info.val_fraction else DEFAULT_SEED
    if not info.val_fraction:
        log.warning("split_not_recorded", using_val_fraction=val_fraction, using_seed=seed)
    scan = scan_folder(data_dir, manifest.class_names)
    split = split_files(scan.files, val_fraction, info.test_fraction, seed)
    return split.train, split.val


def _recorded_split(
    manifest: ModelManifest, data_dir: Path, path: Path
) -> tuple[list[LabelledFile], list[LabelledFile]]:
    try:
        recorded = json.loads(path.read_text(encoding="utf-8"))
        parts = [[Path(p) for p in recorded[part]] for part in ("train", "val")]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise TrainerError(f"{path}: unreadable split record ({exc})") from exc
    index = {name: i for i, name in enumerate(manifest.class_names)}
    out: list[list[LabelledFile]] = []
    for files in parts:
        labelled = [LabelledFile(Path(data_dir) / p, index[p.parts[0]]) for p in files if p.parts[0] in index]
        if len(labelled) != len(files):
            raise TrainerError(f"{path}: files outside the class folders {manifest.class_names}")
        out.append(labelled)
    missing = [f.path for f in out[1] if not f.path.exists()]
    if missing:
        raise TrainerError(
            f"{data_dir}: {len(missing)} validation files of this version are missing, e.g. {missing[0]}"
        )
    return out[0], out[1]


def decode_for(
    manifest: ModelManifest, files: list[LabelledFile], desc: str, progress: bool = True
) -> Examples:
    spec = manifest.input
    return decode_examples(
        files, (spec.height, spec.width), spec.resize, spec.pad_value, desc=desc, progress=progress
    )


def sample_files(files: list[LabelledFile], n: int, seed: int) -> list[LabelledFile]:
    """Up to ``n`` of ``files``, drawn at random by ``seed`` (so roughly in proportion to each class)."""
    if len(files) <= n:
        return list(files)
    rng = np.random.default_rng(seed)
    picked = sorted(rng.choice(len(files), size=n, replace=False))
    return [files[i] for i in picked]
