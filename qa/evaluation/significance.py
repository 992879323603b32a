"""How much an evaluation figure would move on another set of questions like these, and whether a change between
two runs over the same questions is more than that.

A set of 59 or 72 questions measures a hit rate to within about ±0.12; two readers that differ by two questions
on it may not differ at all. `interval` is a 95% interval of a mean over questions (Wilson's for a rate, else a
bootstrap); `paired_changes`
compares two runs question by question: which questions were gained and lost, an exact two-sided sign test on
them, and a paired bootstrap interval of the difference in the mean.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

BOOTSTRAP_SAMPLES = 2000


def interval(values: Sequence[float], samples: int = BOOTSTRAP_SAMPLES, seed: int = 0) -> list[float] | None:
    """The 95% interval of the mean of `values` (None for fewer than two): Wilson's score interval for a rate (every
    value 0 or 1), which stays honest when every question came out alike (3 of 3 right: 0.44-1, where a bootstrap
    says 1-1); else the percentile bootstrap."""
    if len(values) < 2:
        return None
    array = np.asarray(values, dtype=float)
    if np.isin(array, (0.0, 1.0)).all():
        from scipy.stats import binomtest

        found = binomtest(int(array.sum()), len(array)).proportion_ci(confidence_level=0.95, method="wilson")
        return [round(float(found.low), 4), round(float(found.high), 4)]
    return bootstrap_interval(array, samples, seed)


def bootstrap_interval(values: Sequence[float], samples: int = BOOTSTRAP_SAMPLES, seed: int = 0) -> list[float] | None:
    """The percentile bootstrap's 95% interval of the mean of `values` (None for fewer than two)."""
    if len(values) < 2:
        return None
    array = np.asarray(values, dtype=float)
    means = array[np.random.default_rng(seed).integers(0, len(array), (samples, len(array)))].mean(axis=1)
    low, high = np.percentile(means, [2.5, 97.5])
    return [round(float(low), 4), round(float(high), 4)]


def sign_test(gained: int, lost: int) -> float:
    """Two-sided exact sign test: the chance of a split at least this uneven between gained and lost questions if
    either way were equally likely (1.0 when nothing changed)."""
    changed = gained + lost
    if changed == 0:
        return 1.0
    tail = sum(math.comb(changed, k) for k in range(min(gained, lost) + 1)) / 2 ** changed
    return round(min(1.0, 2 * tail), 4)


@dataclass(frozen=True)
class PairedChange:
    metric: str
    questions: int
    before: float
    after: float
    difference_interval: list[float] | None  # 95% paired bootstrap interval of after - before
    gained: list[str]  # question ids: 0 -> 1 (for 0/1 metrics)
    lost: list[str]
    sign_test_p: float | None  # for 0/1 metrics

    @property
    def difference(self) -> float:
        return round(self.after - self.before, 4)


def paired_changes(metric: str, ids: Sequence[str], before: Sequence[float], after: Sequence[float],
                   samples: int = BOOTSTRAP_SAMPLES, seed: int = 0) -> PairedChange:
    """Two runs' per-question scores on the same questions (in the same order) compared."""
    if not (len(ids) == len(before) == len(after)):
        raise ValueError("the two runs must score the same questions")
    old, new = np.asarray(before, dtype=float), np.asarray(after, dtype=float)
    binary = bool(np.isin(old, (0.0, 1.0)).all() and np.isin(new, (0.0, 1.0)).all())
    gained = [i for i, a, b in zip(ids, old, new) if b > a] if binary else []
    lost = [i for i, a, b in zip(ids, old, new) if b < a] if binary else []
    return PairedChange(metric, len(ids), round(float(old.mean()), 4) if len(ids) else 0.0,
                        # Differences are -1, 0 or 1, not a rate: Wilson's interval would read "no change" as 0-0.07.
                        round(float(new.mean()), 4) if len(ids) else 0.0, bootstrap_interval(new - old, samples, seed),
                        gained, lost, sign_test(len(gained), len(lost)) if binary else None)
