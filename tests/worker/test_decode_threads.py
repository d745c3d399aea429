"""Decoding a job's files on several threads gives what decoding them one after another gives: the same
files in the same order, the same model inputs and previews, the same failures with their reasons."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from schema.manifest import InputSpec
from tests.support.worker import write_page
from worker.context import JobFile
from worker.decode import decode_files


def _files(tmp_path: Path) -> list[JobFile]:
    paths = [write_page(tmp_path / f"p{i}.{ext}", 30 * i, size=(300 + 7 * i, 400)) for i, ext in
             enumerate(["png", "jpg", "tif", "png", "pdf", "jpg"])]  # fmt: skip
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\nnot a picture")
    paths.insert(2, broken)
    files = [JobFile(i, f"{i:064x}", p.name, p, False) for i, p in enumerate(paths)]
    files.append(JobFile(99, "f" * 64, "gone.png", None, False))
    files.append(JobFile(100, "e" * 64, "done.png", paths[0], True))  # finished: not decoded again
    return files


def test_threads_decode_the_same_pages_in_the_same_order(tmp_path: Path) -> None:
    files = _files(tmp_path)
    spec = InputSpec(height=64, width=64)
    one = decode_files(files, spec, None, preview_side=lambda f: 200, threads=1)
    many = decode_files(files, spec, None, preview_side=lambda f: 200, threads=4)
    assert [f.document_id for f, _ in many[0]] == [f.document_id for f, _ in one[0]] == [0, 1, 3, 4, 5, 6]
    for (_, a), (_, b) in zip(one[0], many[0], strict=True):
        assert len(a.pages) == len(b.pages) == 1
        assert np.array_equal(a.pages[0].model_input, b.pages[0].model_input)
        assert a.pages[0].preview is not None and b.pages[0].preview is not None
        assert np.array_equal(np.asarray(a.pages[0].preview), np.asarray(b.pages[0].preview))
    assert [(f.file.document_id, f.reason) for f in many[1]] == [
        (f.file.document_id, f.reason) for f in one[1]
    ]
    assert [f.file.document_id for f in many[1]] == [2, 99]
    assert "file not found" in many[1][1].reason
