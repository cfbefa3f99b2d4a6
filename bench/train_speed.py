"""What fine-tuning costs on this machine: seconds per training step at batch 16, 224×224, and what the
original study's full run (15 epochs over 8,144 photos, validating on 8,041) would take.

Models are the ones ``python -m core.train`` builds and compiles (same optimizer, loss and metrics):

* ResNet50 CAM model, random weights (``weights=None``: speed does not depend on the weights, and the
  ImageNet download is impossible offline);
* MobileNetV2 CAM model on the offline ImageNet weights (what ``--backbone auto`` trains offline).

Each model: one compiled training step (``train_on_batch``) warmed up twice (tracing excluded), then
timed ``--steps`` times on a fixed batch; the median is reported, with min and max. The forward pass at
batch 16 (validation's cost) is timed the same way. The input pipeline (decode a shared Stanford Cars
photo, augment, resize) is timed per photo when ``../shared`` is present. ``--precision mixed_bfloat16``
tries the CPU's bfloat16 units (AMX / AVX512-BF16) instead of float32.

    .venv/bin/python bench/train_speed.py [--steps 5] [--models resnet50 mobilenetv2] [--precision float32]

The last line printed is one JSON object with every number.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
PROJECT_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT_ROOT))

import keras  # noqa: E402
import numpy as np  # noqa: E402

from core.train.augment import Augmentation  # noqa: E402
from core.train.backbones import build_backbone  # noqa: E402
from core.train.config import make_config  # noqa: E402
from core.train.devices import precision_policy  # noqa: E402
from core.train.progress import format_duration  # noqa: E402
from core.train.run import compile_for_training  # noqa: E402

BATCH, SIZE, CLASSES = 16, 224, 196
TRAIN_PHOTOS, TEST_PHOTOS, EPOCHS = 8144, 8041, 15  # Cars196 and the original study's recipe
SHARED_PHOTOS = PROJECT_ROOT.parent / "shared" / "data" / "stanford_cars"
WEIGHTS = {"resnet50": "none", "mobilenetv2": "imagenet"}  # mobilenetv2 "imagenet" = the offline weights


def _timed(call, warmup: int, repeats: int) -> list[float]:
    for _ in range(warmup):
        call()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return times


def _summary(times: list[float]) -> dict:
    return {"median_s": statistics.median(times), "min_s": min(times), "max_s": max(times), "n": len(times)}


def time_model(key: str, steps: int, precision: str) -> dict:
    """Median seconds per training step and per forward pass at batch 16 for one backbone."""
    keras.utils.set_random_seed(0)
    with precision_policy(precision):
        started = time.perf_counter()
        backbone = build_backbone(key, CLASSES, SIZE, WEIGHTS[key])
        config = make_config("bench", "bench", batch_size=BATCH)
        compile_for_training(backbone.model, config, math.ceil(TRAIN_PHOTOS / BATCH), CLASSES)
        build_s = time.perf_counter() - started
        rng = np.random.default_rng(0)
        x = rng.normal(size=(BATCH, SIZE, SIZE, 3)).astype(np.float32)
        y = rng.integers(0, CLASSES, BATCH).astype(np.int32)
        model = backbone.model
        started = time.perf_counter()
        model.train_on_batch(x, y)
        first_step_s = time.perf_counter() - started  # tracing + one step
        train = _timed(lambda: model.train_on_batch(x, y), warmup=1, repeats=steps)
        forward = _timed(lambda: model.predict_on_batch(x), warmup=2, repeats=steps)
    return {"model": backbone.label, "weights": backbone.start, "precision": precision,
            "parameters": int(model.count_params()), "build_s": build_s, "first_step_s": first_step_s,
            "train_step": _summary(train), "forward_batch": _summary(forward)}


def time_input_pipeline(limit: int = 48) -> dict | None:
    """Seconds per photo to decode a shared photo and make its augmented 224×224 view (one thread)."""
    if not SHARED_PHOTOS.exists():
        return None
    from core.data import open_dataset

    split = open_dataset(SHARED_PHOTOS)["train"]
    augment = Augmentation()
    rng = np.random.default_rng(0)
    started = time.perf_counter()
    count = min(limit, len(split))
    for i in range(count):
        augment(split[i].image, rng, SIZE)
    return {"photos": count, "seconds_per_photo": (time.perf_counter() - started) / count}


def projection(result: dict) -> dict:
    """The original recipe's full run at the measured medians: training steps and validation passes."""
    steps = math.ceil(TRAIN_PHOTOS / BATCH) * EPOCHS
    validation_batches = math.ceil(TEST_PHOTOS / BATCH) * EPOCHS
    train_s = steps * result["train_step"]["median_s"]
    validation_s = validation_batches * result["forward_batch"]["median_s"]
    return {"steps": steps, "train_hours": train_s / 3600, "validation_hours": validation_s / 3600,
            "total_hours": (train_s + validation_s) / 3600}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=5, help="timed steps per model (after warm-up)")
    parser.add_argument("--models", nargs="+", default=["resnet50", "mobilenetv2"], choices=sorted(WEIGHTS))
    parser.add_argument("--precision", default="float32", choices=("float32", "mixed_bfloat16"))
    args = parser.parse_args(argv)
    load = os.getloadavg()[0]
    results = {}
    for key in args.models:
        result = time_model(key, args.steps, args.precision)
        result["full_run"] = projection(result)
        results[key] = result
        step, forward, run = result["train_step"], result["forward_batch"], result["full_run"]
        print(f"{result['model']:<12} {args.precision}: train step {step['median_s']:.2f} s "
              f"(min {step['min_s']:.2f}, max {step['max_s']:.2f}; first step with tracing "
              f"{result['first_step_s']:.1f} s) · forward {forward['median_s']:.2f} s per batch of {BATCH}")
        print(f"{'':<12} 15 epochs × 8,144 photos = {run['steps']} steps: "
              f"{format_duration(run['train_hours'] * 3600)} training + "
              f"{format_duration(run['validation_hours'] * 3600)} validating on 8,041 → "
              f"{format_duration(run['total_hours'] * 3600)}")
    pipeline = time_input_pipeline()
    if pipeline:
        print(f"input pipeline: {pipeline['seconds_per_photo'] * 1000:.1f} ms per photo (decode + augment, "
              f"one thread) → {pipeline['seconds_per_photo'] * BATCH:.2f} s per batch of {BATCH}")
    print(json.dumps({"batch": BATCH, "size": SIZE, "cpus": os.cpu_count(), "load_before": load,
                      "load_after": os.getloadavg()[0], "models": results, "input_pipeline": pipeline}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
