"""Run the worker's decode on one file and report, as one JSON line, what it took.

``python -m tests.faults.decode_probe FILE [JSON_LIMITS] [PREVIEW_SIDE]`` decodes every page with
:func:`worker.imaging.prepare_pages` for a 224 px model, keeping each page's model input (as the worker
does until its batch is classified) and dropping each preview once made (previews are streamed). It
prints ``{"baseline_kb", "peak_kb", "pages", "refused", "seconds", "renderer_kb", "renderer_after_kb"}``:
this process's resident set after imports and at its peak, the largest render process's peak, and the
resident set of the render process kept for the next file (0 when none is kept). The parent reads this
process's own peak from ``os.wait4`` as well (the kernel's count, native allocations included).
"""

from __future__ import annotations

import json
import resource
import sys
import time

from worker import pdfrender
from worker.imaging import PageTarget, UnreadableImage, prepare_pages
from worker.limits import DecodeLimits


def _status_kb(field: str) -> int:
    with open("/proc/self/status", encoding="ascii") as fh:
        line = next(x for x in fh if x.startswith(f"{field}:"))
    return int(line.split()[1])


def main(path: str, limits_json: str = "{}", preview_side: str = "0") -> None:
    limits = DecodeLimits(**json.loads(limits_json))
    target = PageTarget(224, 224, preview_side=int(preview_side) or None)
    baseline = _status_kb("VmRSS")
    started = time.perf_counter()
    kept = []
    try:
        for page in prepare_pages(path, target, limits=limits):
            kept.append(page.model_input)
        pages, refused = len(kept), None
    except UnreadableImage as exc:
        pages, refused = 0, str(exc)
    seconds = time.perf_counter() - started
    peak = _status_kb("VmHWM")
    after = _status_kb("VmRSS")
    kept = max((child.rss_mb() for child in pdfrender.POOL.idle), default=0.0)
    pdfrender.close_renderers()  # reaps them: their peaks count in RUSAGE_CHILDREN
    renderer = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    report = {
        "baseline_kb": baseline,
        "peak_kb": peak,
        "pages": pages,
        "refused": refused,
        "seconds": seconds,
        "renderer_kb": renderer,
        "renderer_after_kb": round(kept * 1024),
        "after_kb": after,
    }
    print(json.dumps(report))


if __name__ == "__main__":
    main(*sys.argv[1:])
