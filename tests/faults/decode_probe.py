"""Run the worker's decode step on one file and report, as one JSON line, the memory it took.

``python -m tests.faults.decode_probe FILE`` prints ``{"baseline_kb", "pages", "refused"}``; the parent
reads this process's peak resident set from ``os.wait4`` (what the kernel measured, every allocation
counted, native ones too).
"""

from __future__ import annotations

import json
import resource
import sys
from pathlib import Path

from schema.manifest import InputSpec
from worker.decode import decode_file
from worker.imaging import UnreadableImage


def main(path: str) -> None:
    baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    spec = InputSpec(height=224, width=224)
    try:
        doc = decode_file(Path(path), spec)
        pages, refused = len(doc.pages), None
    except UnreadableImage as exc:
        pages, refused = 0, exc.reason
    print(json.dumps({"baseline_kb": baseline, "pages": pages, "refused": refused}))


if __name__ == "__main__":
    main(sys.argv[1])
