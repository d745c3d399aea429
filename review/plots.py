"""Dashboard plots drawn on the server as SVG by matplotlib (Agg backend, object API: no pyplot, no GUI)."""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any

import matplotlib
from matplotlib import rc_context
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator, PercentFormatter

from review.stats import Dashboard

matplotlib.use("Agg")

COLORS = {
    "auto": "#2e7d5b",
    "review": "#d9932b",
    "failed": "#c0463f",
    "reviewed": "#3e63b8",
    "muted": "#9aa5b1",
}
STYLE: Any = {
    "svg.fonttype": "none",
    "font.family": "sans-serif",
    "font.size": 9,
    "axes.edgecolor": "#c8cfd6",
    "axes.labelcolor": "#38424c",
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.color": "#e6eaee",
    "grid.linewidth": 0.8,
    "xtick.color": "#5b6670",
    "ytick.color": "#5b6670",
    "legend.frameon": False,
}
SIZE = (6.4, 2.8)
WIDE = (12.8, 3.0)


def _svg(draw: Callable[[Figure], None], size: tuple[float, float] = SIZE) -> bytes:
    with rc_context(STYLE):
        fig = Figure(figsize=size, layout="constrained")
        draw(fig)
        out = io.BytesIO()
        fig.savefig(out, format="svg", transparent=True)
    return out.getvalue()


def _empty(ax: Any, text: str) -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, color=COLORS["muted"])
    ax.set_xticks([])
    ax.set_yticks([])
    ax.grid(False)


def _hour_ticks(ax: Any, board: Dashboard) -> None:
    labels = [h.start.strftime("%H:00") for h in board.hours]
    step = max(1, len(labels) // 8)
    ticks = list(range(len(labels)))[::-1][::step][::-1]
    ax.set_xticks(ticks, [labels[i] for i in ticks])
    ax.set_xlabel("hour (UTC)")


def throughput(board: Dashboard) -> bytes:
    """Pages per hour by outcome (stacked), with operator decisions per hour as a line."""

    def draw(fig: Figure) -> None:
        ax = fig.add_subplot()
        x = list(range(len(board.hours)))
        auto = [h.auto for h in board.hours]
        review = [h.review for h in board.hours]
        failed = [h.failed for h in board.hours]
        ax.bar(x, auto, color=COLORS["auto"], label="routed automatically", width=0.8)
        ax.bar(x, review, bottom=auto, color=COLORS["review"], label="sent to review", width=0.8)
        below = [a + r for a, r in zip(auto, review, strict=True)]
        ax.bar(x, failed, bottom=below, color=COLORS["failed"], label="failed", width=0.8)
        ax.plot(
            x,
            [h.reviewed for h in board.hours],
            color=COLORS["reviewed"],
            marker="o",
            ms=3,
            lw=1.5,
            label="decided by operators",
        )
        ax.set_ylabel("pages")
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(axis="x", visible=False)
        _hour_ticks(ax, board)
        ax.legend(loc="lower left", ncols=4, fontsize=8, bbox_to_anchor=(0, 1.0))

    return _svg(draw, WIDE)


def review_rate(board: Dashboard) -> bytes:
    """Share of classified pages the model sent to review, per hour."""

    def draw(fig: Figure) -> None:
        ax = fig.add_subplot()
        points = [(i, h.review_rate) for i, h in enumerate(board.hours) if h.review_rate is not None]
        if not points:
            _empty(ax, "no pages classified in this period")
            return
        xs, ys = zip(*points, strict=True)
        ax.plot(xs, ys, color=COLORS["review"], marker="o", ms=3, lw=1.5)
        ax.fill_between(xs, ys, color=COLORS["review"], alpha=0.12)
        overall = board.review_rate_in_period
        if overall is not None:
            ax.axhline(overall, color=COLORS["muted"], lw=1, ls="--")
            ax.annotate(
                f"period {overall:.0%}",
                (len(board.hours) - 1, overall),
                ha="right",
                va="bottom",
                color="#5b6670",
                fontsize=8,
                xytext=(0, 3),
                textcoords="offset points",
            )
        ax.set_xlim(-0.5, len(board.hours) - 0.5)
        ax.set_ylim(0, 1.02)
        ax.yaxis.set_major_formatter(PercentFormatter(1.0))
        ax.set_ylabel("sent to review")
        _hour_ticks(ax, board)

    return _svg(draw)


def classes(board: Dashboard) -> bytes:
    """Per class: pages routed automatically, decided by operators, and waiting."""
    names = sorted(set(board.auto_by_class) | set(board.reviewed_by_class) | set(board.pending_by_class))

    def draw(fig: Figure) -> None:
        ax = fig.add_subplot()
        if not names:
            _empty(ax, "no pages yet")
            return
        y = list(range(len(names)))
        h = 0.26
        series = [
            ("routed automatically", board.auto_by_class, COLORS["auto"], -h),
            ("decided by operators", board.reviewed_by_class, COLORS["reviewed"], 0.0),
            ("waiting for review", board.pending_by_class, COLORS["review"], h),
        ]
        for label, counts, color, shift in series:
            ax.barh(
                [v + shift for v in y], [counts.get(n, 0) for n in names], height=h, color=color, label=label
            )
        ax.set_yticks(y, names)
        ax.invert_yaxis()
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(axis="y", visible=False)
        ax.set_xlabel("pages")
        ax.legend(loc="lower right", fontsize=8)

    return _svg(draw, (6.4, max(2.4, 0.55 * len(names) + 1.2)))


def queue_age(board: Dashboard) -> bytes:
    """Pages waiting for review by how long they have waited."""

    def draw(fig: Figure) -> None:
        ax = fig.add_subplot()
        labels = [label for label, _ in board.queue_ages]
        counts = [n for _, n in board.queue_ages]
        if not any(counts):
            _empty(ax, "the review queue is empty")
            return
        shades = ["#f3d6a4", "#ebbd6d", "#d9932b", "#c0663a", "#a8402f", "#7c2a22"]
        bars = ax.bar(labels, counts, color=shades[: len(labels)], width=0.7)
        ax.bar_label(bars, fontsize=8, color="#38424c")
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(axis="x", visible=False)
        ax.set_ylabel("pages waiting")

    return _svg(draw)


def versions(board: Dashboard) -> bytes:
    """Per model version: pages classified, sent to review, and corrected by operators."""

    def draw(fig: Figure) -> None:
        ax = fig.add_subplot()
        if not board.versions:
            _empty(ax, "no model has classified a page yet")
            return
        names = [v.model + ("  (active)" if v.active else "") for v in board.versions]
        y = list(range(len(names)))
        h = 0.26
        ax.barh(
            [v - h for v in y],
            [v.pages for v in board.versions],
            height=h,
            color=COLORS["auto"],
            label="pages",
        )
        ax.barh(
            y,
            [v.sent_to_review for v in board.versions],
            height=h,
            color=COLORS["review"],
            label="sent to review",
        )
        ax.barh(
            [v + h for v in y],
            [v.corrected for v in board.versions],
            height=h,
            color=COLORS["failed"],
            label="corrected or rejected",
        )
        ax.set_yticks(y, names)
        ax.invert_yaxis()
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(axis="y", visible=False)
        ax.set_xlabel("pages")
        ax.legend(loc="lower right", fontsize=8)

    return _svg(draw, (6.4, max(2.2, 0.6 * len(board.versions) + 1.2)))


PLOTS: dict[str, Callable[[Dashboard], bytes]] = {
    "throughput": throughput,
    "review-rate": review_rate,
    "classes": classes,
    "queue-age": queue_age,
    "versions": versions,
}
