"""A worker process with this folder on its PYTHONPATH calls the quality hooks
(``tests/support/quality_hooks.py``)."""

from tests.support.quality_hooks import wire

wire()
