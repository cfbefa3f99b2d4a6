"""Command line: explain photos, write an overlay PNG per photo and one ``results.json``.

    python -m core.explain PHOTO_OR_FOLDER... --out DIR [--model M] [--method all|fast|both|KEYS]
        [--layer L] [--threshold T] [--plain] [--target predicted|car|INDEX] [--data DATASET] [--save-maps]

Maps are made the way the model's τ was calibrated (its calibrated pipeline: views, target, layer), and
each method boxes with its own calibrated τ; asking for another target or layer says the τ no longer fits.

A photo that cannot be read is reported by name and skipped; the others are still processed.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from core.methods import METHODS

if TYPE_CHECKING:  # the heavy imports (TensorFlow) wait until a run starts
    from core.cam import RawExplanation, RunOptions, Target
    from core.explanation import DisplaySettings
    from core.model_sources import DefaultChoice
    from core.multiscale import FusedExplainer
    from core.pipelines import CalibratedPipeline

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff"}


def add_pipeline_arguments(parser: argparse.ArgumentParser) -> None:
    """The options that say how maps are made and drawn (shared with ``python -m core.report``)."""
    parser.add_argument("--model", default="default",
                        help="default, resnet50, mobilenetv2, mobilenetv2-offline or a .keras file")
    parser.add_argument("--method", default="both",
                        help="all, fast (every one-pass method), both (cam,gradcam) or comma-separated keys: "
                             + ", ".join(METHODS))
    parser.add_argument("--layer", default=None,
                        help="layer for every method but CAM (default: the calibrated one); a+b+c fuses layers")
    parser.add_argument("--threshold", type=float, default=None,
                        help="box threshold τ in [0, 1] for every method (default: each method's calibrated τ)")
    parser.add_argument("--plain", action="store_true",
                        help="one view at the model's input size (faster) with the τ calibrated for it, instead "
                             "of the calibrated multi-view pipeline")
    parser.add_argument("--target", default=None,
                        help="predicted, car (ImageNet car classes together) or a class index "
                             "(default: the calibrated one)")
    parser.add_argument("--variant", default=None, choices=("paper", "original"))
    parser.add_argument("--eigen-smooth", action="store_true", help="first principal component of each map")
    parser.add_argument("--component", default="largest", choices=("largest", "all", "peak"))
    parser.add_argument("--shape", default="rect", choices=("rect", "rotated"))
    parser.add_argument("--alpha", type=float, default=0.5, help="heatmap weight in the overlay")
    parser.add_argument("--colormap", default="jet")


def _parse_args(argv):
    parser = argparse.ArgumentParser(prog="python -m core.explain", description=__doc__.split("\n\n")[0])
    parser.add_argument("photos", nargs="+", help="photo files or folders of photos")
    parser.add_argument("--out", required=True, type=Path, help="folder for overlays and results.json")
    add_pipeline_arguments(parser)
    parser.add_argument("--save-maps", action="store_true",
                        help="also write each map as .npy: the raw low-resolution one and the photo-sized one")
    parser.add_argument("--data", default=None,
                        help="dataset folder whose annotations give ground-truth boxes (matched by file name)")
    return parser.parse_args(argv)


def collect_photos(items: list[str]) -> list[Path]:
    photos = []
    for item in items:
        path = Path(item)
        if path.is_dir():
            photos.extend(sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES))
        else:
            photos.append(path)
    return photos


def ground_truth_lookup(data: str | None):
    """File name → ground-truth box from a dataset's annotations (no photo is decoded)."""
    if not data:
        return {}
    from core.data import open_dataset

    dataset = open_dataset(data)
    lookup = {}
    for split in dataset.splits.values():
        table = split.annotations
        for index, path in enumerate(table.paths):
            if path is not None and not np.isnan(table.boxes[index]).any():
                lookup[Path(path).name] = table.boxes[index]
    return lookup


def _progress(method: str, done: int, total: int) -> None:
    if done == total or done % 256 < 64:
        print(f"  {METHODS[method].label}: {done}/{total} {METHODS[method].progress_unit}", file=sys.stderr)


@dataclass(frozen=True)
class ExplainSession:
    """A loaded model and everything fixed for one run: methods, calibrated pipeline, τ, target."""

    choice: DefaultChoice
    methods: tuple[str, ...]
    calibrated: CalibratedPipeline
    note: str | None  # why the calibrated τ does not apply, when it does not
    explainer: FusedExplainer
    display: DisplaySettings
    target: Target
    options: RunOptions

    @property
    def bundle(self):
        return self.choice.bundle

    @property
    def pipeline(self):
        return self.calibrated.pipeline

    @property
    def threshold_source(self) -> str:
        return self.calibrated.source if not self.note else self.note

    def explain(self, photo: np.ndarray) -> RawExplanation:
        pipeline = self.pipeline
        return self.explainer.explain([photo], methods=self.methods, layer=pipeline.layer, target=self.target,
                                      variant=pipeline.variant, options=self.options)[0]


def start_session(args) -> ExplainSession:
    """Load the model and fix the pipeline, τ and target from the parsed pipeline options (messages go to
    stderr); ValueError, FileNotFoundError or RuntimeError for a bad option or model."""
    from core.cam import RunOptions
    from core.explanation import BoxSettings, DisplaySettings
    from core.methods import resolve
    from core.model_sources import load_model
    from core.multiscale import FusedExplainer
    from core.pipelines import calibrated_pipelines, choose_pipeline, target_for

    choice = load_model(args.model, progress=lambda message: print(message, file=sys.stderr))
    bundle = choice.bundle
    print(f"model: {bundle.name} ({choice.reason})", file=sys.stderr)
    methods = resolve(args.method, bundle.cam_head is not None)
    if "cam" in methods and bundle.cam_head is None:
        print(f"note: {bundle.cam_unavailable_reason} Skipping CAM.", file=sys.stderr)
        methods = tuple(m for m in methods if m != "cam")
    calibrated, note = choose_pipeline(calibrated_pipelines(bundle.metadata), args.plain, args.target,
                                       args.layer, args.variant)
    if note and args.threshold is None:
        print(f"note: {note}", file=sys.stderr)
    pipeline = calibrated.pipeline
    print(f"pipeline: {pipeline.label()}", file=sys.stderr)
    explainer = FusedExplainer(bundle, pipeline.recipe)
    settings = BoxSettings(threshold=args.threshold if args.threshold is not None else calibrated.threshold(methods[0]),
                           component=args.component, shape=args.shape)
    per_method = () if args.threshold is not None else calibrated.thresholds_for(methods)
    corrections = calibrated.corrections_for(methods) if per_method else ()
    display = DisplaySettings(settings, args.alpha, args.colormap, per_method, corrections=corrections,
                              interpolation=pipeline.interpolation)
    target = target_for(bundle, pipeline.target)
    options = RunOptions(eigen_smooth=args.eigen_smooth, progress=_progress)
    return ExplainSession(choice, methods, calibrated, note, explainer, display, target, options)


def read_or_skip(path: Path, failures: list[dict]) -> np.ndarray | None:
    """The photo, or None after naming it on stderr and adding it to ``failures`` (unreadable photos are
    skipped, not fatal)."""
    from core.images import ImageDecodeError, read_image

    try:
        return read_image(path)
    except (ImageDecodeError, OSError) as error:
        print(f"skipped {path}: {error}", file=sys.stderr)
        failures.append({"photo": str(path), "error": str(error)})
        return None


def run(args) -> int:
    import cv2

    from core.explanation import render_views
    from core.files import write_atomically

    session = start_session(args)
    bundle, pipeline, display = session.bundle, session.pipeline, session.display
    truths = ground_truth_lookup(args.data)
    args.out.mkdir(parents=True, exist_ok=True)
    results, failures = [], []
    for path in collect_photos(args.photos):
        photo = read_or_skip(path, failures)
        if photo is None:
            continue
        started = time.perf_counter()
        raw = session.explain(photo)
        height, width = photo.shape[:2]
        truth = truths.get(path.name)
        entry = {
            "photo": str(path), "width": width, "height": height,
            "predicted_class": raw.predicted_class,
            "predicted_name": bundle.class_names[raw.predicted_class],
            "score": float(raw.probabilities[raw.predicted_class]),
            "top5": [{"class": c, "name": bundle.class_names[c], "score": p} for c, p in raw.top_k(5)],
            "target": session.target.label, "ground_truth_box": None if truth is None else [float(v) for v in truth],
            "methods": {},
        }
        for view in render_views(photo, raw, display, truth):
            name = f"{path.stem}_{view.method}.png"
            cv2.imwrite(str(args.out / name), cv2.cvtColor(view.overlay, cv2.COLOR_RGB2BGR))
            box = view.localized.main_box
            entry["methods"][view.method] = {
                "label": METHODS[view.method].label, "layer": view.layer, "overlay": name,
                "threshold": display.box_for(view.method).threshold, "iou": view.localized.iou,
                "map_status": view.heatmap.status,
                "box": None if box is None else [round(float(v), 2) for v in box],
            }
            if args.save_maps:
                np.save(args.out / f"{path.stem}_{view.method}_raw.npy", raw.maps[(view.method, view.layer)])
                np.save(args.out / f"{path.stem}_{view.method}.npy", view.heatmap.values)
                entry["methods"][view.method]["maps"] = [f"{path.stem}_{view.method}_raw.npy",
                                                          f"{path.stem}_{view.method}.npy"]
        entry["seconds"] = round(time.perf_counter() - started, 4)
        results.append(entry)
        print(f"{path.name}: {entry['predicted_name']} ({entry['score']:.2f})", file=sys.stderr)
    write_atomically(args.out / "results.json", json.dumps({
        "model": bundle.name, "model_source": session.choice.reason, "pipeline": pipeline.as_dict(),
        "pipeline_label": pipeline.label(), "threshold_source": session.threshold_source,
        "variant": pipeline.variant, "photos": results, "skipped": failures,
    }, indent=2))
    print(f"wrote {len(results)} explanation(s) to {args.out}; skipped {len(failures)}", file=sys.stderr)
    return 0 if results or not failures else 1


def main(argv=None) -> int:
    args = _parse_args(argv)
    try:
        return run(args)
    except (ValueError, FileNotFoundError, RuntimeError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
