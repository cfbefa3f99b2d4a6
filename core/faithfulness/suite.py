"""One call per batch of photos: every requested faithfulness metric, sharing forward passes.

>>> results = evaluate_faithfulness(inputs, maps, score, metrics=("deletion", "avg_drop"))
>>> results["deletion"].shape, results["deletion_curve"].shape  # (N,), (N, 21) at 224 px
"""

from __future__ import annotations

import numpy as np

from core.faithfulness.confidence import confidence_change
from core.faithfulness.deletion_insertion import (
    BASELINES,
    DEFAULT_STEPS,
    area_under_curve,
    deletion_insertion_curves,
)
from core.faithfulness.imputation import DEFAULT_NOISE
from core.faithfulness.maps import check_inputs, check_maps
from core.faithfulness.pointing import POINTING_TOLERANCE, energy_pointing_game, pointing_game
from core.faithfulness.registry import DEFAULT_METRICS, metric
from core.faithfulness.road import ROAD_PERCENTILES, road_curves
from core.faithfulness.scoring import DEFAULT_CHUNK, ScoreFn, original_scores

__all__ = ["evaluate_faithfulness"]


def _kind(key: str) -> str:
    return "deletion" if key.startswith("deletion") else "insertion"


def _curves(inputs, maps, score, chosen, steps, original, chunk, baselines) -> dict[str, np.ndarray]:
    out = {}
    for baseline in ("zero", "blur"):
        wanted = [m for m in chosen if m.family == "curve" and m.baseline == baseline]
        if not wanted:
            continue
        if baseline not in baselines:
            baselines[baseline] = BASELINES[baseline](inputs)
        kinds = tuple(dict.fromkeys(_kind(m.key) for m in wanted))
        curves = deletion_insertion_curves(inputs, maps, score, baselines[baseline], kinds, steps, original,
                                           chunk)
        for m in wanted:
            kind = _kind(m.key)
            out[m.key] = area_under_curve(curves["fractions"], curves[kind])
            out[f"{m.key}_curve"] = curves[kind]
        out["curve_fractions"] = curves["fractions"]
    return out


def _road(inputs, maps, score, chosen, percentiles, noise, seed, original, chunk) -> dict[str, np.ndarray]:
    keys = {m.key for m in chosen if m.family == "road"}
    if not keys:
        return {}
    orders = tuple(o for o in ("morf", "lerf") if f"road_{o}" in keys or "road_combined" in keys)
    curves = road_curves(inputs, maps, score, percentiles, orders, noise, seed, original, chunk)
    means = {order: curves[order].mean(axis=1) for order in orders}
    out = {"road_percentiles": curves["percentiles"]}
    for order in orders:
        out[f"road_{order}_curve"] = curves[order]
        if f"road_{order}" in keys:
            out[f"road_{order}"] = means[order]
    if "road_combined" in keys:
        out["road_combined"] = (means["lerf"] - means["morf"]) / 2
    return out


def _pointing(maps, chosen, boxes, image_shapes, tolerance) -> dict[str, np.ndarray]:
    keys = [m.key for m in chosen if m.family == "pointing"]
    if not keys:
        return {}
    if boxes is None or len(boxes) != len(maps):
        raise ValueError(f"{', '.join(keys)} need one ground-truth box (or (K, 4) boxes) per photo: "
                         f"got {'none' if boxes is None else len(boxes)} for {len(maps)} photos")
    shapes = [None] * len(maps) if image_shapes is None else list(image_shapes)
    if len(shapes) != len(maps):
        raise ValueError(f"{len(shapes)} image shapes for {len(maps)} photos")
    out = {}
    if "pointing_game" in keys:
        out["pointing_game"] = np.array([float(pointing_game(m, b, tolerance, s))
                                         for m, b, s in zip(maps, boxes, shapes, strict=True)])
    if "energy_pointing_game" in keys:
        out["energy_pointing_game"] = np.array([energy_pointing_game(m, b, s)
                                                for m, b, s in zip(maps, boxes, shapes, strict=True)])
    return out


def evaluate_faithfulness(inputs, maps, score: ScoreFn, metrics=DEFAULT_METRICS, boxes=None,
                          image_shapes=None, *, steps: int = DEFAULT_STEPS, percentiles=ROAD_PERCENTILES,
                          road_noise: float = DEFAULT_NOISE, seed: int | None = 0,
                          tolerance: float = POINTING_TOLERANCE, chunk: int = DEFAULT_CHUNK) -> dict:
    """Per-photo values of ``metrics`` (keys of ``core.faithfulness.METRICS``) for one batch.

    ``inputs`` (N, H, W, 3): preprocessed model inputs; ``maps`` (N, h, w): one map per photo (any
    resolution; larger = more salient); ``score``: see ``core.faithfulness.scoring``. ``boxes``: per photo
    a (4,) or (K, 4) box in photo pixels, needed by the pointing games, with ``image_shapes`` (N × (H, W))
    the photos' sizes when the maps are not at photo size.

    Returns {key: (N,)} for each metric, plus ``original_score`` (N,), ``{key}_curve`` (N, T) with
    ``curve_fractions`` (T,) for deletion/insertion and ``road_{morf,lerf}_curve`` (N, P) with
    ``road_percentiles`` (P,) for ROAD.
    """
    chosen = [metric(key) for key in dict.fromkeys(metrics)]
    if not chosen:
        raise ValueError("no faithfulness metric requested")
    maps = check_maps(maps)
    out = _pointing(maps, chosen, boxes, image_shapes, tolerance)
    if all(m.family == "pointing" for m in chosen):
        return out
    inputs = check_inputs(inputs)
    maps = check_maps(maps, len(inputs))
    original = original_scores(inputs, score, chunk)
    out["original_score"] = original
    out.update(_curves(inputs, maps, score, chosen, steps, original, chunk, {}))
    if any(m.family == "confidence" for m in chosen):
        change = confidence_change(inputs, maps, score, original, chunk)
        out.update({m.key: change[m.key] for m in chosen if m.family == "confidence"})
    out.update(_road(inputs, maps, score, chosen, percentiles, road_noise, seed, original, chunk))
    return out
