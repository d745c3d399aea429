"""Figures of the quality of automatic routing, as PNG (matplotlib's object API, Agg, no pyplot):
live accuracy by day with its exact interval and the target, and drift statistics by day with their
thresholds. The dashboard embeds them; ``docsort models drift --plot`` writes them.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from matplotlib.dates import DateFormatter, DayLocator, date2num
from matplotlib.figure import Figure
from matplotlib.ticker import PercentFormatter

from worker.drift import ALPHA, PSI_DRIFT, PSI_WATCH, DriftReport
from worker.live_accuracy import DayAccuracy

COLORS = {
    "accuracy": "#2e7d5b",
    "band": "#2e7d5b",
    "target": "#c0463f",
    "stat": "#3e63b8",
    "muted": "#9aa5b1",
}
STYLE: Any = {"font.size": 9, "axes.spines.top": False, "axes.spines.right": False}


def _png(draw: Callable[[Figure], None], size: tuple[float, float]) -> bytes:
    from matplotlib import rc_context

    with rc_context(STYLE):
        fig = Figure(figsize=size, layout="constrained")
        draw(fig)
        out = io.BytesIO()
        fig.savefig(out, format="png", dpi=110)
    return out.getvalue()


def _values(items: Sequence[float | None]) -> np.ndarray:
    return np.array([np.nan if v is None else v for v in items], dtype=np.float64)


def _days(ax: Any, n_days: int) -> None:
    """Dates on the x axis, at most about ten ticks (month-day)."""
    ax.xaxis_date()
    ax.xaxis.set_major_locator(DayLocator(interval=max(1, -(-n_days // 10))))
    ax.xaxis.set_major_formatter(DateFormatter("%m-%d"))
    ax.tick_params(axis="x", labelrotation=45, labelsize=7)


def _empty(ax: Any, text: str) -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, color=COLORS["muted"])
    ax.set_xticks([])
    ax.set_yticks([])


def live_accuracy_png(days: Sequence[DayAccuracy], target: float | None, title: str) -> bytes:
    """Accuracy of the audited documents routed each day (points with their interval) and of all
    answers so far (line with its interval band), against the target."""

    def draw(fig: Figure) -> None:
        ax = fig.add_subplot()
        ax.set_title(title, fontsize=9, loc="left")
        if not days:
            _empty(ax, "no audit answers yet")
            return
        dates = [d.day for d in days]
        x = date2num(dates)
        cum = [d.cumulative for d in days]
        low, high = _values([c.low for c in cum]), _values([c.high for c in cum])
        ax.fill_between(x, low, high, color=COLORS["band"], alpha=0.15, lw=0)
        ax.plot(
            x,
            _values([c.estimate for c in cum]),
            color=COLORS["accuracy"],
            lw=1.6,
            label="all answers so far",
        )
        day = [d.interval for d in days]
        lows = [(i.estimate or 0) - (i.low or 0) for i in day]
        highs = [(i.high or 1) - (i.estimate or 0) for i in day]
        ax.errorbar(
            x,
            _values([i.estimate for i in day]),
            yerr=[lows, highs],
            fmt="o",
            ms=3,
            color=COLORS["stat"],
            ecolor=COLORS["muted"],
            lw=1,
            label=f"documents routed that day ({100 * day[0].level:g}% exact interval)",
        )
        if target is not None:
            ax.axhline(target, color=COLORS["target"], ls="--", lw=1, label=f"target {100 * target:.2f}%")
        ax.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=1))
        ax.set_ylabel("accuracy of auto-routed documents")
        ax.legend(loc="lower left", fontsize=7)
        _days(ax, (dates[-1] - dates[0]).days + 1)

    return _png(draw, (7.0, 3.2))


def _flagged(reports: Sequence[DriftReport], key: str) -> np.ndarray:
    """Where the statistic ``key``'s test found drift (p below :data:`worker.drift.ALPHA`)."""
    return np.array(
        [
            any(s.key == key and s.p_value is not None and s.p_value < ALPHA for s in r.statistics)
            for r in reports
        ]
    )


def drift_png(reports: Sequence[DriftReport], title: str) -> bytes:
    """By day: the KS statistic of the top-class confidence, the PSI of the class mix, and the live
    review rate against the promised one, each with its threshold."""

    def value(report: DriftReport, key: str) -> float | None:
        return next((s.value for s in report.statistics if s.key == key), None)

    def draw(fig: Figure) -> None:
        axes = fig.subplots(1, 3)
        fig.suptitle(title, fontsize=9, x=0.01, ha="left")
        if not reports:
            for ax in axes:
                _empty(ax, "no live pages")
            return
        dates = [r.since.replace(hour=0, minute=0, second=0, microsecond=0, tzinfo=None) for r in reports]
        x = date2num(dates)
        ks = _values([value(r, "ks") for r in reports])
        flagged = np.array(
            [
                any(s.key == "ks" and s.p_value is not None and s.p_value < ALPHA for s in r.statistics)
                for r in reports
            ]
        )
        axes[0].plot(x, ks, "o-", ms=3, color=COLORS["stat"])
        if flagged.any():
            axes[0].plot(x[flagged], ks[flagged], "o", color=COLORS["target"], ms=5, label=f"p < {ALPHA:g}")
            axes[0].legend(fontsize=7)
        axes[0].set_title("confidence: KS D", fontsize=9)
        axes[1].plot(x, _values([value(r, "psi") for r in reports]), "o-", ms=3, color=COLORS["stat"])
        axes[1].axhline(PSI_WATCH, color=COLORS["muted"], ls=":", lw=1)
        axes[1].axhline(PSI_DRIFT, color=COLORS["target"], ls="--", lw=1)
        axes[1].set_title(f"class mix: PSI (drift ≥ {PSI_DRIFT:g})", fontsize=9)
        rates = _values([value(r, "review_rate") for r in reports])
        axes[2].plot(x, rates, "o-", ms=3, color=COLORS["stat"], label="live")
        drifted = _flagged(reports, "review_rate")
        if drifted.any():
            axes[2].plot(
                x[drifted], rates[drifted], "o", color=COLORS["target"], ms=5, label=f"p < {ALPHA:g}"
            )
        promised = next((s.reference for s in reports[-1].statistics if s.key == "review_rate"), None)
        if promised is not None:
            axes[2].axhline(promised, color=COLORS["target"], ls="--", lw=1, label="promised")
        axes[2].yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
        axes[2].set_title("review rate", fontsize=9)
        axes[2].legend(fontsize=7)
        for ax in axes:
            _days(ax, (dates[-1] - dates[0]).days + 1)

    return _png(draw, (10.0, 3.0))
