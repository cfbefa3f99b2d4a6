"""Choosing the box threshold τ on calibration photos, storing it with the model, and k-fold checks.

A τ picked on the photos it is then scored on flatters the result, so τ is always chosen on other photos:
a separate split (``python -m core.evaluate --calibrate-on``) or, when there is only one small set, the
other folds of a k-fold split (:func:`cross_validate`: every photo is scored with a τ chosen without it).

Where calibrations live (read by :func:`calibration_for`, written by :func:`save_calibration`):

* a ``.keras`` model: its sidecar ``<stem>.meta.json`` (``core.model_sources`` already reads it into
  ``bundle.metadata``), keys ``threshold``, ``thresholds``, ``threshold_source``, ``calibration``;
* a built-in model (MobileNetV2 offline, ResNet50, …): ``<models dir>/calibration.json`` (``models/``
  or ``$CAM_EXPLORER_MODELS``; not committed), one entry per model name, written by a calibration run on
  this machine; when it has no entry, ``assets/calibration.json`` if the project ships one.

Each entry also records the pipeline its τ was chosen for (input sizes, flip, target, variant,
upsampling): τ only carries over to maps made the same way.

:func:`with_calibration` puts an entry into a bundle's ``metadata``, so every consumer (dashboard, CLIs)
reads ``bundle.metadata["threshold"]`` / ``["thresholds"][method]`` / ``["threshold_source"]``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from core.files import read_json_object, write_atomically
from core.metrics import THRESHOLDS, best_threshold_index
from core.paths import ASSETS_DIR, models_dir, sidecar_path

__all__ = [
    "CALIBRATION_FILE", "SHIPPED_CALIBRATION", "fold_indices", "cross_validate", "choose_thresholds",
    "calibration_entry", "save_calibration", "calibration_for", "with_calibration", "shipped_calibrations",
    "calibration_rows",
]

CALIBRATION_FILE = "calibration.json"
SHIPPED_CALIBRATION = ASSETS_DIR / CALIBRATION_FILE
_METADATA_KEYS = ("threshold", "thresholds", "threshold_source", "calibration")


# -- choosing τ -------------------------------------------------------------------------------------------
def fold_indices(n: int, k: int, seed: int = 0) -> list[np.ndarray]:
    """``k`` disjoint index arrays covering ``range(n)`` (a seeded shuffle, sizes differing by at most 1)."""
    if not isinstance(k, (int, np.integer)) or k < 2:
        raise ValueError(f"k must be an integer of at least 2, got {k!r}")
    if n < k:
        raise ValueError(f"cannot split {n} photos into {k} folds; use k ≤ {n}")
    order = np.random.default_rng(seed).permutation(n)
    return [np.sort(part) for part in np.array_split(order, k)]


def choose_thresholds(curves, thresholds=THRESHOLDS) -> dict:
    """τ maximising mean IoU and τ maximising BoxAcc@0.5 over (N, T) largest-component curves."""
    return {
        "mean_iou": float(thresholds[best_threshold_index(curves, "mean_iou")]),
        "boxacc@0.5": float(thresholds[best_threshold_index(curves, "boxacc@0.5")]),
    }


def cross_validate(curves, k: int = 5, seed: int = 0,
                   objective: str = "mean_iou") -> tuple[np.ndarray, np.ndarray]:
    """Held-out IoU of every photo with τ chosen on the other ``k - 1`` folds.

    Returns ``(ious, tau_index)``: per-photo IoU at its fold's τ, and that τ's index per photo.
    """
    arr = np.asarray(curves, dtype=np.float64)
    ious, chosen = np.empty(arr.shape[0]), np.empty(arr.shape[0], dtype=int)
    for held_out in fold_indices(arr.shape[0], k, seed):
        training = np.setdiff1d(np.arange(arr.shape[0]), held_out)
        index = best_threshold_index(arr[training], objective)
        ious[held_out] = arr[held_out, index]
        chosen[held_out] = index
    return ious, chosen


# -- storing τ with the model -----------------------------------------------------------------------------
def calibration_entry(thresholds: dict[str, float], source: str, **details) -> dict:
    """The metadata keys a calibration adds: per-method τ, the first method's τ as ``threshold``, and
    what it was calibrated on (shown next to the dashboard's default threshold)."""
    if not thresholds:
        raise ValueError("no thresholds to store: calibrate at least one method")
    for method, value in thresholds.items():
        if not 0.0 <= float(value) <= 1.0:
            raise ValueError(f"threshold for {method!r} must be within [0, 1], got {value!r}")
    first = "cam" if "cam" in thresholds else next(iter(thresholds))
    return {
        "threshold": float(thresholds[first]),
        "thresholds": {method: float(value) for method, value in thresholds.items()},
        "threshold_source": source,
        "calibration": details,
    }


def _write_json(path: Path, payload: dict) -> None:
    write_atomically(path, json.dumps(payload, indent=2, sort_keys=True))


def save_calibration(model_name: str, entry: dict, model_path: str | Path | None = None,
                     folder: Path | None = None) -> Path:
    """Store ``entry`` (from :func:`calibration_entry`): into a ``.keras`` model's sidecar when
    ``model_path`` is given (other sidecar keys kept), else under ``model_name`` in
    ``<folder or models dir>/calibration.json``. Returns the file written."""
    if model_path is not None:
        path = sidecar_path(model_path)
        data = read_json_object(path)
        data.update(entry)
    else:
        path = (folder or models_dir()) / CALIBRATION_FILE
        data = read_json_object(path)
        data[model_name] = entry
    _write_json(path, data)
    return path


def calibration_for(model_name: str, folder: Path | None = None) -> dict:
    """A built-in model's calibration: this machine's (models dir) first, else the shipped one, else {}."""
    for path in ((folder or models_dir()) / CALIBRATION_FILE, SHIPPED_CALIBRATION):
        entry = read_json_object(path).get(model_name)
        if entry:
            return entry
    return {}


def with_calibration(bundle, folder: Path | None = None):
    """``bundle`` with its calibration in ``metadata`` (a ``.keras`` sidecar's own keys win)."""
    if "threshold" in bundle.metadata:
        return bundle
    entry = calibration_for(bundle.name, folder)
    if not entry:
        return bundle
    metadata = dict(bundle.metadata)
    metadata.update({key: entry[key] for key in _METADATA_KEYS if key in entry})
    return bundle.replace(metadata=metadata)


# -- what a calibration holds, as a table -------------------------------------------------------------------
def shipped_calibrations() -> dict[str, dict]:
    """The calibrations the project ships (``assets/calibration.json``): model name → entry."""
    return read_json_object(SHIPPED_CALIBRATION)


def calibration_rows(entry: dict) -> list[dict]:
    """One row per (pipeline, method) of a calibration ``entry``: τ and the k-fold held-out scores.

    Methods come in the registry's order. Keys: ``pipeline`` (its label), ``method``, ``tau`` (maximising mean IoU on the calibration photos),
    ``heldout_mean_iou`` (each photo scored with τ chosen on the other folds), ``heldout_boxacc_0.5`` and
    ``tau_boxacc_0.5`` (τ maximising BoxAcc@0.5) where the entry records them, else None.
    """
    from core.methods import METHODS
    from core.pipelines import calibrated_pipelines

    order = {name: i for i, name in enumerate(METHODS)}

    calibration = entry.get("calibration") or {}
    main_boxacc = {m: v.get("boxacc_0.5") for m, v in (calibration.get("kfold_heldout") or {}).items()
                   if isinstance(v, dict)}
    rows = []
    for index, pipeline in enumerate(calibrated_pipelines(entry)):
        if not pipeline.thresholds:
            continue  # the uncalibrated plain pipeline added as a fallback
        label = pipeline.pipeline.label()
        for method, tau in sorted(pipeline.thresholds.items(), key=lambda item: order.get(item[0], len(order))):
            rows.append({
                "pipeline": label, "method": method, "tau": float(tau),
                "heldout_mean_iou": pipeline.heldout_iou.get(method),
                "heldout_boxacc_0.5": main_boxacc.get(method) if index == 0 else None,
                "tau_boxacc_0.5": (calibration.get("tau_boxacc_0_5") or {}).get(method) if index == 0 else None,
            })
    return rows
