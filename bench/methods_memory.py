"""Resident memory of one process after every registered method has run on a photo, the way the dashboard
runs them: the plain explainer and the calibrated default pipeline (224 + 704 px, flip), one model.

A frozen function holds several copies of the weights (``core.freezing``), so frozen twins are bounded by one
process-wide budget (``CAM_EXPLORER_FROZEN_BUDGET_MB``, default 320) and the methods share one network call
per layer set and score (``core.cam``). Reported: resident memory after each method, its peak over the run
(psutil, every 5 ms), and the resident size once glibc's free pages are handed back
(``core.memory.return_free_memory``). Target: ≤ 1.5 GB resident.

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

from bench.rss import PeakRss  # noqa: E402
from core.cam import Explainer, RunOptions  # noqa: E402
from core.freezing import budget  # noqa: E402
from core.memory import return_free_memory  # noqa: E402
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
    with PeakRss() as peak:
        for key, entry in METHODS.items():  # one method at a time, as a user switching methods would
            plain.explain([photo], (key,), target=target)
            if entry.one_pass:
                fused.explain([photo], (key,), target=target)
            peaks[key] = round(resident_mb(), 1)
        one_pass = tuple(k for k, m in METHODS.items() if m.one_pass)
        fused.explain([photo], one_pass, target=target, options=RunOptions(eigen_smooth=True))
    final = resident_mb()
    return_free_memory()
    trimmed = resident_mb()
    compiled = sum(len(e._functions) for e in fused.explainers)
    print("| after | resident MB |\n|---|---|")
    print(f"| start | {started:.0f} |\n| model loaded | {loaded:.0f} |")
    for key, value in peaks.items():
        print(f"| {METHODS[key].label} | {value:.0f} |")
    print(f"| every one-pass method together, eigen-smoothed | {final:.0f} |")
    print(f"| free pages handed back | {trimmed:.0f} |")
    print(f"\npeak over the run (sampled every 5 ms): {peak.peak:.0f} MB; frozen twins charged "
          f"{budget.used_bytes / 2**20:.0f} MB of the {budget.limit_bytes and budget.limit_bytes / 2**20} MB budget")
    worst = max([final, *peaks.values()])
    print(json.dumps({"resident_mb": round(final, 1), "max_resident_mb": round(worst, 1),
                      "peak_sampled_mb": round(peak.peak, 1), "resident_after_trim_mb": round(trimmed, 1),
                      "limit_mb": LIMIT_MB, "ok": worst <= LIMIT_MB, "compiled_functions": compiled,
                      "frozen_budget_used_mb": round(budget.used_bytes / 2**20, 1), "per_method_mb": peaks}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
