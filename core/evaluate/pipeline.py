"""How every photo of a split is explained and swept: the settings, and the batch loop that fills a store.

Per batch: the photos (decoded ahead in threads by ``core.data.iter_batches``) go through the compiled
explanation (one call per input view), then each method's raw map is put on the evaluation grid and swept
over τ once (``core.metrics.threshold_sweep``); the sweeps of one batch run in a worker thread while the
network computes the next batch (OpenCV and TensorFlow both release the GIL).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from core.data import StreamStats, iter_batches
from core.evaluate.faithfulness import batch_faithfulness
from core.evaluate.maps import grid_heatmap, to_grid
from core.evaluate.store import ResultStore
from core.methods import resolve as resolve_methods
from core.metrics import EVAL_GRID, THRESHOLDS, threshold_sweep
from core.multiscale import FusedExplainer, InputRecipe
from core.pipelines import Pipeline, target_for

__all__ = ["Pipeline", "resolve_pipeline", "Progress", "sweep_split", "target_for"]

@dataclass(frozen=True)
class Progress:
    """What a progress callback receives: the stage ("calibration" or "evaluation") and counts."""

    stage: str
    done: int
    total: int
    elapsed: float  # seconds spent on this stage's new photos in this run
    new: int  # photos computed in this run (the rest were resumed from disk)

    @property
    def rate(self) -> float:
        return self.new / self.elapsed if self.elapsed > 0 else 0.0

    @property
    def eta(self) -> float | None:
        if self.done >= self.total:
            return 0.0
        return (self.total - self.done) / self.rate if self.rate > 0 else None


def resolve_pipeline(bundle, methods=None, layer=None, target=None, variant=None, sizes=None, flip=None,
                     interpolation=None) -> Pipeline:
    """Fill what the caller left as None from the model's calibration (the pipeline its τ was chosen
    for), then from the plain defaults (the model's input size, predicted class, bilinear)."""
    stored = (bundle.metadata.get("calibration") or {}).get("pipeline", {})
    stored_recipe = InputRecipe.from_dict(stored.get("recipe", {}))
    methods = resolve_methods("both" if methods is None else methods, bundle.cam_head is not None)
    return Pipeline(
        methods=tuple(methods),
        layer=layer if layer is not None else stored.get("layer"),
        target=str(target if target is not None else stored.get("target", "predicted")),
        variant=variant or stored.get("variant", "paper"),
        recipe=InputRecipe(tuple(sizes) if sizes is not None else stored_recipe.sizes,
                           bool(flip) if flip is not None else stored_recipe.flip),
        interpolation=interpolation or stored.get("interpolation", "bilinear"),
    )


def _sweep_batch(records, raws, methods, pipeline: Pipeline, extra=None) -> dict[str, np.ndarray]:
    """Columns of one batch (see ``core.evaluate.store``): class scores, raw maps and τ curves, plus
    ``extra`` ones (the faithfulness metrics)."""
    n, t = len(records), len(THRESHOLDS)
    columns = {
        "id": np.array([r.id for r in records]),
        "label": np.array([-1 if r.label is None else r.label for r in records], dtype=np.int64),
        "height": np.array([r.image.shape[0] for r in records], dtype=np.int64),
        "width": np.array([r.image.shape[1] for r in records], dtype=np.int64),
        "truth": np.array([(np.nan,) * 4 if r.box is None else r.box for r in records], dtype=np.float64),
        "predicted": np.array([raw.predicted_class for raw in raws], dtype=np.int64),
        "score": np.array([raw.probabilities[raw.predicted_class] for raw in raws], dtype=np.float64),
    }
    for method, layer in methods:
        largest, best = np.full((n, t), np.nan), np.full((n, t), np.nan)
        boxes = np.full((n, t, 4), np.nan)
        for i, (record, raw) in enumerate(zip(records, raws)):
            if record.box is None:
                continue
            heat = grid_heatmap(raw.maps[(method, layer)], method, pipeline.variant, EVAL_GRID,
                                pipeline.interpolation)
            sweep = threshold_sweep(heat, to_grid(record.box, *record.image.shape[:2]))
            largest[i], best[i], boxes[i] = sweep.largest, sweep.best, sweep.boxes / EVAL_GRID
        columns[f"map__{method}"] = np.stack([raw.maps[(method, layer)] for raw in raws]).astype(np.float32)
        columns[f"largest__{method}"] = largest.astype(np.float32)
        columns[f"best__{method}"] = best.astype(np.float32)
        columns[f"boxes__{method}"] = boxes.astype(np.float32)  # fractions of the photo, for box correction
    columns.update(extra or {})
    return columns


def sweep_split(bundle, explainer: FusedExplainer, split, pipeline: Pipeline, store: ResultStore, *,
                limit: int | None = None, batch_size: int = 16, stage: str = "evaluation",
                progress: Callable[[Progress], None] | None = None, metrics: tuple[str, ...] = (),
                timer=None) -> StreamStats:
    """Explain and sweep every photo of ``split`` (the first ``limit``) not yet in ``store``; with
    ``metrics``, also score each method's faithfulness (``core.evaluate.faithfulness``)."""
    indices = range(len(split)) if limit is None else range(min(int(limit), len(split)))
    done = store.done_ids()
    todo = [i for i in indices if split.annotations.ids[i] not in done]
    total, finished = len(indices), len(indices) - len(todo)
    methods = explainer.check_request(pipeline.methods, pipeline.layer)
    target = target_for(bundle, pipeline.target)
    stats = StreamStats()
    report = progress or (lambda _p: None)
    report(Progress(stage, finished, total, 0.0, 0))
    started = last = time.perf_counter()
    new = 0

    def store_batch(future) -> None:
        nonlocal finished, new, last
        columns = future.result()
        now = time.perf_counter()
        store.append(columns, now - last)  # chunk times add up to the wall time of this run
        last = now
        finished += len(columns["id"])
        new += len(columns["id"])
        report(Progress(stage, finished, total, now - started, new))

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="sweep") as pool:
        pending = None
        whole = len(todo) == len(split)  # lets a source with a sequential reader (tfds) use it
        for records in iter_batches(split, batch_size, indices=None if whole else todo, stats=stats):
            raws = explainer.explain([r.image for r in records], pipeline.methods, pipeline.layer,
                                     target, pipeline.variant, batch_size)
            extra = batch_faithfulness(explainer.explainers[0], records, raws, methods, metrics,
                                       pipeline.variant, timer) if metrics else None
            if pending is not None:
                store_batch(pending)
            pending = pool.submit(_sweep_batch, records, raws, methods, pipeline, extra)
        if pending is not None:
            store_batch(pending)
    return stats
