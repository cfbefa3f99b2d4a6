"""Soak: 500 explanations in one process over varied photo sizes, layers and methods.

Checks what a long dashboard session needs: no retracing of the compiled functions after warm-up and
resident memory growth under 100 MB. Uses the offline MobileNetV2 (real weights, no download).
Run: ``python bench/soak.py [--count 500]``; the last line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from core.cam import Explainer, Target  # noqa: E402
from core.explanation import BoxSettings, DisplaySettings, render_views  # noqa: E402
from core.model_sources import IMAGENET_CAR_GROUP, mobilenetv2_offline  # noqa: E402


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _traces(explainer: Explainer) -> int:
    return sum(f.tracing_count for f in explainer._functions.values())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=500)
    parser.add_argument("--warmup", type=int, default=50)
    args = parser.parse_args()
    bundle = mobilenetv2_offline()
    explainer = Explainer(bundle, freeze="now")
    rng = np.random.default_rng(0)
    layers = ["out_relu", "block_12_add", "block_5_add"]
    method_sets = [("cam", "gradcam"), ("gradcam",)]
    targets = [Target.predicted(), Target.group(bundle.class_groups[IMAGENET_CAR_GROUP], "car")]
    base = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
    started = time.perf_counter()
    rss_after_warmup = traces_after_warmup = None
    for i in range(args.count):
        height, width = int(rng.integers(32, 1600)), int(rng.integers(32, 1600))
        photo = np.ascontiguousarray(np.resize(base, (height, width, 3)))
        raw = explainer.explain([photo], methods=method_sets[i % 2], layer=layers[i % 3],
                                target=targets[(i // 6) % 2])[0]
        display = DisplaySettings(BoxSettings(float(rng.uniform(0.1, 0.9)), "largest", "rect"),
                                  float(rng.uniform(0, 1)), "jet")
        render_views(photo, raw, display, ground_truth=(0, 0, width / 2, height / 2))
        if i + 1 == args.warmup:
            rss_after_warmup, traces_after_warmup = _rss_mb(), _traces(explainer)
    elapsed = time.perf_counter() - started
    result = {
        "explanations": args.count, "seconds": round(elapsed, 1),
        "rss_after_warmup_mb": round(rss_after_warmup, 1), "rss_end_mb": round(_rss_mb(), 1),
        "rss_growth_mb": round(_rss_mb() - rss_after_warmup, 1),
        "traces_after_warmup": traces_after_warmup, "traces_end": _traces(explainer),
        "retraced_after_warmup": _traces(explainer) - traces_after_warmup,
        "compiled_functions": len(explainer._functions),
    }
    print(f"{args.count} explanations in {elapsed:.1f} s; RSS {result['rss_after_warmup_mb']} → "
          f"{result['rss_end_mb']} MB (growth {result['rss_growth_mb']} MB, target < 100); "
          f"retraces after warm-up: {result['retraced_after_warmup']} (target 0)")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
