"""Drift of live pages against the stored validation pages: KS, PSI and the review rate, with verdicts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from schema.manifest import load_manifest
from schema.settings import DocsortSettings
from tests.support.quality import register_version, route_document, two_class_probs
from tests.support.review import sessions_for
from tests.support.tiny_model import make_tiny_model
from trainer.calibration import save_scores
from worker.decide import Policy
from worker.drift import (
    ALPHA,
    DRIFT,
    MIN_PAGES,
    OK,
    TOO_FEW,
    WATCH,
    compare,
    drift_by_day,
    drift_report,
    psi,
)
from worker.validation_scores import Reference, ValidationScoresUnavailable, reference

NAMES = ["dark", "light"]
POLICY = Policy(confidence=0.9, margin=0.0, per_class={})
NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def _ref(probs: np.ndarray) -> Reference:
    return Reference(probs, probs.argmax(axis=1), NAMES, Path("ref"))


def _verdicts(live: np.ndarray, ref: np.ndarray) -> dict[str, str]:
    stats, _ = compare(live, _ref(ref), POLICY)
    return {s.key: s.verdict for s in stats}


def test_psi_of_known_shares() -> None:
    assert psi(np.array([0.5, 0.5]), np.array([0.5, 0.5])) == 0.0
    expected = (0.7 - 0.5) * np.log(0.7 / 0.5) + (0.3 - 0.5) * np.log(0.3 / 0.5)
    assert psi(np.array([0.7, 0.3]), np.array([0.5, 0.5])) == pytest.approx(expected)
    assert np.isfinite(psi(np.array([1.0, 0.0]), np.array([0.5, 0.5])))  # an empty class is floored


def test_same_distribution_is_ok_and_each_kind_of_shift_is_found() -> None:
    rng = np.random.default_rng(1)
    ref = two_class_probs(rng, 4000)
    assert _verdicts(two_class_probs(rng, 1500), ref) == {"ks": OK, "psi": OK, "review_rate": OK}
    unsure = _verdicts(two_class_probs(rng, 1500, shift=0.08), ref)  # less confident pages
    assert unsure["ks"] == DRIFT and unsure["review_rate"] == DRIFT and unsure["psi"] == OK
    mix = _verdicts(two_class_probs(rng, 1500, mix=0.85), ref)  # mostly one class now
    assert mix["psi"] == DRIFT and mix["ks"] == OK
    slight = _verdicts(two_class_probs(rng, 1500, mix=0.7), ref)
    assert slight["psi"] == WATCH
    few = _verdicts(two_class_probs(rng, MIN_PAGES - 1, shift=0.3), ref)
    assert set(few.values()) == {TOO_FEW}


def test_ks_false_alarms_stay_near_alpha_over_many_samples() -> None:
    rng = np.random.default_rng(7)
    ref = two_class_probs(rng, 3000)
    runs = 300
    alarms = sum(_verdicts(two_class_probs(rng, 300), ref)["ks"] == DRIFT for _ in range(runs))
    assert alarms <= runs * ALPHA + 3 * np.sqrt(runs * ALPHA * (1 - ALPHA)), alarms


def test_reference_is_the_stored_validation_scores_at_the_version_temperature(tmp_path: Path) -> None:
    folder = make_tiny_model(tmp_path / "models")
    with pytest.raises(ValidationScoresUnavailable, match="no stored validation scores"):
        reference(folder, load_manifest(folder))
    rng = np.random.default_rng(3)
    probs = two_class_probs(rng, 200)
    save_scores(folder / "report", np.log(probs), probs.argmax(axis=1), NAMES)  # as the trainer writes it
    manifest = load_manifest(folder)
    ref = reference(folder, manifest)
    assert np.allclose(ref.probs, probs, atol=1e-6) and ref.class_names == NAMES
    hotter = reference(folder, manifest.model_copy(update={"temperature": 2.0}))
    assert (hotter.probs.max(axis=1) < ref.probs.max(axis=1) + 1e-12).all()
    with pytest.raises(ValidationScoresUnavailable, match="scores are for classes"):
        reference(folder, manifest.model_copy(update={"class_names": ["a", "b"]}))


def test_drift_report_reads_the_versions_live_pages_in_the_window(settings: DocsortSettings) -> None:
    rng = np.random.default_rng(5)
    sessions = sessions_for(settings)
    with sessions() as s:
        row = register_version(s, settings.models_dir, ref_probs=two_class_probs(rng, 2000))
        for day in range(3):
            shift = 0.12 if day == 2 else 0.0  # the last day's pages are less sure
            for p in two_class_probs(rng, 120, shift=shift):
                when = NOW - timedelta(days=2 - day, hours=1)
                route_document(
                    s,
                    label=NAMES[int(p.argmax())],
                    scores=dict(zip(NAMES, p.tolist(), strict=True)),
                    when=when,
                )
        for p in two_class_probs(rng, 80):  # another version's pages are not this one's
            route_document(
                s,
                label="dark",
                scores=dict(zip(NAMES, p.tolist(), strict=True)),
                model_version="v9",
                when=NOW,
            )
        s.commit()
        quiet = drift_report(s, row, NOW - timedelta(days=3), NOW - timedelta(days=1))
        assert quiet.n_live == 240 and quiet.n_reference == 2000 and quiet.verdict == OK
        days = drift_by_day(s, row, NOW - timedelta(days=3), NOW)
    assert [d.n_live for d in days] == [120, 120, 120]
    assert [{st.key: st.verdict for st in d.statistics}["ks"] for d in days] == [OK, OK, DRIFT]
    review = {st.key: st for st in days[2].statistics}["review_rate"]
    assert review.value is not None and review.reference is not None and review.value > review.reference
    assert set(quiet.as_dict()["class_mix"]) == set(NAMES)
