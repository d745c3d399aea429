"""Decoder faults injected into a worker process that runs with this folder on its PYTHONPATH.

- A file whose name holds ``poison-crash`` kills the decoding process with a segmentation fault the
  moment its pixels are loaded (by Pillow, or its bytes read for OpenCV's decoder), every time, as a
  broken codec would. Nothing in Python can catch it.
- A file whose name holds ``hang-forever`` blocks the soft time limit's signal and hangs while its
  pixels are loaded, as a codec stuck in a loop would: only the hard time limit ends it.
- A page 1999 pixels wide makes resizing it to the model's input raise ``MemoryError``: an error from
  outside the decoder's own handling.
"""

from __future__ import annotations

import ctypes
import os
import pathlib
import signal
import time
from typing import Any

import cv2
from PIL import ImageFile

_load = ImageFile.ImageFile.load
_read_bytes = pathlib.Path.read_bytes
_resize = cv2.resize


def _fault(name: str) -> None:
    if "poison-crash" in os.path.basename(name):
        ctypes.string_at(0)  # read address 0: SIGSEGV
    if "hang-forever" in os.path.basename(name):
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR1})  # Celery's soft time limit
        time.sleep(3600)


def _crashing_load(self: ImageFile.ImageFile) -> Any:
    _fault(str(getattr(self, "filename", "") or ""))
    return _load(self)


def _crashing_read_bytes(self: pathlib.Path) -> bytes:
    _fault(str(self))  # a plain grey PNG or a JPEG is read whole for OpenCV's decoder (worker.rasters)
    return _read_bytes(self)


def _raising_resize(src: Any, *args: Any, **kwargs: Any) -> Any:
    if getattr(src, "shape", (0, 0))[1] == 1999:
        raise MemoryError("cannot allocate the resized page")
    return _resize(src, *args, **kwargs)


ImageFile.ImageFile.load = _crashing_load  # type: ignore[method-assign]
pathlib.Path.read_bytes = _crashing_read_bytes  # type: ignore[method-assign]
cv2.resize = _raising_resize
