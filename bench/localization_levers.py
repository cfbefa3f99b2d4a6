"""What each localisation lever gives on the shared Stanford Cars train photos, with k-fold held-out τ.

Model: the offline ImageNet MobileNetV2; target: the predicted class (fixed by the 224-px view, so every
view of a photo explains the same class) or the ImageNet car classes together. For each recipe, CAM and
Grad-CAM maps of all photos are swept once over τ (``core.metrics.threshold_sweep``, 224×224 evaluation
grid); τ is chosen on 4 folds and scored on the fifth (5-fold, repeated over 3 seeds, held-out values
averaged). ``in-sample`` columns choose τ on all photos, as the issue's earlier numbers did.

Levers: target (predicted / car group), input size (224 … 768), horizontal flip averaging,
multi-scale fusion (mean of normalised maps), component rule (largest component / union of components
holding at least a share of the largest one's heatmap mass), upsampling (bilinear / bicubic), Grad-CAM
on the logit with ReLU (paper) or on the softmax probability without ReLU (the original study).

    .venv/bin/python bench/localization_levers.py [--limit N] [--recipes "a;b"] [--time "a;b"] [--out F]

Raw maps of each view are cached in ``<cache dir>/levers`` (outside the project), so reruns only sweep.
The last line printed is one JSON object with every number.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
PROJECT_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT_ROOT))

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from core.calibration import cross_validate  # noqa: E402
from core.cam import Explainer, Target  # noqa: E402
from core.data import open_dataset, stream_records  # noqa: E402
from core.evaluate.maps import grid_heatmap, to_grid  # noqa: E402
from core.metrics import (  # noqa: E402
    CENTER_FRACTIONS, THRESHOLDS, center_box_ious, max_boxacc, max_boxacc_v2, threshold_sweep,
)
from core.model_sources import IMAGENET_CAR_GROUP, load_model  # noqa: E402
from core.multiscale import at_input_size, fuse_maps  # noqa: E402
from core.paths import cache_dir  # noqa: E402

SHARED_CARS = PROJECT_ROOT.parent / "shared" / "data" / "stanford_cars"
METHODS = ("cam", "gradcam")
FOLDS, REPEATS = 5, 3


@dataclass(frozen=True)
class Recipe:
    name: str
    sizes: tuple[int, ...] = (224,)
    flip: bool = False
    target: str = "predicted"
    variant: str = "paper"
    interpolation: str = "bilinear"
    mass_share: float | None = None  # None: largest component
    notes: str = ""


RECIPES = [
    Recipe("baseline 224"),
    Recipe("car target", target="car"),
    Recipe("Grad-CAM on softmax, no ReLU (original)", variant="original"),
    Recipe("bicubic upsampling", interpolation="bicubic"),
    Recipe("mass share 0.2 (component rule)", mass_share=0.2),
    Recipe("flip", flip=True),
    Recipe("320", sizes=(320,)),
    Recipe("448", sizes=(448,)),
    Recipe("576", sizes=(576,)),
    Recipe("704", sizes=(704,)),
    Recipe("448 + flip", sizes=(448,), flip=True),
    Recipe("224+448", sizes=(224, 448)),
    Recipe("224+448 + flip", sizes=(224, 448), flip=True),
    Recipe("224+320+448 + flip", sizes=(224, 320, 448), flip=True),
    Recipe("448 + flip, car", sizes=(448,), flip=True, target="car"),
    Recipe("224+448 + flip, car", sizes=(224, 448), flip=True, target="car"),
    Recipe("224+448 + flip, car, mass 0.2", sizes=(224, 448), flip=True, target="car", mass_share=0.2),
    Recipe("448+576 + flip, car", sizes=(448, 576), flip=True, target="car"),
    Recipe("224+576 + flip, car", sizes=(224, 576), flip=True, target="car"),
    Recipe("224+640 + flip, car", sizes=(224, 640), flip=True, target="car"),
    Recipe("224+480x704 (aspect kept), car", sizes=(224, (480, 704)), target="car"),
    Recipe("224+704, car", sizes=(224, 704), target="car"),
    Recipe("224+704 + flip, car (default)", sizes=(224, 704), flip=True, target="car"),
    Recipe("224+704 + flip, car, bicubic", sizes=(224, 704), flip=True, target="car",
           interpolation="bicubic"),
    Recipe("224+768, car", sizes=(224, 768), target="car"),
]


@dataclass
class Photos:
    images: list
    boxes: np.ndarray  # (N, 4) photo pixels
    sizes: np.ndarray  # (N, 2) height, width
    ids: list = field(default_factory=list)


def load_photos(limit: int | None) -> Photos:
    split = open_dataset(SHARED_CARS)["train"]
    indices = range(len(split)) if limit is None else range(min(limit, len(split)))
    records = [r for r in stream_records(split, indices) if r.box is not None]
    return Photos([r.image for r in records], np.array([r.box for r in records]),
                  np.array([r.image.shape[:2] for r in records]), [r.id for r in records])


class ViewCache:
    """Raw maps of one view (input size, mirrored or not, target, variant) for all photos, on disk."""

    def __init__(self, bundle, photos: Photos):
        self.bundle, self.photos = bundle, photos
        self.explainers: dict[int, Explainer] = {}
        key = hashlib.sha1("|".join(photos.ids).encode()).hexdigest()[:10]
        self.folder = cache_dir() / "levers" / key
        self.folder.mkdir(parents=True, exist_ok=True)
        self._predicted: np.ndarray | None = None

    def explainer(self, size: int) -> Explainer:
        if size not in self.explainers:
            self.explainers[size] = Explainer(at_input_size(self.bundle, size))
        return self.explainers[size]

    def predicted(self) -> np.ndarray:
        """Classes the 224-px unmirrored view predicts: the class every predicted-target view explains."""
        if self._predicted is None:
            self._predicted = self.view(224, False, "predicted-own", "paper")["predicted"]
        return self._predicted

    def _targets(self, target: str):
        if target == "car":
            return Target.group(self.bundle.class_groups[IMAGENET_CAR_GROUP], IMAGENET_CAR_GROUP)
        if target == "predicted-own":
            return Target.predicted()
        return [Target.of_class(int(c)) for c in self.predicted()]

    def view(self, size: int, flip: bool, target: str, variant: str) -> dict:
        path = self.folder / f"{size}_{int(flip)}_{target}_{variant}.npz"
        if path.exists():
            data = np.load(path)
            return {key: data[key] for key in data.files}
        images = [np.ascontiguousarray(im[:, ::-1]) if flip else im for im in self.photos.images]
        raws = self.explainer(size).explain(images, METHODS, target=self._targets(target), variant=variant)
        out = {"predicted": np.array([r.predicted_class for r in raws])}
        for method in METHODS:
            maps = np.stack([next(v for (m, _), v in r.maps.items() if m == method) for r in raws])
            out[method] = maps[:, :, ::-1] if flip else maps
        np.savez(path, **out)
        return out

    def fused(self, recipe: Recipe, method: str) -> list[np.ndarray]:
        views = [self.view(size, mirrored, recipe.target, recipe.variant)[method]
                 for size in recipe.sizes for mirrored in ((False, True) if recipe.flip else (False,))]
        if len(views) == 1:
            return list(views[0])
        return [fuse_maps([v[i] for v in views], method, recipe.variant) for i in range(len(views[0]))]


def mass_share_sweep(heat: np.ndarray, truth: np.ndarray, share: float) -> np.ndarray:
    """IoU per τ of the union box of components holding ≥ ``share`` of the heaviest one's mass."""
    out = np.zeros(len(THRESHOLDS))
    peak = float(heat.max())
    if peak <= 1e-6:
        return out
    for i, t in enumerate(THRESHOLDS):
        mask = (heat >= np.float32(t * peak)).view(np.uint8)
        count, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
        mass = np.bincount(labels.ravel(), weights=heat.ravel(), minlength=count)[1:]
        keep = stats[1:][mass >= share * mass.max()]
        box = np.array([keep[:, 0].min(), keep[:, 1].min(), (keep[:, 0] + keep[:, 2]).max(),
                        (keep[:, 1] + keep[:, 3]).max()], dtype=np.float64)
        iw = max(0.0, min(box[2], truth[2]) - max(box[0], truth[0]))
        ih = max(0.0, min(box[3], truth[3]) - max(box[1], truth[1]))
        inter = iw * ih
        union = (box[2] - box[0]) * (box[3] - box[1]) + (truth[2] - truth[0]) * (truth[3] - truth[1]) - inter
        out[i] = inter / union
    return out


def curves_for(cache: ViewCache, recipe: Recipe, method: str) -> tuple[np.ndarray, np.ndarray]:
    photos = cache.photos
    largest, best = [], []
    for raw, box, (h, w) in zip(cache.fused(recipe, method), photos.boxes, photos.sizes):
        heat = grid_heatmap(raw, method, recipe.variant, interpolation=recipe.interpolation)
        truth = to_grid(box, h, w)
        sweep = threshold_sweep(heat, truth)
        if recipe.mass_share is None:
            largest.append(sweep.largest)
        else:
            largest.append(mass_share_sweep(heat, truth, recipe.mass_share))
        best.append(sweep.best)
    return np.array(largest), np.array(best)


def held_out(curves: np.ndarray, objective: str = "mean_iou") -> dict:
    """5-fold held-out mean IoU and BoxAcc@0.5, averaged over seeds, and the τ chosen."""
    means, accs, taus = [], [], []
    for seed in range(REPEATS):
        ious, chosen = cross_validate(curves, FOLDS, seed, objective)
        means.append(ious.mean())
        accs.append((ious >= 0.5).mean())
        taus.extend(THRESHOLDS[chosen].tolist())
    return {"mean_iou": float(np.mean(means)), "boxacc50": float(np.mean(accs)),
            "tau_median": float(np.median(taus)), "tau_range": [float(min(taus)), float(max(taus))]}


def evaluate(cache: ViewCache, recipe: Recipe) -> dict:
    result = {}
    for method in METHODS:
        largest, best = curves_for(cache, recipe, method)
        index = int(np.argmax(largest.mean(axis=0)))
        result[method] = {
            "heldout": held_out(largest),
            "heldout_boxacc_tau": held_out(largest, "boxacc@0.5")["boxacc50"],
            "in_sample_mean_iou": float(largest.mean(axis=0)[index]),
            "in_sample_tau": float(THRESHOLDS[index]),
            "maxboxacc": max_boxacc(largest)[0],
            "maxboxaccv2": max_boxacc_v2(best),
        }
    return result


def baselines(photos: Photos) -> dict:
    grid = center_box_ious(photos.boxes, photos.sizes, CENTER_FRACTIONS)
    held = held_out_center(grid)
    return {"full_image_mean_iou": float(grid[:, -1].mean()), "center_box_heldout_mean_iou": held,
            "center_box_in_sample": float(grid.mean(axis=0).max()),
            "center_fraction_in_sample": float(CENTER_FRACTIONS[int(np.argmax(grid.mean(axis=0)))])}


def grid_check(cache: ViewCache, tau: float = 0.41) -> dict:
    """Mean IoU of the baseline CAM at one τ: swept on the 224 grid vs boxed at photo size (dashboard)."""
    from core.boxes import iou
    from core.heatmaps import normalize_map, upsample
    from core.localize import boxes_from_heatmap

    recipe, photos = Recipe("baseline 224"), cache.photos
    index = int(np.flatnonzero(np.isclose(THRESHOLDS, tau))[0])
    grid, photo = [], []
    for raw, box, (h, w) in zip(cache.fused(recipe, "cam"), photos.boxes, photos.sizes):
        grid.append(threshold_sweep(grid_heatmap(raw, "cam"), to_grid(box, h, w)).largest[index])
        heat = np.clip(upsample(normalize_map(raw, relu=False, mode="minmax").values, int(h), int(w)), 0, 1)
        photo.append(iou(boxes_from_heatmap(heat, tau)[0].box, box))
    diff = np.abs(np.array(grid) - np.array(photo))
    return {"tau": tau, "grid_mean_iou": float(np.mean(grid)), "photo_mean_iou": float(np.mean(photo)),
            "max_abs_diff": float(diff.max()), "mean_abs_diff": float(diff.mean())}


def held_out_center(grid: np.ndarray) -> float:
    return float(np.mean([cross_validate(grid, FOLDS, seed)[0].mean() for seed in range(REPEATS)]))


def timing(cache: ViewCache, recipe: Recipe, photos: Photos, repeats: int = 5) -> float:
    """Milliseconds for one new photo explained with both methods through the recipe's views."""
    from core.multiscale import FusedExplainer, InputRecipe

    explainer = FusedExplainer(cache.bundle, InputRecipe(recipe.sizes, recipe.flip))
    target = cache._targets("car") if recipe.target == "car" else Target.predicted()
    explainer.explain(photos.images[:1], METHODS, target=target)
    times = []
    for i in range(repeats):
        start = time.perf_counter()
        explainer.explain(photos.images[i:i + 1], METHODS, target=target)
        times.append(time.perf_counter() - start)
    return 1000 * float(np.median(times))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--recipes", default=None, help="recipe names separated by ; (default: all)")
    parser.add_argument("--time", default="", help="recipe names separated by ; to time per photo")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    if not SHARED_CARS.exists():
        print(f"shared photos absent ({SHARED_CARS}); nothing to measure", file=sys.stderr)
        return 1
    bundle = load_model("mobilenetv2-offline").bundle
    photos = load_photos(args.limit)
    cache = ViewCache(bundle, photos)
    chosen = [r for r in RECIPES if args.recipes is None or r.name in args.recipes.split(";")]
    report = {"photos": len(photos.images), "folds": FOLDS, "repeats": REPEATS,
              "baselines": baselines(photos), "recipes": {}, "ms_per_photo": {}}
    print(f"{len(photos.images)} photos; baselines {report['baselines']}")
    print(f"{'recipe':40s} {'CAM held-out':>12s} {'in-sample':>10s} {'τ':>5s} {'V2':>6s}   "
          f"{'GCAM held-out':>13s} {'in-sample':>10s} {'τ':>5s} {'V2':>6s}")
    for recipe in chosen:
        start = time.perf_counter()
        row = evaluate(cache, recipe)
        report["recipes"][recipe.name] = row
        c, g = row["cam"], row["gradcam"]
        print(f"{recipe.name:40s} {c['heldout']['mean_iou']:12.3f} {c['in_sample_mean_iou']:10.3f} "
              f"{c['in_sample_tau']:5.2f} {c['maxboxaccv2']:6.3f}   {g['heldout']['mean_iou']:13.3f} "
              f"{g['in_sample_mean_iou']:10.3f} {g['in_sample_tau']:5.2f} {g['maxboxaccv2']:6.3f}"
              f"   ({time.perf_counter() - start:.0f} s)", flush=True)
    report["grid_check"] = grid_check(cache)
    print(f"224 grid vs photo-size boxes (baseline CAM): {report['grid_check']}")
    for name in filter(None, args.time.split(";")):
        recipe = next(r for r in RECIPES if r.name == name)
        report["ms_per_photo"][name] = timing(cache, recipe, photos)
        print(f"one new photo, {name}: {report['ms_per_photo'][name]:.0f} ms (CAM + Grad-CAM)")
    if args.out:
        args.out.write_text(json.dumps(report, indent=2))
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
