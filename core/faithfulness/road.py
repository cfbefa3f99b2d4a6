"""ROAD, RemOve And Debias (Rong, Leemann, Borisov, Kasneci & Kasneci, ICML 2022), as pytorch-grad-cam
1.5.7 defines it (``ROADMostRelevantFirst``, ``ROADLeastRelevantFirst``, their ``…Average`` over the
percentiles 10, 20, …, 90, and ``ROADCombined``).

At percentile p the map's p-th percentile t (numpy's linear interpolation, compared in float32) splits
the pixels; removed pixels are filled by noisy linear imputation (``core.faithfulness.imputation``):

* MoRF (most relevant first): keep pixels with m < t, i.e. remove the (100 − p) % most relevant.
* LeRF (least relevant first): keep pixels with 1 − m < t′ (t′ the p-th percentile of 1 − m), i.e.
  remove the (100 − p) % least relevant.

Each point is score(imputed) − score(photo). MoRF should fall (lower is better), LeRF should stay near
0 (higher is better); combined = (mean LeRF − mean MoRF) / 2, higher is better. Maps are used at the
input's size (resized bilinearly when smaller). Cost per photo: one forward pass and one sparse solve per
percentile and order (18 for combined); the solves dominate. SuperLU releases the GIL, so the solves of
one chunk run on ``workers`` threads; each job draws its noise from its own seeded generator, so results
do not depend on the thread count or the chunk size.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np

from core.faithfulness.imputation import DEFAULT_NOISE, impute_removed
from core.faithfulness.maps import check_inputs, check_maps, resize_maps
from core.faithfulness.scoring import DEFAULT_CHUNK, ScoreFn, original_scores, score_in_chunks

__all__ = ["DEFAULT_WORKERS", "ORDERS", "ROAD_PERCENTILES", "kept_pixels", "road_curves"]

ROAD_PERCENTILES = (10, 20, 30, 40, 50, 60, 70, 80, 90)
ORDERS = ("morf", "lerf")
DEFAULT_WORKERS = 2  # the project's machines have 2 cores


def kept_pixels(saliency: np.ndarray, percentile: float, order: str) -> np.ndarray:
    """(H, W) bool: the pixels ROAD keeps at ``percentile`` for ``order`` "morf" or "lerf"."""
    if order not in ORDERS:
        raise ValueError(f"order must be one of {ORDERS}, got {order!r}")
    if not 0 <= percentile <= 100:
        raise ValueError(f"percentile must lie in [0, 100], got {percentile!r}")
    values = np.asarray(saliency, np.float32)
    if order == "lerf":
        values = np.float32(1.0) - values
    return values < np.float32(np.percentile(values, percentile))


def road_curves(inputs, maps, score: ScoreFn, percentiles=ROAD_PERCENTILES, orders=ORDERS,
                noise: float = DEFAULT_NOISE, seed: int | None = 0, original: np.ndarray | None = None,
                chunk: int = DEFAULT_CHUNK, workers: int = DEFAULT_WORKERS) -> dict[str, np.ndarray]:
    """{"percentiles": (P,), "morf": (N, P), "lerf": (N, P)} score changes, for the requested orders.

    ``seed`` seeds the imputation noise (None: fresh noise each call); ``noise=0`` gives the deterministic
    imputation.
    """
    inputs = check_inputs(inputs)
    count, height, width, _ = inputs.shape
    maps = resize_maps(check_maps(maps, count), height, width)
    percentiles = tuple(percentiles)
    orders = tuple(orders)
    if not percentiles or any(order not in ORDERS for order in orders) or not orders:
        raise ValueError(f"give at least one percentile and orders from {ORDERS}, "
                         f"got {percentiles}, {orders}")
    original = original_scores(inputs, score, chunk, known=original)
    jobs = np.array([(photo, o, p) for photo in range(count) for o in range(len(orders))
                     for p in range(len(percentiles))], np.int64)
    streams = np.random.SeedSequence(seed).spawn(len(jobs))

    def impute(job: int) -> np.ndarray:
        photo, o, p = jobs[job]
        keep = kept_pixels(maps[photo], percentiles[p], orders[o])
        return impute_removed(inputs[photo], keep, noise, np.random.default_rng(streams[job]))

    with ThreadPoolExecutor(max(1, workers)) as pool:
        scores = score_in_chunks(score, jobs[:, 0], lambda indices: np.stack(list(pool.map(impute, indices))),
                                 chunk)
    out: dict[str, np.ndarray] = {"percentiles": np.asarray(percentiles, np.float64)}
    for o, order in enumerate(orders):
        mine = jobs[:, 1] == o
        curve = np.empty((count, len(percentiles)))
        curve[jobs[mine, 0], jobs[mine, 2]] = scores[mine] - original[jobs[mine, 0]]
        out[order] = curve
    return out
