"""The faithfulness metrics of one evaluated batch: every method's map, one set of batched model calls.

Evaluation explains each batch through the pipeline's views; the metrics then perturb the photo at the
model's own input size (the first view, as the reference libraries do) and ask the model again. All
methods of a batch go through the metric functions together (their maps stacked, each row scored for
its photo's target), so a forward pass holds up to ``chunk`` perturbed inputs whatever the method.

Maps are the method's own normalisation (what the dashboard shows) before the metrics resize them. The
pointing games are scored on the photo (15 px tolerance in photo pixels); photos without a ground-truth
box get NaN there. Time per metric family is measured per batch, so the cost per photo is reported.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from core.explanation import normalization_for
from core.faithfulness import (
    METRIC_KEYS, energy_pointing_game, evaluate_faithfulness, explainer_score_fn, forward_passes, metric,
    model_inputs, pointing_game,
)
from core.faithfulness.maps import resize_maps
from core.heatmaps import normalize_map

__all__ = ["FAMILIES", "parse_metrics", "FaithfulnessTimer", "batch_faithfulness", "cost_up_front"]

FAMILIES = ("curve", "confidence", "road", "pointing")


def parse_metrics(spec) -> tuple[str, ...]:
    """``"all"``, ``"box"`` (the localisation metrics only: no faithfulness), ``"faithfulness"`` or keys."""
    if spec is None or spec == "box" or spec == ():
        return ()
    names = spec.split(",") if isinstance(spec, str) else list(spec)
    if names in (["all"], ["faithfulness"]):
        return METRIC_KEYS
    for name in names:
        metric(name)  # raises with the list of keys
    return tuple(dict.fromkeys(names))


@dataclass
class FaithfulnessTimer:
    """Seconds spent per metric family and the photos they covered (for the cost per photo)."""

    seconds: dict = field(default_factory=lambda: dict.fromkeys(FAMILIES, 0.0))
    photos: int = 0

    def per_photo_ms(self, methods: int) -> dict[str, float | None]:
        """Milliseconds per photo and per method, per family (None when none was timed)."""
        if not self.photos:
            return dict.fromkeys(FAMILIES)
        return {f: 1000 * s / (self.photos * max(methods, 1)) for f, s in self.seconds.items()}


def cost_up_front(metrics, methods: int, input_pixels: int) -> dict:
    """Forward passes per photo of each metric family (all methods), before anything runs."""
    out = {}
    for family in FAMILIES:
        keys = [k for k in metrics if metric(k).family == family]
        out[family] = 0 if not keys else methods * forward_passes(keys, input_pixels)
    return out


def _shown_map(raw: np.ndarray, method: str, variant: str) -> np.ndarray:
    relu, mode = normalization_for(method, variant)
    return normalize_map(np.asarray(raw), relu=relu, mode=mode).values


def _stacked(maps: list[np.ndarray], input_size: tuple[int, int]) -> np.ndarray:
    """(N, h, w) maps; when their sizes differ (FullGrad's input-resolution map beside 7×7 ones), all at the
    input size, resized as the metrics would resize them anyway (half-pixel bilinear)."""
    if len({m.shape for m in maps}) == 1:
        return np.stack(maps)
    return np.concatenate([resize_maps(m[None], *input_size) for m in maps])


def batch_faithfulness(explainer, records, raws, pairs, metrics, variant: str,
                       timer: FaithfulnessTimer | None = None, chunk: int = 32) -> dict[str, np.ndarray]:
    """Columns ``faith__{metric}__{method}`` (N,) and ``curve__{metric}__{method}`` (N, T) of one batch.

    ``explainer``: the model's own-size :class:`core.cam.Explainer` (its score function); ``raws``: the
    pipeline's explanations of ``records``; ``pairs``: (method, layer) as stored.
    """
    if not metrics:
        return {}
    n, methods = len(records), [m for m, _ in pairs]
    inputs = model_inputs(explainer, [r.image for r in records])
    weights = np.stack([raw.class_weights for raw in raws]).astype(np.float32)
    maps = _stacked([_shown_map(raw.maps[pair], pair[0], variant) for pair in pairs for raw in raws],
                    inputs.shape[1:3])
    tiled, tiled_weights = np.tile(inputs, (len(pairs), 1, 1, 1)), np.tile(weights, (len(pairs), 1))
    score = explainer_score_fn(explainer, tiled_weights)
    columns: dict[str, np.ndarray] = {}
    timer = timer or FaithfulnessTimer()

    def store(values: dict) -> None:
        for key, array in values.items():
            if key in METRIC_KEYS:
                for j, m in enumerate(methods):
                    columns[f"faith__{key}__{m}"] = np.asarray(array[j * n:(j + 1) * n], np.float32)
            elif key.endswith("_curve") and key[:-6] in METRIC_KEYS:
                for j, m in enumerate(methods):
                    columns[f"curve__{key[:-6]}__{m}"] = np.asarray(array[j * n:(j + 1) * n], np.float32)

    for family in ("curve", "confidence", "road"):
        keys = [k for k in metrics if metric(k).family == family]
        if keys:
            start = time.perf_counter()
            store(evaluate_faithfulness(tiled, maps, score, keys, chunk=chunk))
            timer.seconds[family] += time.perf_counter() - start
    pointing = [k for k in metrics if metric(k).family == "pointing"]
    if pointing:
        start = time.perf_counter()
        for j, m in enumerate(methods):
            for key, game in (("pointing_game", pointing_game), ("energy_pointing_game", energy_pointing_game)):
                if key not in pointing:
                    continue
                values = np.full(n, np.nan, np.float32)
                for i, record in enumerate(records):
                    if record.box is not None:
                        values[i] = float(game(maps[j * n + i], record.box, image_shape=record.image.shape[:2]))
                columns[f"faith__{key}__{m}"] = values
        timer.seconds["pointing"] += time.perf_counter() - start
    timer.photos += n
    return columns
