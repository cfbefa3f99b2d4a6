"""``run_evaluation``: one call from settings to written results, for the CLI and the dashboard.

Steps: load the model (with its stored calibration) → resolve the pipeline → (calibrate on another
split, store τ with the model) → explain and sweep the report split, resuming stored photos → choose τ
per photo (calibrated, k-fold held-out, or the model's) → write the per-photo CSV, per-class CSV,
``summary.json`` and plots atomically.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.box_correction import BoxCorrection, choose_threshold_and_correction
from core.calibration import (
    calibration_entry, choose_thresholds, cross_validate, fold_indices, save_calibration, with_calibration,
)
from core.data import open_dataset
from core.evaluate.outputs import write_outputs
from core.evaluate.pipeline import Pipeline, resolve_pipeline, sweep_split
from core.pipelines import same_maps
from core.evaluate.faithfulness import FaithfulnessTimer, cost_up_front, parse_metrics
from core.evaluate.leaderboard import (
    LEVEL, RESAMPLES, board_metrics, board_values, leaderboard, mean_curves,
)
from core.evaluate.report import (
    Choice, chosen_ious, per_class_rows, per_photo_rows, summarize, truth_fractions, with_box,
)
from core.faithfulness import perturbed_counts
from core.evaluate.store import ResultStore
from core.localize import DEFAULT_THRESHOLD
from core.metrics import CENTER_FRACTIONS, EVAL_GRID, THRESHOLDS, best_threshold_index, center_box_ious
from core.model_sources import IMAGENET_CAR_GROUP, load_model
from core.multiscale import FusedExplainer

__all__ = ["EvalRequest", "run_evaluation", "parse_split_spec"]

STORE_VERSION = 2  # 2: the largest component's box at every τ (box correction)


@dataclass(frozen=True)
class EvalRequest:
    """What to evaluate; ``None`` fields come from the model's calibration, then the defaults."""

    data: str
    split: str = "test"
    model: str = "default"
    methods: tuple[str, ...] | None = None
    layer: str | None = None
    target: str | None = None
    variant: str | None = None
    sizes: tuple[int, ...] | None = None  # input sizes fused; () = the model's own
    flip: bool | None = None
    interpolation: str | None = None
    limit: int | None = None
    batch_size: int = 16
    calibrate_on: str | None = None  # "PATH_OR_tfds:cars196:SPLIT"
    folds: int | None = None
    save_calibration: bool = False  # with folds: store τ chosen on the whole split
    box_correction: bool | None = None  # fit an affine box correction with τ (None: as the model's calibration)
    metrics: tuple[str, ...] = ()  # faithfulness metrics (core.faithfulness keys); () = localisation only

    def __post_init__(self):
        if self.limit is not None and (not isinstance(self.limit, int) or self.limit < 1):
            raise ValueError(f"limit must be a positive integer, got {self.limit!r}")
        if self.folds is not None and self.calibrate_on:
            raise ValueError("use either --calibrate-on (another split) or --folds (k-fold on this split)")
        if self.save_calibration and not self.folds:
            raise ValueError("--save-calibration needs --folds; --calibrate-on always stores its τ")


def parse_split_spec(spec: str) -> tuple[str, str]:
    """``"PATH:SPLIT"`` or ``"tfds:cars196:SPLIT"`` → (data, split)."""
    data, sep, split = str(spec).rpartition(":")
    if not sep or not data or not split or data.lower() == "tfds":
        raise ValueError(f"calibration data must read PATH:SPLIT (e.g. ../shared/data/stanford_cars:train "
                         f"or tfds:cars196:train), got {spec!r}")
    return data, split


def _same_photos(a: tuple[str, str], b: tuple[str, str]) -> bool:
    def key(data: str) -> str:
        return data.lower() if data.lower().startswith("tfds:") else str(Path(data).expanduser().resolve())
    return key(a[0]) == key(b[0]) and a[1] == b[1]


def _store_settings(bundle, data: str, split: str, pipeline: Pipeline, metrics=()) -> dict:
    model_file = bundle.file
    identity = None
    if model_file is not None and model_file.exists():
        stat = model_file.stat()
        identity = [str(model_file.resolve()), stat.st_size, int(stat.st_mtime)]
    return {"version": STORE_VERSION, "model": bundle.name, "model_file": identity, "data": data,
            "split": split, "pipeline": pipeline.as_dict(), "grid": EVAL_GRID, "thresholds": len(THRESHOLDS),
            **({"metrics": list(metrics)} if metrics else {})}


def _correctness(bundle, class_names, arrays) -> tuple[np.ndarray | None, str]:
    """Whether each prediction is right, and the rule used (None when "right" is undefined)."""
    if bundle.num_classes == len(class_names):
        return arrays["predicted"] == arrays["label"], "predicted class equals the photo's label"
    if IMAGENET_CAR_GROUP in bundle.class_groups:
        cars = np.array(bundle.class_groups[IMAGENET_CAR_GROUP])
        return np.isin(arrays["predicted"], cars), "predicted ImageNet class is one of the car classes"
    return None, "undefined: the model's classes are not the dataset's"


@dataclass(frozen=True)
class _Swept:
    dataset: object
    arrays: dict
    stats: object
    photos_per_second: float | None


class _Evaluator:
    """One model and pipeline; sweeps splits into stores under an output folder."""

    def __init__(self, request: EvalRequest, progress):
        choice = load_model(request.model)
        self.bundle = with_calibration(choice.bundle)
        self.reason = choice.reason
        self.pipeline = resolve_pipeline(self.bundle, request.methods, request.layer, request.target,
                                         request.variant, request.sizes, request.flip,
                                         request.interpolation)
        self.explainer = FusedExplainer(self.bundle, self.pipeline.recipe)
        self.methods = self.pipeline.methods
        self.request, self.progress = request, progress
        self.stored_corrections = stored_corrections(self.bundle)
        self.box_correction = (bool(self.stored_corrections) if request.box_correction is None
                               else request.box_correction)
        self.metrics = parse_metrics(request.metrics)
        self.timer = FaithfulnessTimer()

    def sweep(self, data: str, split_name: str, folder: Path, stage: str) -> "_Swept":
        dataset = open_dataset(data)
        split = dataset[split_name]
        metrics = self.metrics if stage == "evaluation" else ()
        store = ResultStore(folder, _store_settings(self.bundle, data, split_name, self.pipeline, metrics))
        stats = sweep_split(self.bundle, self.explainer, split, self.pipeline, store,
                            limit=self.request.limit, batch_size=self.request.batch_size, stage=stage,
                            progress=self.progress, metrics=metrics, timer=self.timer)
        # with a limit, the store may also hold photos from an earlier, longer run of the same settings
        arrays = store.load(split.annotations.ids[:self.request.limit] if self.request.limit else None)
        if not arrays:
            raise ValueError(f"no photo of {data} [{split_name}] could be evaluated "
                             f"({stats.skipped} unreadable: {stats.errors[:3]})")
        return _Swept(dataset, arrays, stats, store.photos_per_second())

    def calibrate(self, arrays: dict, source: str) -> tuple[dict[str, float], float, dict]:
        """τ per method and the centred-box fraction chosen on ``arrays``; the metadata entry to store."""
        mask = with_box(arrays)
        if not mask.any():
            raise ValueError(f"cannot calibrate on {source}: no photo there has a ground-truth box")
        chosen = {m: choose_thresholds(arrays[f"largest__{m}"][mask]) for m in self.methods}
        sizes = np.column_stack([arrays["height"], arrays["width"]])[mask]
        center = center_box_ious(arrays["truth"][mask], sizes)
        fraction = float(CENTER_FRACTIONS[int(np.argmax(center.mean(axis=0)))])
        taus = {m: c["mean_iou"] for m, c in chosen.items()}
        extra = {}
        if self.box_correction:
            truths = truth_fractions(arrays)[mask]
            fitted = {m: choose_threshold_and_correction(arrays[f"boxes__{m}"][mask], truths)
                      for m in self.methods}
            taus = {m: float(THRESHOLDS[index]) for m, (index, _, _) in fitted.items()}
            extra["box_corrections"] = {m: correction.as_list() for m, (_, correction, _) in fitted.items()}
        entry = calibration_entry(
            taus, f"{source} ({int(mask.sum())} photos)",
            objective="mean IoU, largest component" + (", corrected box" if self.box_correction else ""),
            tau_boxacc_0_5={m: c["boxacc@0.5"] for m, c in chosen.items()}, center_fraction=fraction,
            pipeline=self.pipeline.as_dict(), grid=EVAL_GRID, date=time.strftime("%Y-%m-%d"), **extra,
        )
        return taus, fraction, entry

    def store_calibration(self, entry: dict) -> Path:
        path = save_calibration(self.bundle.name, entry, self.bundle.file)
        metadata = {**self.bundle.metadata, **entry}
        self.bundle = self.bundle.replace(metadata=metadata)
        return path


def stored_corrections(bundle) -> dict[str, BoxCorrection]:
    """The box corrections a model's calibration holds, per method (empty when it has none)."""
    stored = (bundle.metadata.get("calibration") or {}).get("box_corrections") or {}
    return {m: BoxCorrection.from_list(rows) for m, rows in stored.items()}


def _index_of(grid, value: float) -> int:
    return int(np.argmin(np.abs(np.asarray(grid) - float(value))))


def _fixed(n: int, grid, value: float, source: str) -> Choice:
    return Choice(np.full(n, _index_of(grid, value), dtype=int), source)


def _stored_choices(bundle, pipeline: Pipeline, arrays,
                    corrections: dict[str, BoxCorrection]) -> tuple[dict[str, Choice], Choice]:
    """τ (and box correction) and centre fraction from the model's metadata (uncalibrated defaults when it
    has none)."""
    n = len(arrays["id"])
    metadata = bundle.metadata
    methods = pipeline.methods
    per_method = metadata.get("thresholds", {})
    source = metadata.get("threshold_source")
    calibrated_for = (metadata.get("calibration") or {}).get("pipeline")
    if source and calibrated_for and not same_maps(calibrated_for, pipeline.as_dict()):
        source += "; calibrated for another pipeline: " + json.dumps(calibrated_for, sort_keys=True)
    taus = {}
    for m in methods:
        value = per_method.get(m, metadata.get("threshold"))
        taus[m] = (_fixed(n, THRESHOLDS, value, f"model metadata: {source or 'stored threshold'}")
                   if value is not None else
                   _fixed(n, THRESHOLDS, DEFAULT_THRESHOLD, "uncalibrated default (CAM paper, 20% of peak)"))
        if m in corrections and m in per_method:
            taus[m] = Choice(taus[m].index, taus[m].source + " + box correction", (corrections[m],) * n)
    fraction = (metadata.get("calibration") or {}).get("center_fraction")
    if fraction is not None:
        return taus, _fixed(n, CENTER_FRACTIONS, fraction, f"model metadata: {source}")
    mask = with_box(arrays)
    sizes = np.column_stack([arrays["height"], arrays["width"]])[mask]
    best = float(CENTER_FRACTIONS[int(np.argmax(center_box_ious(arrays["truth"][mask], sizes).mean(axis=0)))])
    return taus, _fixed(n, CENTER_FRACTIONS, best, "in-sample: best on these photos (no calibration stored)")


def _kfold_corrected(boxes: np.ndarray, truths: np.ndarray, k: int) -> tuple[np.ndarray, list]:
    """Each photo's τ index and box correction, fitted together on the other k-1 folds."""
    index, corrections = np.zeros(len(boxes), dtype=int), [None] * len(boxes)
    for held_out in fold_indices(len(boxes), k):
        training = np.setdiff1d(np.arange(len(boxes)), held_out)
        t, correction, _ = choose_threshold_and_correction(boxes[training], truths[training])
        index[held_out] = t
        for i in held_out:
            corrections[i] = correction
    return index, corrections


def _kfold_choices(methods, arrays, k: int, box_correction: bool = False) -> tuple[dict[str, Choice], Choice]:
    """Each photo's τ (and centre fraction, and box correction) chosen on the other k-1 folds; photos
    without a box (not scored) get the τ chosen on every scored photo, for their drawn box."""
    mask = with_box(arrays)
    n = len(mask)
    source = f"{k}-fold: chosen on the other folds (held-out)"
    taus = {}
    for m in methods:
        curves = arrays[f"largest__{m}"][mask]
        index = np.full(n, best_threshold_index(curves), dtype=int)
        if not box_correction:
            index[mask] = cross_validate(curves, k)[1]
            taus[m] = Choice(index, source)
            continue
        truths = truth_fractions(arrays)[mask]
        everyone, correction, _ = choose_threshold_and_correction(arrays[f"boxes__{m}"][mask], truths)
        index[:] = everyone
        corrections = [correction] * n
        held_index, held_corrections = _kfold_corrected(arrays[f"boxes__{m}"][mask], truths, k)
        index[mask] = held_index
        for position, i in enumerate(np.flatnonzero(mask)):
            corrections[i] = held_corrections[position]
        taus[m] = Choice(index, source + " + box correction", tuple(corrections))
    sizes = np.column_stack([arrays["height"], arrays["width"]])[mask]
    fraction = np.zeros(n, dtype=int)
    fraction[mask] = cross_validate(center_box_ious(arrays["truth"][mask], sizes), k)[1]
    return taus, Choice(fraction, source)


def _leaderboard(evaluator: "_Evaluator", arrays: dict, taus: dict[str, Choice], correct) -> dict:
    """Methods × metrics with bootstrap intervals, the mean curves and what the metrics cost."""
    methods, metrics = evaluator.methods, evaluator.metrics
    ious = {m: chosen_ious(arrays, m, taus[m]) for m in methods}
    columns = board_metrics(metrics, correct is not None)
    values = board_values(arrays, methods, ious, correct, metrics)
    rows = leaderboard(values, {c["key"]: c["higher_is_better"] for c in columns})
    height, width = evaluator.explainer.explainers[0].bundle.input_size
    board = {"metrics": columns, "rows": rows, "level": LEVEL, "resamples": RESAMPLES,
             "tau_source": taus[methods[0]].source}
    if metrics:
        board["curves"] = mean_curves(arrays, methods, metrics)
        board["curve_fractions"] = (perturbed_counts(height * width) / (height * width)).round(5).tolist()
        board["cost"] = {"forward_passes_per_photo": cost_up_front(metrics, len(methods), height * width),
                         "ms_per_photo_per_method": evaluator.timer.per_photo_ms(len(methods)),
                         "photos_timed": evaluator.timer.photos, "input": f"{width}×{height}"}
    return board


def run_evaluation(request: EvalRequest, out: str | Path, progress=None) -> dict:
    """Evaluate ``request`` and write results to ``out``; returns the summary (also in summary.json).

    ``progress(Progress)`` is called after every stored batch (``core.evaluate.pipeline.Progress``: stage,
    done, total, rate, eta). To stop early, raise from it (or interrupt): finished batches stay in
    ``out/.partial`` and the same call later resumes from them.
    """
    out = Path(out)
    evaluator = _Evaluator(request, progress)
    calibration_info = None
    taus = fraction = None
    if request.calibrate_on:
        cal_data, cal_split = parse_split_spec(request.calibrate_on)
        if _same_photos((cal_data, cal_split), (request.data, request.split)):
            raise ValueError("refusing to calibrate on the photos being reported; calibrate on another split "
                             "or use --folds K (k-fold on this split)")
        swept = evaluator.sweep(cal_data, cal_split, out / "calibration", "calibration")
        values, center, entry = evaluator.calibrate(swept.arrays, f"{cal_data} [{cal_split}]")
        calibration_info = {**entry, "stored_in": str(evaluator.store_calibration(entry))}
    swept = evaluator.sweep(request.data, request.split, out, "evaluation")
    arrays = swept.arrays
    n = len(arrays["id"])
    if request.calibrate_on:
        taus = {m: _fixed(n, THRESHOLDS, values[m], calibration_info["threshold_source"]) for m in values}
        for m, rows in (calibration_info["calibration"].get("box_corrections") or {}).items():
            taus[m] = Choice(taus[m].index, taus[m].source + " + box correction",
                             (BoxCorrection.from_list(rows),) * n)
        fraction = _fixed(n, CENTER_FRACTIONS, center, calibration_info["threshold_source"])
    elif request.folds:
        taus, fraction = _kfold_choices(evaluator.methods, arrays, request.folds, evaluator.box_correction)
    else:
        corrections = evaluator.stored_corrections if evaluator.box_correction else {}
        taus, fraction = _stored_choices(evaluator.bundle, evaluator.pipeline, arrays, corrections)
    correct, rule = _correctness(evaluator.bundle, swept.dataset.class_names, arrays)
    summary = summarize(arrays, evaluator.methods, taus, fraction, correct, swept.photos_per_second)
    if request.folds and request.save_calibration:  # τ from every photo; k-fold says how well it carries
        _, _, entry = evaluator.calibrate(arrays, f"{request.data} [{request.split}], all photos")
        entry["calibration"]["kfold_heldout"] = {
            m: {"folds": request.folds, "mean_iou": summary[m]["mean_iou"],
                "boxacc_0.5": summary[m]["boxacc"]["0.5"]} for m in evaluator.methods}
        calibration_info = {**entry, "stored_in": str(evaluator.store_calibration(entry))}
    summary.update({
        "model": evaluator.bundle.name, "model_reason": evaluator.reason, "data": request.data,
        "split": request.split, "limit": request.limit, "pipeline": evaluator.pipeline.as_dict(),
        "pipeline_label": evaluator.pipeline.label(), "grid": EVAL_GRID, "correct_rule": rule,
        "skipped_unreadable": swept.stats.skipped, "unreadable_examples": swept.stats.errors[:5],
        "calibration": calibration_info, "folds": request.folds, "box_correction": evaluator.box_correction,
    })
    summary["leaderboard"] = _leaderboard(evaluator, arrays, taus, correct)
    rows = per_photo_rows(arrays, evaluator.methods, taus, fraction, correct, swept.dataset.class_names,
                          evaluator.bundle.class_names, evaluator.pipeline, evaluator.metrics)
    write_outputs(out, summary, rows, per_class_rows(rows, evaluator.methods, evaluator.metrics),
                  evaluator.methods)
    return summary

