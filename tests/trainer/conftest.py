"""Trainer suites: TensorFlow quiet and small on a shared CPU (set before anything imports it)."""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("DOCSORT_TF_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")
