"""The default page recipe's CAM points at what decides: trained on composite pages, its class map's
peak lies inside the pasted region far more often than chance (see docs/review.md for the rates)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from trainer.pointing import SIZE, composite_pages, measure

pytestmark = pytest.mark.slow
CHANCE = 0.11  # the share of the page a pasted region covers on average (20-45 % of each side)


def test_composite_pages_know_their_deciding_region() -> None:
    pages = composite_pages(5, seed=3)
    assert pages.images.shape == (15, SIZE, SIZE, 3)
    text = pages.labels == 0
    assert (pages.boxes[text] == -1).all() and (pages.boxes[~text] >= 0).all()
    sides = np.stack(
        [pages.boxes[~text, 2] - pages.boxes[~text, 0], pages.boxes[~text, 3] - pages.boxes[~text, 1]]
    )
    assert sides.min() >= 0.2 * SIZE and sides.max() <= 0.45 * SIZE + 1


def test_the_default_recipes_class_map_points_inside_the_deciding_region(artifacts_dir: Path) -> None:
    result = measure(seed=0)
    assert result.cam_shape[0] >= 8 and result.cam_shape[1] >= 8
    assert result.accuracy >= 0.9
    report = {
        "seed": result.seed,
        "cam_shape": result.cam_shape,
        "accuracy": result.accuracy,
        "pointing_rate": result.rate,
        "per_class": result.rate_per_class,
        "pages": result.pages,
    }
    (artifacts_dir / "review_pointing.json").write_text(json.dumps(report, indent=2))
    # Measured 0.46, 0.69, 0.70 for seeds 0, 1, 2: far above chance, short of the 0.9 target (docs/review.md)
    assert result.rate >= 3 * CHANCE, report
