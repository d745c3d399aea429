"""Import TensorFlow quietly, with a bounded number of CPU threads and seeded randomness."""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from collections.abc import Iterator
from typing import Any


@contextlib.contextmanager
def _quiet_stderr(enabled: bool) -> Iterator[None]:
    """Silence the C++ start-up lines TensorFlow prints before its log level applies (fd 2 only)."""
    if not enabled:
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def import_tensorflow(threads: int | None = None, seed: int | None = None, deterministic: bool = True) -> Any:
    """Import and configure TensorFlow once per process; later calls only reseed.

    ``threads``: intra-op threads (default: ``DOCSORT_TF_THREADS`` or all cores); inter-op stays at 1
    so that one training run does not take more cores than asked.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    quiet = os.environ.get("TF_CPP_MIN_LOG_LEVEL", "0") >= "2" and "tensorflow" not in sys.modules
    with _quiet_stderr(quiet):
        import tensorflow as tf

        if not getattr(import_tensorflow, "_configured", False):
            _configure(tf, threads, deterministic)
            import_tensorflow._configured = True  # type: ignore[attr-defined]
        tf.constant(0)  # initialise the runtime (and its start-up messages) while stderr is quiet
    if seed is not None:
        import keras

        keras.utils.set_random_seed(seed)
    return tf


def _configure(tf: Any, threads: int | None, deterministic: bool) -> None:
    wanted = threads or int(os.environ.get("DOCSORT_TF_THREADS", "0") or 0) or (os.cpu_count() or 1)
    try:
        tf.config.threading.set_intra_op_parallelism_threads(wanted)
        tf.config.threading.set_inter_op_parallelism_threads(1)
    except RuntimeError:  # TensorFlow already ran an op in this process: its thread pools are fixed
        pass
    if deterministic:
        tf.config.experimental.enable_op_determinism()
    tf.get_logger().setLevel("ERROR")
    logging.getLogger("tf2onnx").setLevel(logging.WARNING)
