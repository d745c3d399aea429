"""A4 pages for the benchmarks (``--a4``): the scan mix of :mod:`docsort.synth_a4_files` at 300 dpi
(colour JPEG, bilevel G4 TIFF, greyscale PNG, image PDF, in equal shares), made once per number of pages
and seed and kept in the temporary folder, so that runs after the first reuse the same files."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from docsort.synth_a4_files import A4Options, generate_a4


def a4_folder(pages: int, seed: int = 0, root: Path | None = None) -> Path:
    """The folder of ``pages`` A4 page files (one page each, one subfolder per class), made if missing."""
    base = root or Path(tempfile.gettempdir())
    folder = base / f"docsort-bench-a4-{pages}-{seed}"
    if (folder / "truth.json").is_file():
        return folder
    part = base / f".{folder.name}.{os.getpid()}.part"
    shutil.rmtree(part, ignore_errors=True)
    generate_a4(part, A4Options(pages=pages, seed=seed), part / "truth.json", progress=True)
    shutil.rmtree(folder, ignore_errors=True)
    os.replace(part, folder)
    return folder
