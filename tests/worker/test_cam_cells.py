"""The CAM's cell votes: a fixed 0..1 scale (never stretched per page), cropped to the page, saved small."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from schema.manifest import InputSpec
from worker.cam import cell_votes, save_cam_cells

SPEC = InputSpec(height=64, width=64, resize="stretch")


def test_weak_evidence_stays_weak_and_strong_evidence_points_at_its_cell() -> None:
    weak = np.random.default_rng(0).normal(0.0, 0.01, (8, 8, 3))
    votes = cell_votes(weak, (600, 800), SPEC)
    assert votes.shape == (8, 8, 3)
    assert np.allclose(votes.sum(axis=2), 1.0)
    assert votes.max() < 0.36  # about 1/3 everywhere: nothing is painted as a hot spot
    strong = weak.copy()
    strong[5, 2, 1] = 6.0
    votes = cell_votes(strong, (600, 800), SPEC)
    assert np.unravel_index(np.argmax(votes[:, :, 1]), (8, 8)) == (5, 2) and votes[5, 2, 1] > 0.99
    assert votes[0, 0, 1] < 0.36  # the other cells keep their own (low) value: no per-page stretch


def test_letterboxed_maps_keep_only_the_cells_over_the_page(tmp_path: Path) -> None:
    cam = np.zeros((8, 8, 2))
    spec = InputSpec(height=64, width=64, resize="letterbox")
    path = save_cam_cells(cam, ["text", "photo"], (400, 200), spec, tmp_path / "p-cam.json")  # wide page
    data = json.loads(path.read_text())
    assert (data["rows"], data["cols"]) == (4, 8)  # rows 2..5 hold the page
    assert set(data["votes"]) == {"text", "photo"} and data["votes"]["text"][0][0] == 0.5
    assert path.stat().st_size < 4000
