"""Localisation levers on top of the default pipeline, k-fold on the shared Stanford Cars photos.

The default pipeline (offline MobileNetV2, 224 + 704 px, horizontal flip, ImageNet car classes) is the
starting point. Levers, each alone and combined, every one with its free parameters chosen on the other
folds (5 folds × 3 seeds, held-out values averaged):

* **method**: the per-method calibrated τ of CAM, Grad-CAM, Grad-CAM++, XGrad-CAM, LayerCAM;
* **layer fusion**: LayerCAM / Grad-CAM++ of ``out_relu + block_16_project_BN + block_13_expand_relu``
  (tanh(2·M) per layer, element-wise max, as the product's ``a+b+c`` layer spec does);
* **box correction**: a least-squares affine map from the τ box's sides (fractions of the photo) to the
  truth's, fitted on the other folds (each side regressed on the four sides and 1);
* **GrabCut**: OpenCV's GrabCut on the photo (long side 320 px), seeded by the map: probable foreground
  where the map reaches τ, sure foreground where it reaches ``τ_sure``, probable background elsewhere;
  the box is the largest foreground region's rectangle. τ is chosen per fold from a coarse grid.

    .venv/bin/python bench/box_levers.py [--limit N] [--grabcut-methods cam,gradcampp]

Raw maps are cached in ``<cache dir>/box_levers`` (outside the project). The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
PROJECT_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT_ROOT))

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from core.boxes import paired_ious  # noqa: E402
from core.calibration import fold_indices  # noqa: E402
from core.cam import Target  # noqa: E402
from core.data import open_dataset, stream_records  # noqa: E402
from core.evaluate.maps import grid_heatmap, to_grid  # noqa: E402
from core.metrics import EVAL_GRID, THRESHOLDS, grid_box, threshold_sweep  # noqa: E402
from core.model_sources import IMAGENET_CAR_GROUP, load_model  # noqa: E402
from core.multiscale import FusedExplainer, InputRecipe  # noqa: E402
from core.paths import cache_dir  # noqa: E402

SHARED_CARS = PROJECT_ROOT.parent / "shared" / "data" / "stanford_cars"
CAM_LAYER = "out_relu"
FUSED = "out_relu+block_16_project_BN+block_13_expand_relu"
MAPS = (("cam", CAM_LAYER), ("gradcam", CAM_LAYER), ("gradcampp", CAM_LAYER), ("xgradcam", CAM_LAYER),
        ("layercam", CAM_LAYER), ("layercam", FUSED), ("gradcampp", FUSED))
FOLDS, REPEATS = 5, 3
GRABCUT_TAUS = np.round(np.arange(0.10, 0.71, 0.05), 2)
GRABCUT_SIDE = 320


def load_photos(limit):
    split = open_dataset(SHARED_CARS)["train"]
    indices = range(len(split)) if limit is None else range(min(limit, len(split)))
    return [r for r in stream_records(split, indices) if r.box is not None]


def raw_maps(records) -> dict[tuple[str, str], list[np.ndarray]]:
    """Raw maps of the default pipeline for every (method, layer), cached on disk."""
    key = hashlib.sha1(("|".join(r.id for r in records) + repr(MAPS)).encode()).hexdigest()[:10]
    path = cache_dir() / "box_levers" / f"{key}.npz"
    if path.exists():
        data = np.load(path)
        return {pair: [data[f"{i}_{n}"] for n in range(len(records))] for i, pair in enumerate(MAPS)}
    bundle = load_model("mobilenetv2-offline").bundle
    explainer = FusedExplainer(bundle, InputRecipe((224, 704), True))
    target = Target.group(bundle.class_groups[IMAGENET_CAR_GROUP], IMAGENET_CAR_GROUP)
    images = [r.image for r in records]
    out: dict[tuple[str, str], list[np.ndarray]] = {}
    for layer in (CAM_LAYER, FUSED):
        methods = tuple(m for m, l in MAPS if l == layer)
        raws = explainer.explain(images, methods, layer=layer, target=target)
        for method in methods:
            out[(method, layer)] = [r.maps[(method, layer)] for r in raws]
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, **{f"{i}_{n}": m for i, pair in enumerate(MAPS) for n, m in enumerate(out[pair])})
    return out


def grid_boxes(heat: np.ndarray) -> np.ndarray:
    """(T, 4) the largest component's box at every τ on the evaluation grid (NaN when none)."""
    return np.array([b if (b := grid_box(heat, float(t))) is not None else [np.nan] * 4 for t in THRESHOLDS])


def fit_correction(boxes: np.ndarray, truths: np.ndarray, ridge: float = 1e-3) -> np.ndarray:
    """(5, 4) affine map from box sides (fractions of the grid) to the truth's, ridge least squares."""
    ok = np.isfinite(boxes).all(axis=1)
    x = np.column_stack([boxes[ok] / EVAL_GRID, np.ones(ok.sum())])
    y = truths[ok] / EVAL_GRID
    return np.linalg.solve(x.T @ x + ridge * np.eye(5), x.T @ y)


def corrected(boxes: np.ndarray, coef: np.ndarray) -> np.ndarray:
    x = np.column_stack([boxes / EVAL_GRID, np.ones(len(boxes))])
    out = np.clip(x @ coef, 0, 1) * EVAL_GRID
    out[:, 2] = np.maximum(out[:, 2], out[:, 0] + 1)
    out[:, 3] = np.maximum(out[:, 3], out[:, 1] + 1)
    return np.where(np.isfinite(boxes), out, np.nan)


def kfold(score_of) -> np.ndarray:
    """Held-out per-photo IoU: ``score_of(train, test) -> test IoUs``, 5 folds × 3 seeds, averaged."""
    n = score_of.n
    held = np.zeros((REPEATS, n))
    for seed in range(REPEATS):
        for test in fold_indices(n, FOLDS, seed):
            train = np.setdiff1d(np.arange(n), test)
            held[seed, test] = score_of(train, test)
    return held.mean(axis=0)


class PlainTau:
    """Choose τ on the training folds by mean IoU, score the test fold (the product's calibration)."""

    def __init__(self, curves):
        self.curves, self.n = curves, len(curves)

    def __call__(self, train, test):
        return self.curves[test, int(np.argmax(self.curves[train].mean(axis=0)))]


class CorrectedTau:
    """Choose τ and the box correction together on the training folds."""

    def __init__(self, boxes, truths, step: int = 2):
        self.boxes, self.truths, self.n, self.step = boxes, truths, len(truths), step  # boxes (N, T, 4)

    def __call__(self, train, test):
        best, best_score = None, -1.0
        for t in range(0, self.boxes.shape[1], self.step):
            coef = fit_correction(self.boxes[train, t], self.truths[train])
            score = paired_ious(corrected(self.boxes[train, t], coef), self.truths[train]).mean()
            if score > best_score:
                best, best_score = (t, coef), score
        t, coef = best
        return paired_ious(corrected(self.boxes[test, t], coef), self.truths[test])


def grabcut_box(photo: np.ndarray, heat: np.ndarray, tau: float, sure: float = 0.8) -> np.ndarray | None:
    """GrabCut on the photo seeded by the map; the largest foreground region's box on the grid."""
    h, w = photo.shape[:2]
    scale = GRABCUT_SIDE / max(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    small = cv2.resize(photo, size, interpolation=cv2.INTER_AREA)
    heat_small = cv2.resize(heat, size, interpolation=cv2.INTER_LINEAR)
    peak = float(heat_small.max())
    if peak <= 1e-6:
        return None
    mask = np.full(heat_small.shape, cv2.GC_PR_BGD, np.uint8)
    mask[heat_small >= tau * peak] = cv2.GC_PR_FGD
    mask[heat_small >= sure * peak] = cv2.GC_FGD
    mask[heat_small < 0.02 * peak] = cv2.GC_BGD
    bgd, fgd = np.zeros((1, 65)), np.zeros((1, 65))
    try:
        cv2.grabCut(cv2.cvtColor(small, cv2.COLOR_RGB2BGR), mask, None, bgd, fgd, 4, cv2.GC_INIT_WITH_MASK)
    except cv2.error:
        return None
    fg = ((mask == cv2.GC_FGD) | (mask == cv2.GC_PR_FGD)).astype(np.uint8)
    count, _, stats, _ = cv2.connectedComponentsWithStats(fg, connectivity=8)
    if count < 2:
        return None
    x, y, bw, bh, _ = stats[1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))]
    sx, sy = EVAL_GRID / size[0], EVAL_GRID / size[1]
    return np.array([x * sx, y * sy, (x + bw) * sx, (y + bh) * sy], np.float64)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--grabcut-methods", default="gradcampp")
    parser.add_argument("--grabcut-taus", default=",".join(f"{t:g}" for t in GRABCUT_TAUS))
    parser.add_argument("--skip-maps-levers", action="store_true", help="GrabCut only")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    if not SHARED_CARS.exists():
        print(f"shared photos absent ({SHARED_CARS}); nothing to measure", file=sys.stderr)
        return 1
    records = load_photos(args.limit)
    start = time.perf_counter()
    maps = raw_maps(records)
    print(f"{len(records)} photos; maps in {time.perf_counter() - start:.0f} s", flush=True)
    truths = np.array([to_grid(r.box, *r.image.shape[:2]) for r in records])
    report = {"photos": len(records), "folds": FOLDS, "repeats": REPEATS, "levers": {}, "ms_per_photo": {}}

    def record(name, held):
        report["levers"][name] = {"mean_iou": float(held.mean()), "boxacc@0.5": float((held >= 0.5).mean()),
                                  "boxacc@0.7": float((held >= 0.7).mean())}
        row = report["levers"][name]
        print(f"{name:55s} mean IoU {row['mean_iou']:.3f}  BoxAcc@0.5 {row['boxacc@0.5']:.3f}  "
              f"@0.7 {row['boxacc@0.7']:.3f}", flush=True)

    heats = {}
    for method, layer in MAPS:
        label = method if layer == CAM_LAYER else f"{method} fused 3 layers"
        heats[label] = [grid_heatmap(m, method) for m in maps[(method, layer)]]
        if args.skip_maps_levers:
            continue
        curves = np.array([threshold_sweep(h, t).largest for h, t in zip(heats[label], truths)])
        record(f"{label}", kfold(PlainTau(curves)))
        t0 = time.perf_counter()
        boxes = np.stack([grid_boxes(h) for h in heats[label]])
        record(f"{label} + box correction", kfold(CorrectedTau(boxes, truths)))
        report["ms_per_photo"][f"{label} boxes at every τ"] = 1000 * (time.perf_counter() - t0) / len(records)

    images = [r.image for r in records]
    taus = [float(t) for t in args.grabcut_taus.split(",")]
    for label in filter(None, args.grabcut_methods.split(",")):
        t0 = time.perf_counter()
        table, boxes_at = np.zeros((len(records), len(taus))), np.zeros((len(records), len(taus), 4))
        for j, tau in enumerate(taus):
            boxes_at[:, j] = [b if (b := grabcut_box(p, h, tau)) is not None else [np.nan] * 4
                              for p, h in zip(images, heats[label])]
            table[:, j] = paired_ious(boxes_at[:, j], truths)
            print(f"  GrabCut {label} τ {tau:.2f}: mean IoU {table[:, j].mean():.3f}", flush=True)
        report["ms_per_photo"][f"grabcut {label}"] = \
            1000 * (time.perf_counter() - t0) / (len(records) * len(taus))
        record(f"{label} + GrabCut", kfold(PlainTau(table)))
        record(f"{label} + GrabCut + box correction", kfold(CorrectedTau(boxes_at, truths, step=1)))
    if args.out:
        args.out.write_text(json.dumps(report, indent=2))
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
