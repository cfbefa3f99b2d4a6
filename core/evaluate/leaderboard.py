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

import functools
from pathlib import Path

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


# -- the evaluation's board ----------------------------------------------------------------------------
BOX_METRICS = (
    ("mean_iou", "Mean IoU", "Zhou et al. 2016 (CAM); IoU of the box at the calibrated τ"),
    ("boxacc@0.5", "BoxAcc@0.5", "Choe et al., CVPR 2020: share of photos with IoU ≥ 0.5"),
    ("boxacc@0.7", "BoxAcc@0.7", "Choe et al., CVPR 2020: share of photos with IoU ≥ 0.7"),
    ("top1_loc", "Top-1 localisation", "ILSVRC: the class is right and IoU ≥ 0.5"),
)
"""Per-photo box metrics on the board (all higher-is-better)."""


def board_metrics(faithfulness: tuple[str, ...], with_correctness: bool) -> list[dict]:
    """The board's columns: key, label, paper, direction, family."""
    from core.faithfulness import metric

    columns = [{"key": k, "label": label, "paper": paper, "higher_is_better": True, "family": "box"}
               for k, label, paper in BOX_METRICS if with_correctness or k != "top1_loc"]
    for key in faithfulness:
        entry = metric(key)
        columns.append({"key": key, "label": entry.label, "paper": entry.paper,
                        "higher_is_better": entry.higher_is_better, "family": entry.family})
    return columns


def board_values(arrays: dict, methods, ious: dict[str, np.ndarray], correct, faithfulness) -> dict:
    """values[method][metric] per photo (NaN where undefined) from the stored columns and chosen IoUs."""
    has_box = ~np.isnan(arrays["truth"]).any(axis=1)
    out = {}
    for m in methods:
        iou = np.where(has_box, ious[m], np.nan)
        row = {"mean_iou": iou,
               "boxacc@0.5": np.where(has_box, (iou >= 0.5).astype(float), np.nan),
               "boxacc@0.7": np.where(has_box, (iou >= 0.7).astype(float), np.nan)}
        if correct is not None:
            row["top1_loc"] = np.where(has_box, ((iou >= 0.5) & np.asarray(correct, bool)).astype(float), np.nan)
        for key in faithfulness:
            column = arrays.get(f"faith__{key}__{m}")
            if column is not None:
                row[key] = column.astype(np.float64)
        out[m] = row
    return out


def mean_curves(arrays: dict, methods, faithfulness) -> dict:
    """Mean deletion/insertion curves per method (the Evaluate page's curve plot)."""
    out = {}
    for key in faithfulness:
        per_method = {m: np.nanmean(arrays[f"curve__{key}__{m}"], axis=0).round(5).tolist()
                      for m in methods if f"curve__{key}__{m}" in arrays}
        if per_method:
            out[key] = per_method
    return out


# -- the shipped board and a method's standing ------------------------------------------------------------
def shipped_leaderboards() -> list[dict]:
    """The boards the project ships (``assets/leaderboard.json``: numbers only, no images), main first.

    Read once per version of the file (every page run asks for it): treat the boards as read-only.
    """
    from core.paths import ASSETS_DIR

    path = ASSETS_DIR / "leaderboard.json"
    try:
        stamp = path.stat().st_mtime_ns
    except OSError:
        stamp = None
    return _read_boards(str(path), stamp)


@functools.lru_cache(maxsize=2)
def _read_boards(path: str, stamp: int | None) -> list[dict]:
    from core.files import read_json_object

    return list(read_json_object(Path(path)).get("boards", []))


def standing(board: dict, method: str) -> list[dict]:
    """Where ``method`` stands on ``board``: per metric its rank, of how many ranked methods, and mean."""
    row = next((r for r in board.get("rows", []) if r["method"] == method), None)
    if row is None:
        return []
    out = []
    for column in board.get("metrics", []):
        cell = row[column["key"]]
        ranked = sum(1 for r in board["rows"] if r[column["key"]]["rank"] is not None)
        if cell["rank"] is not None:
            out.append({"key": column["key"], "label": column["label"], "rank": cell["rank"], "of": ranked,
                        "mean": cell["mean"], "higher_is_better": column["higher_is_better"]})
    return out
