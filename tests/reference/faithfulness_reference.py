"""Reference faithfulness scores from torchcam 0.5.0 and pytorch-grad-cam 1.5.7, for the parity tests of
``core.faithfulness`` (tests/test_faithfulness_parity.py). Run as a subprocess, never next to TensorFlow::

    python tests/reference/faithfulness_reference.py --data IN.npz --out OUT.npz

IN.npz (all made by the TensorFlow side, so both sides see the very same tensors):
``inputs`` float32 (N, 224, 224, 3), the *preprocessed* inputs (NHWC; transposed to NCHW here, never
recomputed); ``maps`` float32 (N, h, w), the maps torchcam's average drop multiplies (it normalises and
resizes them itself); ``curve_maps`` float32 (N, 224, 224), the maps its deletion / insertion ranks (at
input size: torch's bilinear resize and numpy's round differently in the last bit, which reorders tied
pixels); ``full_maps`` float32 (N, 224, 224), the maps given to ROAD (pytorch-grad-cam takes
input-size maps); ``blur`` float32 (N, 224, 224, 3), the blurred baseline; ``classes`` int64 (N,);
``curve_photos``: how many photos the deletion/insertion curves run on (the first ones; average drop runs
on all); ``percentiles`` (P,) and ``road_photos`` for ROAD without noise; ``noisy_percentiles`` and
``noisy_photos`` for ROAD with the library's imputation noise (seeded with torch.manual_seed(0)).

OUT.npz, every score the softmax probability of the class:
``torchcam/avg_drop``, ``torchcam/avg_increase`` (N,) from ``ClassificationMetric``, one photo per update;
``torchcam/{deletion,insertion}_{zero,blur}`` (curve_photos,) AUCs from ``DeletionInsertionMetric``
(baseline None, i.e. zeros, or the given blurred tensor), with their curves ``…_curve`` (N, T) recorded
from the ``torch.trapezoid`` call; ``pgc/road_combined`` (R,) from ``ROADCombined`` with the imputation noise
set to 0, and ``pgc/road_{morf,lerf}`` (R, P) the score changes it computed at each percentile on the way
(recorded from its ``ROADMostRelevantFirst`` / ``ROADLeastRelevantFirst`` calls); ``pgc/noisy/…`` the
same with the library's noise 0.01; ``seconds/…`` wall times.

torchcam's metrics compute their own CAM from an extractor; ``GivenMaps`` is an extractor that returns the
given maps instead (normalised by torchcam's own ``_CAM._normalize`` when asked), so what is compared is
the metric, not the CAM method.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("TQDM_DISABLE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent))
# isort: split
from torch_reference import load_model  # first: importing it readies torchvision for a CPU torch

# isort: split
import torch
from pytorch_grad_cam.metrics import road
from pytorch_grad_cam.metrics.perturbation_confidence import (
    PerturbationConfidenceMetric,
    RemoveLeastRelevantFirst,
)
from pytorch_grad_cam.utils.model_targets import ClassifierOutputSoftmaxTarget
from torchcam.methods.core import _CAM
from torchcam.metrics import ClassificationMetric, DeletionInsertionMetric


class GivenMaps:
    """A torchcam CAM extractor whose maps are given (torchcam's metrics call it like any extractor)."""

    def __init__(self, model: torch.nn.Module, maps: torch.Tensor):
        self.model = model
        self.maps = maps

    def __call__(self, class_idx=None, scores=None, normalized: bool = True, **kwargs):
        maps = self.maps.clone()
        return [_CAM._normalize(maps) if normalized else maps]

    @staticmethod
    def fuse_cams(cams):
        return cams[0]

    @staticmethod
    def _hooks_off():
        return contextlib.nullcontext()


def _softmax(logits: torch.Tensor) -> torch.Tensor:
    return torch.softmax(logits, dim=-1)


def _nchw(array: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(array.transpose(0, 3, 1, 2)))


def torchcam_scores(model, inputs, maps, curve_maps, blur, classes, curve_photos: int) -> dict:
    """Per-photo values: each photo is one ``update`` of a fresh metric, read back with ``summary``."""
    out: dict[str, list] = {}
    curves: list[np.ndarray] = []
    library_trapezoid = torch.trapezoid

    def recording(y, x=None, *args, **kwargs):
        curves.append(y.detach().numpy().copy())
        return library_trapezoid(y, x, *args, **kwargs)

    torch.trapezoid = recording
    try:
        for i in range(len(inputs)):
            x, c = inputs[i:i + 1], [int(classes[i])]
            confidence = ClassificationMetric(GivenMaps(model, maps[i:i + 1]), _softmax)
            confidence.update(x, class_idx=c)
            summary = confidence.summary()
            out.setdefault("torchcam/avg_drop", []).append(summary["avg_drop"])
            out.setdefault("torchcam/avg_increase", []).append(summary["conf_increase"])
            for name, baseline in (("zero", None), ("blur", blur[i:i + 1])) if i < curve_photos else ():
                curves.clear()
                ranked = GivenMaps(model, curve_maps[i:i + 1])
                metric = DeletionInsertionMetric(ranked, _softmax, baseline=baseline)
                metric.update(x, class_idx=c)
                summary = metric.summary()
                deletion_curve, insertion_curve = curves
                for kind, curve in (("deletion", deletion_curve), ("insertion", insertion_curve)):
                    out.setdefault(f"torchcam/{kind}_{name}", []).append(summary[f"{kind}_auc"])
                    out.setdefault(f"torchcam/{kind}_{name}_curve", []).append(curve[0])
    finally:
        torch.trapezoid = library_trapezoid
    return {key: np.asarray(values) for key, values in out.items()}


def road_scores(model, inputs, full_maps, classes, percentiles, prefix: str) -> dict[str, np.ndarray]:
    """pytorch-grad-cam's ``ROADCombined``, and the per-percentile MoRF / LeRF results it averaged."""
    targets = [ClassifierOutputSoftmaxTarget(int(c)) for c in classes]
    seen: dict[str, list] = {"morf": [], "lerf": []}
    library_call = PerturbationConfidenceMetric.__call__

    def recording(self, *args, **kwargs):
        result = library_call(self, *args, **kwargs)
        order = "lerf" if isinstance(self.perturbation, RemoveLeastRelevantFirst) else "morf"
        seen[order].append(np.asarray(result, np.float64))
        return result

    PerturbationConfidenceMetric.__call__ = recording
    try:
        torch.manual_seed(0)
        metric = road.ROADCombined(percentiles=[int(p) for p in percentiles])
        combined = metric(inputs, full_maps, targets, model)
    finally:
        PerturbationConfidenceMetric.__call__ = library_call
    return {f"{prefix}road_combined": np.asarray(combined, np.float64),
            **{f"{prefix}road_{order}": np.stack(values, axis=1) for order, values in seen.items()}}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    options = parser.parse_args(argv)
    torch.set_num_threads(2)
    with np.load(options.data) as data:
        data = dict(data)
    model = load_model()
    inputs = _nchw(data["inputs"])
    classes = data["classes"].astype(np.int64)
    out: dict[str, np.ndarray] = {}
    started = time.perf_counter()
    with torch.no_grad():
        out["logits"] = model(inputs).numpy()
    maps, curve_maps = torch.from_numpy(data["maps"]), torch.from_numpy(data["curve_maps"])
    out.update(torchcam_scores(model, inputs, maps, curve_maps, _nchw(data["blur"]), classes,
                               int(data["curve_photos"])))
    out["seconds/torchcam"] = np.float64(time.perf_counter() - started)

    count, noisy = int(data["road_photos"]), int(data["noisy_photos"])
    percentiles = data["percentiles"]
    full_maps = data["full_maps"]
    library_noise = road.NoisyLinearImputer.__init__.__defaults__
    started = time.perf_counter()
    road.NoisyLinearImputer.__init__.__defaults__ = (0.0, *library_noise[1:])  # deterministic imputation
    try:
        out.update(road_scores(model, inputs[:count], full_maps[:count], classes[:count], percentiles,
                               "pgc/"))
    finally:
        road.NoisyLinearImputer.__init__.__defaults__ = library_noise
    out["seconds/pgc/road"] = np.float64(time.perf_counter() - started)
    if noisy:
        out.update(road_scores(model, inputs[:noisy], full_maps[:noisy], classes[:noisy],
                               data["noisy_percentiles"], "pgc/noisy/"))
    options.out.parent.mkdir(parents=True, exist_ok=True)
    np.savez(options.out, **out)


if __name__ == "__main__":
    main()
