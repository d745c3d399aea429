"""Timing several ways of doing the same work side by side: warm-ups, then interleaved rounds.

Each round runs every contender once, in turn, so a change in the machine's load during the run falls on
all of them alike. The figure reported for each is the median of its rounds.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

from tqdm import tqdm


@dataclass(frozen=True)
class Timed:
    name: str
    seconds: list[float]

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)

    def rate(self, items: int) -> float:
        """Items per second at the median round."""
        return items / self.median


def interleaved(
    contenders: dict[str, Callable[[], object]], rounds: int, warmup: int = 1, desc: str = "timing"
) -> dict[str, Timed]:
    """Run each contender ``warmup`` times untimed, then ``rounds`` timed rounds, interleaved."""
    for _ in range(warmup):
        for run in contenders.values():
            run()
    times: dict[str, list[float]] = {name: [] for name in contenders}
    for _ in tqdm(range(rounds), desc=desc, leave=False):
        for name, run in contenders.items():
            started = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - started)
    return {name: Timed(name, values) for name, values in times.items()}
