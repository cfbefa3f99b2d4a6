"""Resident memory of one process after every registered method has run on a photo, the way the dashboard
runs them: the plain explainer and the calibrated default pipeline (224 + 704 px, flip), one model.

Frozen functions each hold a copy of the weights, so the count of compiled functions is what grows; the
Explainer keeps at most ``MAX_COMPILED`` of them per input size. Target: ≤ 1.5 GB resident.

    .venv/bin/python bench/methods_memory.py

The last line is one JSON object.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
PROJECT_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT_ROOT))

import psutil  # noqa: E402

from core.cam import Explainer, RunOptions  # noqa: E402
from core.images import read_image  # noqa: E402
from core.methods import METHODS  # noqa: E402
from core.model_sources import load_model  # noqa: E402
from core.multiscale import FusedExplainer  # noqa: E402
from core.pipelines import calibrated_pipelines, target_for  # noqa: E402

LIMIT_MB = 1536


def resident_mb() -> float:
    return psutil.Process().memory_info().rss / 2**20


def main() -> int:
    photo = read_image(PROJECT_ROOT / "assets" / "sample_car.jpg")
    started = resident_mb()
    bundle = load_model("mobilenetv2-offline").bundle
    loaded = resident_mb()
    plain = Explainer(bundle)
    default = calibrated_pipelines(bundle.metadata)[0]
    fused = FusedExplainer(bundle, default.recipe, plain)
    target = target_for(bundle, default.target)
    peaks = {}
    for key, entry in METHODS.items():  # one method at a time, as a user switching methods would
        plain.explain([photo], (key,), target=target)
        if entry.one_pass:
            fused.explain([photo], (key,), target=target)
        peaks[key] = round(resident_mb(), 1)
    one_pass = tuple(k for k, m in METHODS.items() if m.one_pass)
    fused.explain([photo], one_pass, target=target, options=RunOptions(eigen_smooth=True))
    final = resident_mb()
    compiled = sum(len(e._functions) for e in fused.explainers)
    print("| after | resident MB |\n|---|---|")
    print(f"| start | {started:.0f} |\n| model loaded | {loaded:.0f} |")
    for key, value in peaks.items():
        print(f"| {METHODS[key].label} | {value:.0f} |")
    print(f"| every one-pass method together, eigen-smoothed | {final:.0f} |")
    print(json.dumps({"resident_mb": round(final, 1), "max_resident_mb": round(max([final, *peaks.values()]), 1),
                      "limit_mb": LIMIT_MB, "ok": max([final, *peaks.values()]) <= LIMIT_MB,
                      "compiled_functions": compiled, "per_method_mb": peaks}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
