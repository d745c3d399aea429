"""The loop's parts without TensorFlow: operator pages with provenance, the comparison and its rule."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from PIL import Image

from review.decisions import decide
from schema.manifest import Guarantee, Thresholds, TrainingInfo, load_manifest, write_manifest
from schema.settings import DocsortSettings
from schema.tables import Audit, Document, Page
from tests.support.quality import make_biased_tiny_model, route_document
from tests.support.review import sessions_for
from tests.support.review_items import make_item, make_operator
from tests.support.tiny_model import make_tiny_model
from tests.support.worker import write_page
from trainer.compare import VersionScore, compare_versions, comparison_table, verdict
from trainer.errors import TrainerError
from trainer.loop import PROVENANCE_FILE, add_operator_pages, read_provenance

NOW = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
NAMES = ["invoice", "letter", "form"]


def test_operator_pages_land_in_class_folders_with_their_provenance(
    settings: DocsortSettings, tmp_path: Path
) -> None:
    sessions = sessions_for(settings)
    data = tmp_path / "pages"
    with sessions() as s:
        ann = make_operator(s, "ann")
        reviewed = make_item(s, settings, label="invoice")
        rejected = make_item(s, settings, label="letter")
        decide(
            s,
            settings,
            prediction_id=reviewed.prediction_id,
            operator_id=ann.id,
            label="form",
            note=None,
            now=NOW,
        )
        decide(
            s,
            settings,
            prediction_id=rejected.prediction_id,
            operator_id=ann.id,
            label=None,
            note=None,
            now=NOW,
        )
        kept = write_page(settings.dir("archive") / "kept.png", 30, size=(200, 260))
        audited = route_document(
            s, label="letter", when=NOW, audited=True, answered=True, answer="invoice", operator_id=ann.id
        )
        document = s.get(Document, audited.document_id)
        assert document is not None
        document.stored_path = str(kept)  # an audited page has no review image: rendered from the kept file
        s.commit()
        added = add_operator_pages(s, data, NAMES)
    assert (added.written, added.unchanged, added.skipped) == (2, 0, [])
    assert added.per_class == {"form": 1, "invoice": 1}
    records = read_provenance(data)
    assert len(records) == 2
    review_rec = next(r for r in records.values() if r["source"] == "review")
    assert review_rec["label"] == "form" and review_rec["operator"] == "ann" and review_rec["page"] == 1
    assert review_rec["sha256"] == reviewed.sha256 and review_rec["model_label"] == "invoice"
    assert datetime.fromisoformat(str(review_rec["decided_at"])) == NOW
    assert (data / str(review_rec["file"])).read_bytes() == reviewed.image_path.read_bytes()
    audit_rec = next(r for r in records.values() if r["source"] == "audit")
    assert audit_rec["file"] == f"invoice/operator/{audit_rec['sha256'][:16]}-p1.png"  # type: ignore[index]
    assert audit_rec["model"] == "docsort/v1" and audit_rec["model_label"] == "letter"
    assert Image.open(data / str(audit_rec["file"])).size == (200, 260)  # rendered from the kept file
    with sessions() as s:  # again: nothing new
        assert (add_operator_pages(s, data, NAMES).written, len(read_provenance(data))) == (0, 2)
    lines = (data / PROVENANCE_FILE).read_text().splitlines()
    assert [json.loads(line)["file"] for line in lines] == sorted(records)


def test_a_page_relabelled_later_moves_to_its_new_class(settings: DocsortSettings, tmp_path: Path) -> None:
    sessions = sessions_for(settings)
    data = tmp_path / "pages"
    with sessions() as s:
        ann = make_operator(s, "ann")
        routed = route_document(
            s, label="letter", when=NOW, audited=True, answered=True, answer="letter", operator_id=ann.id
        )
        page = s.get(Page, routed.page_id)
        assert page is not None
        page.image_path = str(write_page(tmp_path / "img.png", 200))
        s.commit()
        add_operator_pages(s, data, NAMES)
        audit = s.get(Audit, routed.audit_id)
        assert audit is not None
        audit.answer_label, audit.answered_at = "form", NOW + timedelta(hours=1)
        s.commit()
        add_operator_pages(s, data, NAMES)
    files = sorted(str(p.relative_to(data)) for p in data.rglob("*.png"))
    assert len(files) == 1 and files[0].startswith("form/operator/")
    assert list(read_provenance(data)) == files


def _scored(
    model: str, accuracy: float, review: float, low: float, *, met: bool = True, target: float = 0.99
) -> VersionScore:
    return VersionScore(model, 100, accuracy, review, 0.995, 90, low, target, met)


def test_the_rule_wants_a_met_guarantee_no_loss_and_a_gain() -> None:
    active = _scored("a", 0.95, 0.10, 0.97)
    assert all(ok for _, ok in verdict(_scored("c", 0.96, 0.10, 0.97), active))
    assert all(ok for _, ok in verdict(_scored("c", 0.95, 0.08, 0.97), active))
    failed = {rule for rule, ok in verdict(_scored("c", 0.95, 0.10, 0.97), active) if not ok}
    assert failed == {"better in accuracy or in review rate"}
    failed = {rule for rule, ok in verdict(_scored("c", 0.97, 0.12, 0.97), active) if not ok}
    assert failed == {"review rate at most the active version's"}
    failed = {rule for rule, ok in verdict(_scored("c", 0.97, 0.05, 0.97, met=False), active) if not ok}
    assert failed == {"its thresholds' guarantee is met"}
    failed = {rule for rule, ok in verdict(_scored("c", 0.97, 0.05, 0.97, target=0.995), active) if not ok}
    assert failed == {"the same target as the active version's"}


def _version(
    models: Path, data: Path, version: str, bias: float | None, test: list[str], train: list[str]
) -> Path:
    folder = (
        make_biased_tiny_model(models, version, bias)
        if bias is not None
        else make_tiny_model(models, version=version)
    )
    (folder / "report" / "split.json").write_text(json.dumps({"train": train, "val": [], "test": test}))
    manifest = load_manifest(folder)
    guarantee = Guarantee(
        method="test", target=0.9, confidence_level=0.95, lower_bound=0.95, n_calibration=100, n_auto=80
    )
    thresholds = Thresholds(confidence=0.6, target_auto_accuracy=0.9, guarantee=guarantee)
    write_manifest(
        folder,
        manifest.model_copy(update={"thresholds": thresholds, "training": TrainingInfo(data_dir=str(data))}),
    )
    return folder


def test_candidate_and_active_are_scored_on_the_same_unseen_held_out_pages(tmp_path: Path) -> None:
    data = tmp_path / "data"
    for name, greys in (("dark", range(0, 120, 8)), ("light", range(136, 256, 8))):
        (data / name).mkdir(parents=True)
        for g in greys:
            write_page(data / name / f"g{g:03d}.png", g)
    test = [f"dark/g{g:03d}.png" for g in range(0, 120, 16)] + [
        f"light/g{g:03d}.png" for g in range(136, 256, 16)
    ]
    seen = ["dark/g000.png", "light/g248.png"]  # the active version trained on these two
    models = tmp_path / "models"
    plain = _version(models, data, "plain", None, test, seen)
    biased = _version(models, data, "biased", 1.25, test, [])  # calls light greys up to 159 dark
    good = compare_versions(plain, biased)
    assert (good.files, good.excluded) == (len(test), 0)
    assert good.candidate.accuracy == 1.0 and good.active.accuracy is not None and good.active.accuracy < 1.0
    assert good.better, comparison_table(good)
    worse = compare_versions(biased, plain)
    assert (worse.files, worse.excluded) == (len(test) - 2, 2)  # not on pages the active trained on
    assert not worse.better
    table = comparison_table(worse)
    assert "NOT BETTER" in table and "[ ] accuracy at least the active version's" in table
    with pytest.raises(TrainerError, match="no test split"):
        compare_versions(_version(models, data, "none", None, [], []), plain)
