"""Stored per-photo curves + the chosen τ → the summary, the per-photo rows and the per-class table.

τ is given per photo (an index into ``core.metrics.THRESHOLDS``) so one code path serves a calibrated τ
(the same index everywhere) and k-fold evaluation (each photo scored with the τ of its fold). Only
photos with a ground-truth box count in localisation metrics; the others still get a class prediction.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from core.box_correction import BoxCorrection, corrected_ious
from core.evaluate.maps import from_grid, grid_heatmap
from core.metrics import (
    CENTER_FRACTIONS, EVAL_GRID, IOU_LEVELS, THRESHOLDS, boxacc_curve, center_box_ious, full_image_ious,
    grid_box, max_boxacc, max_boxacc_v2, scores_at,
)

__all__ = ["Choice", "with_box", "summarize", "per_photo_rows", "per_class_rows", "baseline_ious",
           "chosen_ious"]


@dataclass(frozen=True)
class Choice:
    """Per-photo indices into a swept grid (τ or centre fraction), and where they came from."""

    index: np.ndarray  # (N,) int
    source: str
    corrections: tuple[BoxCorrection | None, ...] | None = None  # per photo (k-fold: its fold's), or none

    def values(self, grid) -> np.ndarray:
        return np.asarray(grid)[self.index]

    def shown(self, grid) -> float | list[float]:
        """One value when every photo shares it, else the distinct values (k-fold)."""
        distinct = sorted({round(float(v), 4) for v in self.values(grid)})
        return distinct[0] if len(distinct) == 1 else distinct


def with_box(arrays: dict) -> np.ndarray:
    """Mask of photos that have a ground-truth box."""
    return ~np.isnan(arrays["truth"]).any(axis=1)


def baseline_ious(arrays: dict, fraction: Choice) -> tuple[np.ndarray, np.ndarray]:
    """(full-image IoU, centred-box IoU at each photo's fraction), for photos with a box."""
    mask = with_box(arrays)
    truths = arrays["truth"][mask]
    sizes = np.column_stack([arrays["height"], arrays["width"]])[mask]
    grid = center_box_ious(truths, sizes, CENTER_FRACTIONS)
    return full_image_ious(truths, sizes), grid[np.arange(len(grid)), fraction.index[mask]]


def _at(curves: np.ndarray, index: np.ndarray) -> np.ndarray:
    return curves[np.arange(len(curves)), index]


def truth_fractions(arrays: dict) -> np.ndarray:
    """(N, 4) truth boxes as fractions of each photo's width and height (NaN without a box)."""
    scale = np.column_stack([arrays["width"], arrays["height"], arrays["width"], arrays["height"]])
    return arrays["truth"] / scale


def chosen_ious(arrays: dict, method: str, tau: Choice) -> np.ndarray:
    """(N,) IoU of each photo's box at its τ — the corrected box when ``tau`` carries corrections."""
    ious = _at(arrays[f"largest__{method}"], tau.index)
    if tau.corrections is None:
        return ious
    boxes = arrays[f"boxes__{method}"][np.arange(len(tau.index)), tau.index]
    truths = truth_fractions(arrays)
    out = ious.astype(np.float64)
    for correction in {id(c): c for c in tau.corrections if c is not None}.values():
        rows = np.array([c is correction for c in tau.corrections])
        out[rows] = corrected_ious(boxes[rows], truths[rows], correction)
    return np.where(np.isnan(truths).any(axis=1), np.nan, out)


def _method_summary(arrays: dict, method: str, tau: Choice, correct, mask) -> dict:
    largest, best = arrays[f"largest__{method}"][mask], arrays[f"best__{method}"][mask]
    ious = chosen_ious(arrays, method, tau)[mask]
    scores = scores_at(ious, None if correct is None else correct[mask])
    best_acc, best_index = max_boxacc(largest)
    return {
        "tau": tau.shown(THRESHOLDS), "tau_source": tau.source, "box_correction": tau.corrections is not None,
        **scores,
        "maxboxacc": best_acc, "maxboxacc_tau": float(THRESHOLDS[best_index]),
        "maxboxaccv2": max_boxacc_v2(best),
        "curves": {
            "mean_iou": np.round(largest.mean(axis=0), 5).tolist(),
            "boxacc": {f"{d:g}": np.round(boxacc_curve(largest, d), 5).tolist() for d in IOU_LEVELS},
        },
    }


def summarize(arrays: dict, methods, taus: dict[str, Choice], fraction: Choice, correct,
              photos_per_second: float | None = None) -> dict:
    """Metrics per method and per baseline over the photos with a box (see ``core.evaluate`` docs)."""
    mask = with_box(arrays)
    if not mask.any():
        raise ValueError("none of the evaluated photos has a ground-truth box, so localisation cannot be "
                         "measured; check the dataset's annotations (python -m core.data PATH)")
    full, center = baseline_ious(arrays, fraction)
    summary = {
        "n": int(mask.sum()), "n_photos": int(len(mask)), "n_without_box": int((~mask).sum()),
        "photos_per_second": photos_per_second,
        "thresholds": THRESHOLDS.tolist(),
        "classification_accuracy": None if correct is None else float(np.mean(correct)),
    }
    for method in methods:
        summary[method] = _method_summary(arrays, method, taus[method], correct, mask)
    summary["baselines"] = {
        "full_image": {"mean_iou": float(full.mean()), "median_iou": float(np.median(full)),
                       "boxacc": {f"{d:g}": float((full >= d).mean()) for d in IOU_LEVELS}},
        "center_box": {"fraction": fraction.shown(CENTER_FRACTIONS), "fraction_source": fraction.source,
                       "mean_iou": float(center.mean()), "median_iou": float(np.median(center)),
                       "boxacc": {f"{d:g}": float((center >= d).mean()) for d in IOU_LEVELS}},
    }
    return summary


def _photo_box(arrays: dict, i: int, method: str, tau: float, pipeline,
               correction: BoxCorrection | None = None) -> list[float] | None:
    heat = grid_heatmap(arrays[f"map__{method}"][i], method, pipeline.variant, EVAL_GRID,
                        pipeline.interpolation)
    box = grid_box(heat, tau)
    if box is None:
        return None
    if correction is not None:
        box = correction.apply(box, EVAL_GRID, EVAL_GRID)
    return [round(float(v), 1) for v in from_grid(box, int(arrays["height"][i]), int(arrays["width"][i]))]


def per_photo_rows(arrays: dict, methods, taus: dict[str, Choice], fraction: Choice, correct,
                   class_names, model_class_names, pipeline, metrics=()) -> list[dict]:
    """One dict per photo: truth, prediction, and per method the τ, the box (photo pixels), its IoU and
    each faithfulness metric's value."""
    mask = with_box(arrays)
    full, center = np.full(len(mask), np.nan), np.full(len(mask), np.nan)
    full[mask], center[mask] = baseline_ious(arrays, fraction)
    ious = {method: chosen_ious(arrays, method, taus[method]) for method in methods}
    rows = []
    for i, photo_id in enumerate(arrays["id"].tolist()):
        label, predicted = int(arrays["label"][i]), int(arrays["predicted"][i])
        row = {
            "id": photo_id, "label": label if label >= 0 else None,
            "class_name": class_names[label] if 0 <= label < len(class_names) else None,
            "height": int(arrays["height"][i]), "width": int(arrays["width"][i]),
            "truth": None if not mask[i] else [float(v) for v in arrays["truth"][i]],
            "predicted": predicted, "predicted_name": model_class_names[predicted],
            "score": float(arrays["score"][i]), "correct": None if correct is None else bool(correct[i]),
        }
        for method in methods:
            index = int(taus[method].index[i])
            row[f"{method}_tau"] = float(THRESHOLDS[index])
            correction = None if taus[method].corrections is None else taus[method].corrections[i]
            row[f"{method}_box"] = _photo_box(arrays, i, method, float(THRESHOLDS[index]), pipeline, correction)
            row[f"{method}_iou"] = float(ious[method][i]) if mask[i] else None
            for key in metrics:
                value = float(arrays[f"faith__{key}__{method}"][i])
                row[f"{method}_{key}"] = None if np.isnan(value) else value
        row["full_image_iou"] = float(full[i]) if mask[i] else None
        row["center_box_iou"] = float(center[i]) if mask[i] else None
        rows.append(row)
    return rows


def _unknown_last(item) -> tuple:
    label = item[0][0]
    return (label is None, label or 0)


def per_class_rows(rows: list[dict], methods, metrics=()) -> list[dict]:
    """Per ground-truth class: photos, classification accuracy and each method's mean IoU / BoxAcc@0.5
    (and mean of each faithfulness metric)."""
    groups: dict[tuple, list[dict]] = {}
    for row in rows:
        groups.setdefault((row["label"], row["class_name"]), []).append(row)
    table = []
    for (label, name), members in sorted(groups.items(), key=_unknown_last):
        scored = [r for r in members if r["truth"] is not None]
        right = [r["correct"] for r in members if r["correct"] is not None]
        entry = {"label": label, "class_name": name, "n": len(members),
                 "accuracy": float(np.mean(right)) if right else None}
        for method in methods:
            ious = np.array([r[f"{method}_iou"] for r in scored], dtype=float)
            entry[f"{method}_mean_iou"] = float(ious.mean()) if ious.size else None
            entry[f"{method}_boxacc_0.5"] = float((ious >= 0.5).mean()) if ious.size else None
            for key in metrics:
                values = [r[f"{method}_{key}"] for r in members if r[f"{method}_{key}"] is not None]
                entry[f"{method}_{key}"] = float(np.mean(values)) if values else None
        table.append(entry)
    return table
