"""Cost of each faithfulness metric (``core.faithfulness``) on the offline ImageNet MobileNetV2 at 224 px:
milliseconds per photo, batched as the evaluation runs them (perturbed inputs of several photos share
forward passes, ``--chunk`` per pass), with the forward passes per photo each metric needs, the cost of
one forward pass per input, and ROAD's sparse imputation solve alone. Wall time and the process's CPU
time are both given: on a shared machine the wall time mostly measures the neighbours, while CPU seconds
(all threads) per photo is what the work costs.

    .venv/bin/python bench/faithfulness_speed.py [--photos 4] [--road-photos 2] [--chunk 32]

Photos: the first shared Stanford Cars photos (``../shared/data/stanford_cars/cars_train``, decoded in
memory, never copied) or, when absent, the project's own test images. Maps: the engine's Grad-CAM at
``out_relu``. Every measurement is warmed up first (tracing excluded). The last line is one JSON object.
"""

from __future__ import annotations

import argparse
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

from core.cam import Explainer  # noqa: E402
from core.faithfulness import (  # noqa: E402
    evaluate_faithfulness,
    explainer_score_fn,
    forward_passes,
    impute_removed,
    kept_pixels,
)
from core.faithfulness.maps import resize_maps  # noqa: E402
from core.model_sources import mobilenetv2_offline  # noqa: E402
from core.preprocessing import preprocess  # noqa: E402

CARS = PROJECT_ROOT.parent / "shared" / "data" / "stanford_cars" / "cars_train"
# (label, metric keys computed together)
RUNS = (
    ("deletion (zero)", ("deletion",)),
    ("insertion (blur)", ("insertion",)),
    ("deletion + insertion, one baseline", ("deletion", "insertion_zero")),
    ("average drop + increase", ("avg_drop", "avg_increase")),
    ("ROAD MoRF", ("road_morf",)),
    ("ROAD combined (MoRF + LeRF)", ("road_combined",)),
    ("pointing games", ("pointing_game", "energy_pointing_game")),
)


def photos(count: int) -> tuple[np.ndarray, str]:
    paths = sorted(CARS.glob("*.jpg"))[:count] if CARS.is_dir() else []
    if paths:
        images = [cv2.resize(cv2.cvtColor(cv2.imread(str(p)), cv2.COLOR_BGR2RGB), (224, 224),
                             interpolation=cv2.INTER_AREA) for p in paths]
        return np.stack(images), f"{len(paths)} shared Stanford Cars photos"
    from tests.test_parity import project_images

    images = project_images()
    reps = -(-count // len(images))
    return np.concatenate([images] * reps)[:count], f"{count} project test images (shared photos absent)"


def timed(run) -> float:
    started = time.perf_counter()
    run()
    return time.perf_counter() - started


def timed_both(run) -> tuple[float, float]:
    """(wall seconds, CPU seconds of every thread of this process)."""
    cpu = time.process_time()
    wall = timed(run)
    return wall, time.process_time() - cpu


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--photos", type=int, default=4)
    parser.add_argument("--road-photos", type=int, default=2, help="photos for ROAD (its solves dominate)")
    parser.add_argument("--chunk", type=int, default=32, help="perturbed inputs per forward pass")
    options = parser.parse_args(argv)

    explainer = Explainer(mobilenetv2_offline(), freeze="now")
    images, source = photos(options.photos)
    raws = explainer.explain(images, ("gradcam",), layer="out_relu")
    maps = np.stack([np.maximum(r.maps[("gradcam", "out_relu")], 0) for r in raws])
    inputs = preprocess(images, explainer.bundle.preprocessing).numpy()
    score = explainer_score_fn(explainer, np.stack([r.class_weights for r in raws]))
    boxes = [(20, 40, 200, 180)] * len(images)

    score(inputs[:1], np.zeros(1, np.int64))  # warm-up: trace and freeze
    score(np.repeat(inputs[:1], options.chunk, 0), np.zeros(options.chunk, np.int64))
    batch = np.repeat(inputs, -(-options.chunk // len(inputs)), 0)[:options.chunk]
    wall, cpu = min(timed_both(lambda: score(batch, np.zeros(len(batch), np.int64))) for _ in range(3))
    forward_ms, forward_cpu_ms = 1e3 * wall / len(batch), 1e3 * cpu / len(batch)

    rows = []
    for label, keys in RUNS:
        count = options.road_photos if keys[0].startswith("road") else len(images)
        wall, cpu = timed_both(lambda keys=keys, count=count: evaluate_faithfulness(
            inputs[:count], maps[:count], score, keys, boxes[:count], chunk=options.chunk))
        rows.append({"metrics": label, "keys": list(keys), "photos": count,
                     "forward_passes_per_photo": forward_passes(keys),
                     "ms_per_photo": round(1e3 * wall / count, 1),
                     "cpu_ms_per_photo": round(1e3 * cpu / count, 1)})

    full = resize_maps(maps, 224, 224)
    solves = {}
    for percentile in (10, 50, 90):
        keep = kept_pixels(full[0], percentile, "morf")
        wall, cpu = min(timed_both(lambda keep=keep: impute_removed(inputs[0], keep)) for _ in range(2))
        solves[f"p{percentile}"] = {"removed_pixels": int((~keep).sum()), "ms": round(1e3 * wall, 1),
                                    "cpu_ms": round(1e3 * cpu, 1)}

    print(f"{source}; forward pass {forward_ms:.1f} ms ({forward_cpu_ms:.1f} CPU ms) per input at chunk "
          f"{options.chunk}")
    print("| metrics | photos | forward passes / photo | ms / photo | CPU ms / photo |")
    print("|---|---|---|---|---|")
    for row in rows:
        print(f"| {row['metrics']} | {row['photos']} | {row['forward_passes_per_photo']} "
              f"| {row['ms_per_photo']} | {row['cpu_ms_per_photo']} |")
    print("ROAD imputation, one solve (MoRF, 224x224): " + ", ".join(
        f"{k}: {v['removed_pixels']} removed px {v['ms']} ms ({v['cpu_ms']} CPU ms)"
        for k, v in solves.items()))
    print(json.dumps({"source": source, "chunk": options.chunk, "forward_ms_per_input": round(forward_ms, 2),
                      "forward_cpu_ms_per_input": round(forward_cpu_ms, 2),
                      "load_average": os.getloadavg()[0], "metrics": rows, "road_solve": solves}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
