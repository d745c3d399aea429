"""Step 3 of a job: every page of every decoded file through the model as one batch."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from worker.decode import DecodedFile
from worker.inference import LoadedModel


@dataclass
class PageScores:
    probs: np.ndarray  # classes
    cam: np.ndarray | None  # h x w x classes
    latency_ms: float


def infer(model: LoadedModel, files: list[DecodedFile]) -> list[list[PageScores]]:
    """Scores per file, per page; the model runs its batches (:meth:`LoadedModel.run`)."""
    inputs = [p.model_input for f in files for p in f.pages]
    if not inputs:
        return [[] for _ in files]
    out = model.run(np.stack(inputs))
    per_page_ms = out.seconds * 1000.0 / len(inputs)
    result: list[list[PageScores]] = []
    index = 0
    for decoded in files:
        scores = []
        for _ in decoded.pages:
            cam = out.cam[index] if out.cam is not None else None
            scores.append(PageScores(out.probs[index], cam, per_page_ms))
            index += 1
        result.append(scores)
    return result
