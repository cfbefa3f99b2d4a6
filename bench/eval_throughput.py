"""Evaluation throughput of the default pipeline against plain inference of the same views, in one run.

Target (issue 11): the evaluation (explain every view, sweep τ, store) runs at ≥ 0.5× the photos per second
of plain inference of the same views (photo decoded, resized, preprocessed and run forward through the
model at every input size and mirror of the pipeline, batched, nothing else). Both read the same shared
Stanford Cars photos from disk. Optionally (``--metrics``) a second evaluation adds faithfulness metrics
and reports their measured ms per photo and method.

    .venv/bin/python bench/eval_throughput.py [--limit 48] [--methods cam,gradcampp,layercam] [--metrics ...]

The last line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
PROJECT_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT_ROOT))

import numpy as np  # noqa: E402

from core.calibration import with_calibration  # noqa: E402
from core.cam import Explainer  # noqa: E402
from core.data import iter_batches, open_dataset  # noqa: E402
from core.evaluate import EvalRequest, run_evaluation  # noqa: E402
from core.evaluate.pipeline import resolve_pipeline  # noqa: E402
from core.faithfulness import model_inputs  # noqa: E402
from core.model_sources import load_model  # noqa: E402
from core.multiscale import at_input_size  # noqa: E402

SHARED_CARS = PROJECT_ROOT.parent / "shared" / "data" / "stanford_cars"


def plain_inference(bundle, pipeline, limit: int, batch: int) -> float:
    """Photos per second of decode + resize + preprocess + forward at every view of the pipeline."""
    sizes = pipeline.recipe.sizes or (bundle.input_size[0],)
    explainers = [Explainer(at_input_size(bundle, size) if size != bundle.input_size[0] else bundle, freeze="now")
                  for size in sizes]
    scores = [e.score_function("paper") for e in explainers]
    split = open_dataset(SHARED_CARS)["train"]
    weights = np.zeros((batch, bundle.num_classes), np.float32)
    warm = [r.image for r in next(iter_batches(split, batch, indices=list(range(batch))))]
    for explainer, score in zip(explainers, scores):
        score(model_inputs(explainer, warm), weights[:len(warm)])
    start, done = time.perf_counter(), 0
    for records in iter_batches(split, batch, indices=list(range(limit))):
        images = [r.image for r in records]
        views = [images] + ([[np.ascontiguousarray(i[:, ::-1]) for i in images]] if pipeline.recipe.flip else [])
        for explainer, score in zip(explainers, scores):
            for view in views:
                score(model_inputs(explainer, view), weights[:len(view)])
        done += len(images)
    return done / (time.perf_counter() - start)


def evaluation(limit: int, methods: tuple[str, ...], metrics: tuple[str, ...], batch: int) -> dict:
    with tempfile.TemporaryDirectory() as folder:
        request = EvalRequest(str(SHARED_CARS), "train", model="mobilenetv2-offline", methods=methods,
                              limit=limit, batch_size=batch, metrics=metrics)
        run_evaluation(EvalRequest(str(SHARED_CARS), "train", model="mobilenetv2-offline", methods=methods,
                                   limit=batch, batch_size=batch), Path(folder) / "warm")
        summary = run_evaluation(request, Path(folder) / "run")
    board = summary.get("leaderboard", {})
    return {"photos_per_second": summary["photos_per_second"],
            "faithfulness_ms_per_photo_per_method": (board.get("cost") or {}).get("ms_per_photo_per_method")}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--limit", type=int, default=48)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--methods", default="cam,gradcampp,layercam")
    parser.add_argument("--metrics", default="", help="faithfulness metrics for a second evaluation")
    args = parser.parse_args(argv)
    if not SHARED_CARS.exists():
        print(f"shared photos absent ({SHARED_CARS}); nothing to measure", file=sys.stderr)
        return 1
    bundle = with_calibration(load_model("mobilenetv2-offline").bundle)
    methods = tuple(args.methods.split(","))
    pipeline = resolve_pipeline(bundle, methods)
    load_before = os.getloadavg()[0]
    plain = plain_inference(bundle, pipeline, args.limit, args.batch_size)
    evaluated = evaluation(args.limit, methods, (), args.batch_size)
    report = {"photos": args.limit, "pipeline": pipeline.label(), "methods": list(methods),
              "plain_inference_photos_per_second": plain,
              "evaluation_photos_per_second": evaluated["photos_per_second"],
              "ratio": evaluated["photos_per_second"] / plain, "target_ratio": 0.5}
    if args.metrics:
        with_metrics = evaluation(args.limit, methods, tuple(args.metrics.split(",")), args.batch_size)
        report["evaluation_with_metrics_photos_per_second"] = with_metrics["photos_per_second"]
        report["faithfulness_ms_per_photo_per_method"] = with_metrics["faithfulness_ms_per_photo_per_method"]
    report["load_average"] = [load_before, os.getloadavg()[0]]
    print(f"plain inference of the same views: {plain:.2f} photos/s; evaluation: "
          f"{report['evaluation_photos_per_second']:.2f} photos/s; ratio {report['ratio']:.2f} (target ≥ 0.5)")
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
