"""Methods × metrics with bootstrap 95 % intervals: the table that answers "which method should I trust?".

Every metric on the board is a mean of per-photo values (an IoU, a 0/1 hit, an AUC, a confidence drop), so
one rule serves all: the mean over the photos where the value is defined, a percentile bootstrap interval
over those photos (``scipy.stats.bootstrap``, seeded, so a rerun gives the same board), the number of
photos, and the method's rank (1 = best, by the metric's own direction; ties share the better rank).

>>> board = leaderboard({"a": {"iou": np.array([1.0, 0.5])}, "b": {"iou": np.array([0.5, 0.75])}},
...                     {"iou": True}, resamples=200)
>>> [(row["method"], row["iou"]["mean"], row["iou"]["rank"]) for row in board]
[('a', 0.75, 1), ('b', 0.625, 2)]
"""

from __future__ import annotations

import numpy as np
from scipy.stats import bootstrap

__all__ = ["interval", "leaderboard", "LEVEL"]

LEVEL = 0.95
RESAMPLES = 2000


def interval(values, resamples: int = RESAMPLES, level: float = LEVEL, seed: int = 0) -> dict:
    """Mean, bootstrap interval and count of the finite entries of ``values`` (None when there are none)."""
    finite = np.asarray(values, dtype=np.float64)
    finite = finite[np.isfinite(finite)]
    n = int(finite.size)
    if n == 0:
        return {"mean": None, "low": None, "high": None, "n": 0}
    mean = float(finite.mean())
    if n == 1 or np.ptp(finite) == 0:
        return {"mean": mean, "low": mean, "high": mean, "n": n}
    result = bootstrap((finite,), np.mean, n_resamples=resamples, confidence_level=level,
                       method="percentile", vectorized=True, rng=np.random.default_rng(seed))
    low, high = result.confidence_interval
    return {"mean": mean, "low": float(low), "high": float(high), "n": n}


def _ranks(means: list[float | None], higher_is_better: bool) -> list[int | None]:
    """Competition ranks (1, 2, 2, 4) of the defined means; None stays unranked."""
    defined = [m for m in means if m is not None]
    ordered = sorted(defined, reverse=higher_is_better)
    return [None if m is None else ordered.index(m) + 1 for m in means]


def leaderboard(values: dict[str, dict[str, np.ndarray]], higher_is_better: dict[str, bool],
                resamples: int = RESAMPLES, seed: int = 0) -> list[dict]:
    """One row per method: ``{"method": m, metric: {"mean", "low", "high", "n", "rank"}, ...}``.

    ``values[method][metric]`` holds per-photo values (NaN where undefined); ``higher_is_better`` names
    the metrics on the board and their direction.
    """
    methods = list(values)
    rows = [{"method": m} for m in methods]
    for metric, higher in higher_is_better.items():
        cells = [interval(values[m].get(metric, np.array([])), resamples, seed=seed) for m in methods]
        for row, cell, rank in zip(rows, cells, _ranks([c["mean"] for c in cells], higher)):
            row[metric] = {**cell, "rank": rank}
    return rows
