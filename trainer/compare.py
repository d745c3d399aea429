"""A candidate version against the active one, on the same held-out pages that neither trained on.

The pages are the candidate's test split (``report/split.json``, never used to train it, keep an
epoch, fit its temperature or choose its thresholds), less any file whose content the active version
trained on (its own ``split.json``, files matched by sha256). Both versions score them with their own
model, input spec, temperature and thresholds (:func:`trainer.evaluate.score_files`).

The rule, stated once (:func:`verdict`): the candidate is better when

1. its thresholds carry a guarantee that was met (some validation pages routed, exact lower bound
   at or above the target), for the same target as the active version's;
2. on the held-out pages its accuracy is at least the active version's;
3. on the held-out pages its review rate is at most the active version's;
4. on the held-out pages the exact lower bound of its auto-routed accuracy is at least the target
   or at least the active version's;

and it is strictly better in accuracy or in review rate.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from schema.files import sha256_file
from schema.logs import get_logger
from schema.manifest import ModelManifest, load_manifest
from trainer.data import LabelledFile
from trainer.errors import TrainerError
from trainer.evaluate import routed_metrics, score_files
from trainer.scoring import SPLIT_FILE

log = get_logger(__name__)


@dataclass(frozen=True)
class VersionScore:
    model: str
    pages: int
    accuracy: float | None
    review_rate: float
    auto_accuracy: float | None
    n_auto: int
    lower_bound: float | None  # exact lower bound of the auto-routed accuracy on these pages
    target: float | None
    guarantee_met: bool


@dataclass
class Comparison:
    candidate: VersionScore
    active: VersionScore
    files: int
    excluded: int  # held-out files the active version trained on
    checks: list[tuple[str, bool]] = field(default_factory=list)
    note: str = ""

    @property
    def better(self) -> bool:
        return bool(self.checks) and all(ok for _, ok in self.checks)

    def as_dict(self) -> dict[str, Any]:
        return {
            "candidate": asdict(self.candidate),
            "active": asdict(self.active),
            "files": self.files,
            "excluded_seen_by_active": self.excluded,
            "checks": [{"rule": rule, "passed": ok} for rule, ok in self.checks],
            "better": self.better,
            "note": self.note,
        }


def _split_files(version_dir: Path, part: str) -> list[str]:
    path = version_dir / "report" / SPLIT_FILE
    try:
        return [str(p) for p in json.loads(path.read_text(encoding="utf-8"))[part]]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise TrainerError(f"{path}: no {part} split recorded ({exc})") from exc


def held_out(candidate_dir: Path, manifest: ModelManifest) -> list[LabelledFile]:
    """The candidate's test files (relative to its data folder), labelled by their class folder."""
    root = Path(manifest.training.data_dir)
    index = {name: i for i, name in enumerate(manifest.class_names)}
    files = [Path(p) for p in _split_files(candidate_dir, "test")]
    if not files:
        raise TrainerError(f"{candidate_dir}: no test split to compare on (train with --test-fraction)")
    return [LabelledFile(root / p, index[p.parts[0]]) for p in files if p.parts and p.parts[0] in index]


def seen_by(version_dir: Path) -> set[str] | None:
    """sha256 of every file the version trained on; None when its data folder cannot be read."""
    manifest = load_manifest(version_dir, verify=False)
    root = Path(manifest.training.data_dir) if manifest.training.data_dir else None
    if root is None or not (version_dir / "report" / SPLIT_FILE).is_file():
        return None
    hashes = set()
    for rel in _split_files(version_dir, "train"):
        path = root / rel
        if not path.is_file():
            return None
        hashes.add(sha256_file(path))
    return hashes


def _score(version_dir: Path, files: list[LabelledFile], progress: bool) -> VersionScore:
    manifest = load_manifest(version_dir)
    scored = score_files(files, version_dir, progress=progress)
    routed = routed_metrics(scored.probs, scored.labels, manifest)
    n = int(scored.labels.size)
    g = manifest.thresholds.guarantee
    met = g is not None and g.n_auto > 0 and g.lower_bound is not None and g.lower_bound >= g.target
    return VersionScore(
        model=f"{manifest.name}/{manifest.version}",
        pages=n,
        accuracy=float((scored.probs.argmax(axis=1) == scored.labels).mean()) if n else None,
        review_rate=routed["review_rate"],
        auto_accuracy=routed["auto_accuracy"],
        n_auto=routed["n_auto"],
        lower_bound=routed["auto_accuracy_lower_bound"],
        target=manifest.thresholds.target_auto_accuracy or (g.target if g else None),
        guarantee_met=met,
    )


def verdict(candidate: VersionScore, active: VersionScore) -> list[tuple[str, bool]]:
    """The rule of the module's docstring, one (criterion, passed) per line."""
    c_acc, a_acc = candidate.accuracy or 0.0, active.accuracy or 0.0
    c_low, a_low = candidate.lower_bound or 0.0, active.lower_bound or 0.0
    target = candidate.target or 1.0
    return [
        ("its thresholds' guarantee is met", candidate.guarantee_met),
        ("the same target as the active version's", candidate.target == active.target),
        ("accuracy at least the active version's", c_acc >= a_acc),
        ("review rate at most the active version's", candidate.review_rate <= active.review_rate),
        ("auto-routed lower bound at least the target or the active's", c_low >= min(target, a_low)),
        ("better in accuracy or in review rate", c_acc > a_acc or candidate.review_rate < active.review_rate),
    ]


def compare_versions(candidate_dir: Path, active_dir: Path, *, progress: bool = False) -> Comparison:
    """The candidate against the active version on the candidate's held-out pages (see the module)."""
    candidate, active = load_manifest(candidate_dir), load_manifest(active_dir)
    if candidate.class_names != active.class_names:
        raise TrainerError(
            f"the candidate's classes {candidate.class_names} are not "
            f"the active version's {active.class_names}: they cannot be compared"
        )
    files = held_out(candidate_dir, candidate)
    seen = seen_by(active_dir)
    note = "" if seen is not None else "the active version's training files could not be read; none excluded"
    kept = [f for f in files if seen is None or sha256_file(f.path) not in seen]
    if not kept:
        raise TrainerError(
            "every held-out file was seen by the active version in training: nothing to compare on"
        )
    result = Comparison(
        _score(candidate_dir, kept, progress),
        _score(active_dir, kept, progress),
        len(kept),
        len(files) - len(kept),
        note=note,
    )
    result.checks = verdict(result.candidate, result.active)
    log.info("loop.compared", better=result.better, files=len(kept), excluded=result.excluded)
    return result


def comparison_table(result: Comparison) -> str:
    """The comparison as a plain text table, then each criterion of the rule."""

    def pct(v: float | None) -> str:
        return "–" if v is None else f"{100 * v:.2f}%"

    rows = [
        ("", "candidate", "active"),
        ("version", result.candidate.model, result.active.model),
        ("held-out pages", str(result.candidate.pages), str(result.active.pages)),
        ("accuracy", pct(result.candidate.accuracy), pct(result.active.accuracy)),
        ("review rate", pct(result.candidate.review_rate), pct(result.active.review_rate)),
        ("auto-routed accuracy", pct(result.candidate.auto_accuracy), pct(result.active.auto_accuracy)),
        ("its exact lower bound", pct(result.candidate.lower_bound), pct(result.active.lower_bound)),
        ("target", pct(result.candidate.target), pct(result.active.target)),
        ("guarantee met", str(result.candidate.guarantee_met), str(result.active.guarantee_met)),
    ]
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows]
    lines.append(
        f"{result.files} held-out files ({result.excluded} left out: the active version trained on them)"
    )
    if result.note:
        lines.append(result.note)
    lines += [f"  [{'x' if ok else ' '}] {rule}" for rule, ok in result.checks]
    lines.append(f"candidate is {'BETTER' if result.better else 'NOT BETTER'} by the rule")
    return "\n".join(lines)
