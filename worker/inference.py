"""Inference: one ONNX Runtime session per process over a model version folder.

The session is made in the process that uses it (after Celery's fork), warmed up with one blank batch,
on the CUDA execution provider when asked for and present, CPU otherwise; the log says which.

Two rules here are shared with the trainer, which imports them so that thresholds are fitted on the
numbers a worker computes: :func:`prepare_input` (uint8 pages to the graph's input) and
:func:`apply_temperature` (the manifest's temperature on the graph's ``probs``).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from schema.errors import ModelIncompatible
from schema.logs import get_logger
from schema.manifest import InputSpec, ModelManifest, load_manifest
from worker.settings import Provider

log = get_logger(__name__)

CPU = "CPUExecutionProvider"
CUDA = "CUDAExecutionProvider"
PROB_FLOOR = 1e-12  # probabilities are floored here before the log of temperature scaling


def choose_providers(wanted: Provider, available: list[str]) -> list[str]:
    """ONNX Runtime providers for ``wanted``: CUDA first when asked for (or ``auto``) and present."""
    if wanted in ("cuda", "auto") and CUDA in available:
        return [CUDA, CPU]
    if wanted == "cuda":
        log.warning("inference.cuda_unavailable", available=available, using=CPU)
    return [CPU]


@dataclass(frozen=True)
class BatchOutput:
    probs: np.ndarray  # N x classes, temperature applied
    cam: np.ndarray | None  # N x h x w x classes, or None if the graph has no CAM output
    seconds: float


def softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """Row-wise ``softmax(logits / T)`` in float64."""
    z = np.asarray(logits, dtype=np.float64) / float(temperature)
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)  # type: ignore[no-any-return]


def apply_temperature(probs: np.ndarray, temperature: float) -> np.ndarray:
    """Calibrated probabilities ``softmax(logits / T)`` computed from the graph's ``softmax(logits)``.

    ``log(p)`` differs from the logits by one constant per row, which softmax ignores; probabilities
    are floored at :data:`PROB_FLOOR` before the log.
    """
    return softmax(np.log(np.clip(np.asarray(probs, dtype=np.float64), PROB_FLOOR, 1.0)), temperature)


def prepare_input(images: np.ndarray, spec: InputSpec) -> np.ndarray:
    """uint8 N×H×W×3 pages to the graph's input: grey when it takes one channel, its dtype."""
    batch = images.mean(axis=3, keepdims=True) if spec.channels == 1 else images
    return batch.astype(np.uint8 if spec.dtype == "uint8" else np.float32, copy=False)


class LoadedModel:
    """A model version folder with its ONNX Runtime session."""

    def __init__(
        self, version_dir: Path, provider: Provider = "cpu", threads: int = 0, batch_size: int = 32
    ) -> None:
        import onnxruntime as ort  # heavy (0.1 s): only where a session is made; the shared rules stay light

        self.version_dir = Path(version_dir)
        self.manifest: ModelManifest = load_manifest(self.version_dir)
        self.batch_size = batch_size
        model_file = self.manifest.model_file(self.version_dir)
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or max(1, os.cpu_count() or 1)
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        providers = choose_providers(provider, ort.get_available_providers())
        try:
            self.session = ort.InferenceSession(str(model_file), sess_options=options, providers=providers)
        except Exception as exc:  # onnxruntime raises its own non-exported exception types
            raise ModelIncompatible(f"{model_file}: ONNX Runtime cannot load it ({exc})") from exc
        self.provider = self.session.get_providers()[0]
        self._check_graph()
        log.info(
            "inference.session",
            model=self.name,
            version=self.version,
            provider=self.provider,
            threads=options.intra_op_num_threads,
            pid=os.getpid(),
        )

    @property
    def name(self) -> str:
        return self.manifest.name

    @property
    def version(self) -> str:
        return self.manifest.version

    @property
    def input_size(self) -> tuple[int, int]:
        return self.manifest.input.height, self.manifest.input.width

    def _check_graph(self) -> None:
        inputs = self.session.get_inputs()
        if len(inputs) != 1:
            raise ModelIncompatible(f"{self.version_dir}: the graph has {len(inputs)} inputs, expected 1")
        self.input_name = inputs[0].name
        outputs = {o.name for o in self.session.get_outputs()}
        probs_name = self.manifest.outputs.get("probs", "probs")
        if probs_name not in outputs:
            raise ModelIncompatible(f"{self.version_dir}: the graph has no {probs_name!r} output")
        self.probs_name = probs_name
        cam_name = self.manifest.outputs.get("cam", "cam")
        self.cam_name: str | None = cam_name if cam_name in outputs else None

    def run(self, images: np.ndarray) -> BatchOutput:
        """Class probabilities (and CAM) for N uint8 HxWx3 images, in chunks of ``batch_size``."""
        if images.ndim != 4 or images.shape[1:3] != self.input_size:
            raise ModelIncompatible(f"input batch {images.shape} does not match {self.input_size}")
        started = time.perf_counter()
        probs: list[np.ndarray] = []
        cams: list[np.ndarray] = []
        names = [self.probs_name] + ([self.cam_name] if self.cam_name else [])
        for start in range(0, images.shape[0], self.batch_size):
            chunk = prepare_input(images[start : start + self.batch_size], self.manifest.input)
            out: list[Any] = self.session.run(names, {self.input_name: chunk})
            probs.append(np.asarray(out[0]))
            if self.cam_name:
                cams.append(np.asarray(out[1]))
        p = apply_temperature(np.concatenate(probs), self.manifest.temperature)
        n_classes = len(self.manifest.class_names)
        if p.shape != (images.shape[0], n_classes):
            raise ModelIncompatible(f"{self.version_dir}: probs shape {p.shape}, expected (N, {n_classes})")
        cam = np.concatenate(cams) if cams else None
        return BatchOutput(p, cam, time.perf_counter() - started)

    def warm_up(self) -> float:
        """Run one blank page so the first real task does not pay for lazy initialisation."""
        h, w = self.input_size
        out = self.run(np.full((1, h, w, 3), 255, dtype=np.uint8))
        return out.seconds


def load_model(
    version_dir: Path, provider: Provider = "cpu", threads: int = 0, batch_size: int = 32
) -> LoadedModel:
    model = LoadedModel(version_dir, provider, threads, batch_size)
    seconds = model.warm_up()
    log.info("inference.warm", model=model.name, version=model.version, seconds=round(seconds, 3))
    return model
