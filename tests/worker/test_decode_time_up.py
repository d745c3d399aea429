"""The task's time running out inside a decoder (Celery's soft time limit) is never a reason about the
file: it passes every decoder's catch-all to the task, which gives the job up saying so, instead of the
file being failed as a corrupt image."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from celery.exceptions import SoftTimeLimitExceeded
from PIL import Image, ImageFile

from schema.manifest import InputSpec
from worker.context import JobFile
from worker.decode import _decode_one
from worker.imaging import PageTarget, prepare_pages


@pytest.fixture
def slow_page(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "slow.png"
    Image.fromarray(np.full((80, 60, 3), 200, np.uint8)).save(path)  # colour: Pillow's decode
    load = ImageFile.ImageFile.load

    def time_up(self: ImageFile.ImageFile) -> Any:
        if str(getattr(self, "filename", "")).endswith("slow.png"):
            raise SoftTimeLimitExceeded()
        return load(self)

    monkeypatch.setattr(ImageFile.ImageFile, "load", time_up)
    return path


@pytest.mark.parametrize("page_errors", [False, True])
def test_the_soft_time_limit_passes_the_decoders_catch_alls(slow_page: Path, page_errors: bool) -> None:
    with pytest.raises(SoftTimeLimitExceeded):
        list(prepare_pages(slow_page, PageTarget(32, 32), page_errors=page_errors))


def test_a_file_is_not_failed_when_the_time_runs_out_decoding_it(slow_page: Path) -> None:
    job_file = JobFile(1, "ab" * 32, slow_page.name, slow_page, False)
    with pytest.raises(SoftTimeLimitExceeded):
        _decode_one(job_file, InputSpec(height=32, width=32), None, None, None)
