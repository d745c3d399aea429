"""The trainer's named exceptions (raised ``from`` their cause)."""

from __future__ import annotations

from schema.errors import DocsortError


class TrainerError(DocsortError):
    """Training data, options or a training run cannot be used; the message says what and why."""


class ExportParityError(TrainerError):
    """The exported ONNX model does not reproduce the Keras model's class scores within tolerance."""
