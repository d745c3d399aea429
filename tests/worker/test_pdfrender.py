"""The PDF render process: the same pixels as rendering in-process, reused between files, replaced after a
failure, killed at the time limit, and never outliving the process that started it."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.faults.hostile_files import nested_xobject_pdf
from worker import pdfrender
from worker.imaging import PageTarget, UnreadableImage, prepare_pages
from worker.limits import DecodeLimits

ROOT = Path(__file__).resolve().parents[2]


def _pdf(path: Path, pages: int = 2) -> Path:
    rng = np.random.default_rng(3)
    images = [Image.fromarray(rng.integers(0, 256, (400, 300, 3), dtype=np.uint8)) for _ in range(pages)]
    images[0].save(path, "PDF", resolution=50.0, save_all=True, append_images=images[1:])
    return path


def _idle_pids() -> list[int]:
    return [child.proc.pid for child in pdfrender.POOL.idle]


@pytest.fixture(autouse=True)
def _fresh_pool() -> None:
    pdfrender.close_renderers()


def test_render_process_gives_the_pixels_of_rendering_in_process(tmp_path: Path) -> None:
    path = _pdf(tmp_path / "two.pdf")
    target = PageTarget(64, 48, preview_side=200)
    isolated = list(prepare_pages(path, target))
    local = list(prepare_pages(path, target, limits=DecodeLimits(pdf_isolated=False)))
    assert len(isolated) == len(local) == 2
    for a, b in zip(isolated, local, strict=True):
        assert np.array_equal(a.model_input, b.model_input)
        assert a.preview is not None and b.preview is not None
        assert np.array_equal(np.asarray(a.preview), np.asarray(b.preview))
        assert (a.width, a.height) == (b.width, b.height) == (300, 400)  # the scan's pixels, 50 dpi


def test_one_render_process_serves_file_after_file(tmp_path: Path) -> None:
    path = _pdf(tmp_path / "a.pdf")
    list(prepare_pages(path, PageTarget(32, 32)))
    (first,) = _idle_pids()
    list(prepare_pages(path, PageTarget(32, 32)))
    assert _idle_pids() == [first]


def test_a_corrupt_pdf_is_refused_and_the_process_kept(tmp_path: Path) -> None:
    good = _pdf(tmp_path / "good.pdf")
    list(prepare_pages(good, PageTarget(32, 32)))
    (pid,) = _idle_pids()
    bad = tmp_path / "bad.pdf"
    bad.write_bytes(good.read_bytes()[:300])
    with pytest.raises(UnreadableImage, match=r"bad\.pdf: .*PDF"):
        list(prepare_pages(bad, PageTarget(32, 32)))
    assert _idle_pids() == [pid]


def test_time_limit_kills_the_renderer_and_the_next_file_gets_a_new_one(tmp_path: Path) -> None:
    limits = DecodeLimits(pdf_page_timeout_s=0.5, pdf_render_memory_mb=4096)
    started = time.monotonic()
    with pytest.raises(UnreadableImage, match=r"nested\.pdf: PDF page 1 took longer than 0\.5 s to render"):
        list(prepare_pages(nested_xobject_pdf(tmp_path / "nested.pdf"), PageTarget(32, 32), limits=limits))
    assert time.monotonic() - started < 5
    assert _idle_pids() == []
    assert len(list(prepare_pages(_pdf(tmp_path / "ok.pdf"), PageTarget(32, 32), limits=limits))) == 2


def test_renderer_killed_between_pages_fails_the_file_with_the_reason(tmp_path: Path) -> None:
    path = _pdf(tmp_path / "three.pdf", pages=3)
    before = set(pdfrender.POOL.busy)
    pages = prepare_pages(path, PageTarget(32, 32))
    next(pages)
    (busy,) = set(pdfrender.POOL.busy) - before  # the process rendering this file
    os.kill(busy.proc.pid, signal.SIGKILL)
    with pytest.raises(
        UnreadableImage, match=r"three\.pdf: PDF page 2 stopped the renderer \(ended by signal SIGKILL\)"
    ):
        list(pages)
    assert len(list(prepare_pages(path, PageTarget(32, 32)))) == 3


def test_a_file_read_in_part_hands_the_renderer_back(tmp_path: Path) -> None:
    path = _pdf(tmp_path / "two.pdf")
    pages = prepare_pages(path, PageTarget(32, 32))
    next(pages)
    pages.close()
    assert len(_idle_pids()) == 1
    assert len(list(prepare_pages(path, PageTarget(32, 32)))) == 2


def test_a_renderer_holding_more_than_the_keep_limit_is_replaced(tmp_path: Path) -> None:
    path = _pdf(tmp_path / "two.pdf")
    list(prepare_pages(path, PageTarget(32, 32), limits=DecodeLimits(pdf_renderer_keep_mb=1)))
    assert _idle_pids() == []


def test_render_process_ends_when_the_process_that_started_it_is_killed(tmp_path: Path) -> None:
    path = _pdf(tmp_path / "one.pdf", pages=1)
    script = (
        "import sys, time\n"
        "from worker import pdfrender\n"
        "from worker.imaging import PageTarget, prepare_pages\n"
        "list(prepare_pages(sys.argv[1], PageTarget(16, 16)))\n"
        "print(pdfrender.POOL.idle[0].proc.pid, flush=True)\n"
        "time.sleep(60)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    parent = subprocess.Popen(
        [sys.executable, "-c", script, str(path)], stdout=subprocess.PIPE, env=env, text=True
    )
    assert parent.stdout is not None
    renderer = int(parent.stdout.readline())
    assert Path(f"/proc/{renderer}").exists()
    parent.kill()
    parent.wait()
    deadline = time.monotonic() + 10
    while _alive(renderer) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _alive(renderer), "the render process outlived its parent"


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_pdf_of_a_scan_reports_the_scan_resolution(tmp_path: Path) -> None:
    buf = io.BytesIO()
    Image.new("L", (1240, 1754), 255).save(buf, "PDF", resolution=150.0)
    path = tmp_path / "a4-150.pdf"
    path.write_bytes(buf.getvalue())
    (page,) = prepare_pages(path, PageTarget(32, 32))
    assert (page.width, page.height) == (1240, 1754)
