"""Review thresholds with and without a guarantee, on a trained version's validation pages (not a test).

``python -m trainer.bench_guarantee VERSION_DIR``: the stored validation scores (``report/``) are split
at random into a calibration half and a held-out half, many times. On each split the temperature is
fitted and the thresholds are chosen on the calibration half only, three ways (point estimate with a
threshold per class, point estimate with one global threshold, and with a guarantee); each is then
applied to the held-out half. Printed per target and rule: the held-out review rate, the held-out
accuracy of the auto-routed pages, how many splits fell below the target on the held-out pages (a
noisy measure: a few hundred pages), how many of those fell clearly below (the held-out pages' own
exact 95% upper bound under the target), and how many routed nothing. No model is run and the version
folder is not changed.
"""

from __future__ import annotations

import argparse
import platform
import statistics
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from schema.logs import configure_logging
from schema.manifest import load_manifest
from trainer.calibration import calibrate, load_scores
from trainer.confidence import loaded_variant
from trainer.guarantee import lower_bound
from trainer.thresholds import choose_thresholds, decision_metrics
from worker.inference import softmax

RULES = {  # name: (min_class_pages, confidence_level); min None: the rule's own default
    "point estimate, per class": (None, None),
    "point estimate, global": (10**9, None),
    "guaranteed": (None, "level"),
}


@dataclass
class Outcome:
    review: list[float] = field(default_factory=list)
    accuracy: list[float] = field(default_factory=list)
    misses: int = 0
    clear_misses: int = 0  # the held-out pages themselves show (95% one-sided) the accuracy is below target
    nothing_routed: int = 0


def run_splits(
    logits: np.ndarray,
    labels: np.ndarray,
    names: list[str],
    target: float,
    level: float,
    splits: int,
    seed: int,
) -> dict[str, Outcome]:
    rng = np.random.default_rng(seed)
    outcomes = {rule: Outcome() for rule in RULES}
    for _ in range(splits):
        order = rng.permutation(labels.size)
        cal, test = order[: labels.size // 2], order[labels.size // 2 :]
        temperature, _ = calibrate(logits[cal], labels[cal])
        cal_probs, test_probs = softmax(logits[cal], temperature), softmax(logits[test], temperature)
        for rule, (minimum, which) in RULES.items():
            chosen_level = level if which == "level" else None
            choice = choose_thresholds(cal_probs, labels[cal], names, target, minimum, chosen_level)
            held = decision_metrics(test_probs, labels[test], choice.thresholds, names)
            out = outcomes[rule]
            out.review.append(held["review_rate"])
            if held["auto_accuracy"] is None:
                out.nothing_routed += 1
                continue
            out.accuracy.append(held["auto_accuracy"])
            out.misses += held["auto_accuracy"] < target
            upper = 1.0 - (lower_bound(held["n_auto"] - held["n_auto_correct"], held["n_auto"], 0.95) or 0.0)
            out.clear_misses += upper < target
    return outcomes


def format_table(results: dict[float, dict[str, Outcome]], splits: int, level: float) -> str:
    lines = [
        "| target | rule | held-out review rate (mean, min–max) | held-out auto accuracy (mean, min) "
        f"| splits below target (of {splits}) | of which clearly (upper bound below) "
        "| splits routing nothing |",
        "|---|---|---|---|---|---|---|",
    ]
    for target, outcomes in results.items():
        for rule, out in outcomes.items():
            name = f"guaranteed ({100 * level:g}%)" if rule == "guaranteed" else rule
            acc = (
                f"{100 * statistics.mean(out.accuracy):.2f}%, {100 * min(out.accuracy):.2f}%"
                if out.accuracy
                else "n/a"
            )
            review = (
                f"{100 * statistics.mean(out.review):.2f}%, "
                f"{100 * min(out.review):.2f}–{100 * max(out.review):.2f}%"
            )
            lines.append(
                f"| {100 * target:.1f}% | {name} | {review} | {acc} | {out.misses} | {out.clear_misses} "
                f"| {out.nothing_routed} |"
            )
    return "\n".join(lines)


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return cpu


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m trainer.bench_guarantee", description=__doc__)
    parser.add_argument("version_dir", type=Path, help="a trained version folder (its report/ scores)")
    parser.add_argument("--targets", type=float, nargs="+", default=[0.99, 0.995])
    parser.add_argument("--confidence", type=float, default=0.95, help="level of the guarantee")
    parser.add_argument("--splits", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    configure_logging("WARNING")  # one line per choice would drown the table
    manifest = load_manifest(args.version_dir)
    logits, labels = load_scores(args.version_dir / "report", manifest.class_names, loaded_variant(manifest))
    results = {
        t: run_splits(logits, labels, manifest.class_names, t, args.confidence, args.splits, args.seed)
        for t in args.targets
    }
    print(
        f"{manifest.name}/{manifest.version}: {labels.size} validation pages, split {labels.size // 2} "
        f"to calibrate / {labels.size - labels.size // 2} held out, {args.splits} splits (seed {args.seed}); "
        f"machine: {machine()}\n"
    )
    print(format_table(results, args.splits, args.confidence))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
