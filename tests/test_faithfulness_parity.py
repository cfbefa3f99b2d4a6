"""Parity of ``core.faithfulness`` with the reference libraries: torchcam 0.5.0's ``ClassificationMetric``
(average drop / increase) and ``DeletionInsertionMetric``, pytorch-grad-cam 1.5.7's ROAD, all run by
``tests/reference/faithfulness_reference.py`` in a subprocess on torchvision's MobileNetV2 with the very
checkpoint the project converts.

Both sides get the same tensors, written by this side: the preprocessed inputs, the maps (this engine's
Grad-CAM at ``out_relu``: ReLU'd 7×7 maps for the average drop, which torchcam normalises and resizes
itself; the same maps resized to 224×224 for deletion / insertion, since torch's bilinear resize and
ours differ in the last bit and that reorders tied pixels — on 1 of 6 photos a step boundary then
splits a tie differently and one curve point moves by ~2e-3; the project's normalised 224×224 maps for
ROAD), the blurred baseline and the target classes. Scores are
softmax probabilities. What differs is the model (Keras conversion vs torch: probabilities agree to
~1e-6) and the arithmetic of each metric.
"""

from __future__ import annotations

import os
import subprocess
import sys

import cv2
import numpy as np
import pytest

from core.cam import Explainer
from core.faithfulness import (
    blurred_baseline,
    confidence_change,
    deletion_insertion_curves,
    explainer_score_fn,
    road_curves,
)
from core.faithfulness.deletion_insertion import area_under_curve
from core.faithfulness.maps import resize_maps
from core.heatmaps import normalize_map, upsample
from core.preprocessing import preprocess
from tests.conftest import PROJECT_ROOT, SHARED_CARS
from tests.test_parity import _torch_available, project_images

SCRIPT = PROJECT_ROOT / "tests" / "reference" / "faithfulness_reference.py"
SHARED_PHOTOS = 2
CURVE_PHOTOS = 2  # deletion / insertion: 80 forward passes per photo on each side
ROAD_PHOTOS = 1  # ROAD: one sparse solve per percentile and order; the reference's take seconds each
PERCENTILES = (10, 50, 90)  # the largest, a middle and the smallest system (the rule is the same at each)
NOISY_PERCENTILES = (50, 90)
# max |ours − reference| of probabilities in [0, 1]: the converted model and float32 arithmetic differ
PROBABILITY_TOLERANCE = 1e-4  # measured ≤ 2.4e-6 on 6 photos
NOISY_ROAD_TOLERANCE = 0.02  # numpy and torch draw different 0.01 imputation noise (measured 2e-3)


def _shared_photos() -> list[np.ndarray]:
    folder = SHARED_CARS / "cars_train"
    if not folder.is_dir():
        return []
    photos = []
    for path in sorted(folder.glob("*.jpg"))[:SHARED_PHOTOS]:
        image = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)
        photos.append(cv2.resize(image, (224, 224), interpolation=cv2.INTER_AREA))
    return photos


def prepare(explainer: Explainer) -> dict[str, np.ndarray]:
    """The tensors both sides use: photos (the sample drawing first, then shared photos when present),
    preprocessed inputs, Grad-CAM maps, the blurred baseline and the predicted classes."""
    own = project_images()
    shared = _shared_photos()
    images = np.stack([own[0], *shared, *own[1:]])
    raws = explainer.explain(images, ("gradcam",), layer="out_relu")
    maps = np.stack([np.maximum(r.maps[("gradcam", "out_relu")], 0) for r in raws]).astype(np.float32)
    full = np.stack([upsample(normalize_map(m, relu=True).values, 224, 224) for m in maps])
    inputs = preprocess(images, explainer.bundle.preprocessing).numpy()
    return {"inputs": inputs, "maps": maps, "curve_maps": resize_maps(maps, 224, 224), "full_maps": full,
            "blur": blurred_baseline(inputs),
            "classes": np.array([r.predicted_class for r in raws]),
            "class_weights": np.stack([r.class_weights for r in raws]), "shared": len(shared),
            "curve_photos": CURVE_PHOTOS, "road_photos": ROAD_PHOTOS, "percentiles": np.array(PERCENTILES),
            "noisy_photos": 1, "noisy_percentiles": np.array(NOISY_PERCENTILES)}


def run_reference(data: dict, folder) -> dict[str, np.ndarray]:
    np.savez(folder / "in.npz", **data)
    env = {**os.environ, "OMP_WAIT_POLICY": "PASSIVE"}  # no OpenMP spinning against TensorFlow's threads
    done = subprocess.run([sys.executable, str(SCRIPT), "--data", str(folder / "in.npz"), "--out",
                           str(folder / "out.npz")], capture_output=True, text=True, timeout=900, env=env,
                          check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    return dict(np.load(folder / "out.npz"))


def ours(explainer: Explainer, data: dict) -> dict[str, np.ndarray]:
    """This package's values for the same tensors."""
    score = explainer_score_fn(explainer, data["class_weights"])
    inputs, maps, full = data["inputs"], data["maps"], data["full_maps"]
    out = {f"confidence/{k}": v for k, v in confidence_change(inputs, maps, score).items()}
    curves = slice(0, data["curve_photos"])
    for name, baseline in (("zero", None), ("blur", data["blur"][curves])):
        result = deletion_insertion_curves(inputs[curves], data["curve_maps"][curves], score, baseline)
        for kind in ("deletion", "insertion"):
            out[f"{kind}_{name}_curve"] = result[kind]
            out[f"{kind}_{name}"] = area_under_curve(result["fractions"], result[kind])
    road = slice(0, data["road_photos"])
    result = road_curves(inputs[road], full[road], score, data["percentiles"], noise=0.0)
    out.update({f"road_{k}": result[k] for k in ("morf", "lerf")})
    noisy = slice(0, data["noisy_photos"])
    result = road_curves(inputs[noisy], full[noisy], score, data["noisy_percentiles"], seed=0)
    out.update({f"noisy/road_{k}": result[k] for k in ("morf", "lerf")})
    return out


@pytest.fixture(scope="module")
def faithfulness_run(offline_bundle, tmp_path_factory):
    if not _torch_available():
        if os.environ.get("CI"):
            pytest.fail("torch is missing on CI: scripts/setup.sh --dev installs the reference libraries")
        pytest.skip("the reference libraries are dev dependencies: bash scripts/setup.sh --dev")
    explainer = Explainer(offline_bundle, freeze="never")
    data = prepare(explainer)
    reference = run_reference(data, tmp_path_factory.mktemp("faithfulness"))
    return {**ours(explainer, data), "classes": data["classes"], "shared": data["shared"]}, reference


def _report(name: str, ours, theirs) -> float:
    difference = float(np.max(np.abs(np.asarray(ours, np.float64) - np.asarray(theirs, np.float64))))
    print(f"parity {name}: max |diff| = {difference:.2e} over {np.size(theirs)} values")
    return difference


def test_both_models_predict_the_same_classes(faithfulness_run):
    ours, reference = faithfulness_run
    assert np.array_equal(np.argmax(reference["logits"], axis=1), ours["classes"])


def test_shared_photos_are_compared(faithfulness_run):
    from tests.conftest import require_shared

    require_shared()
    assert faithfulness_run[0]["shared"] == SHARED_PHOTOS


@pytest.mark.parametrize("ours_key,theirs_key", [("confidence/avg_drop", "torchcam/avg_drop"),
                                                 ("confidence/avg_increase", "torchcam/avg_increase")])
def test_average_drop_and_increase_match_torchcam(faithfulness_run, ours_key, theirs_key):
    ours, reference = faithfulness_run
    assert _report(theirs_key, ours[ours_key], reference[theirs_key]) <= PROBABILITY_TOLERANCE


@pytest.mark.parametrize("key", ["deletion_zero", "insertion_zero", "deletion_blur", "insertion_blur"])
def test_deletion_and_insertion_match_torchcam(faithfulness_run, key):
    ours, reference = faithfulness_run
    assert ours[f"{key}_curve"].shape == reference[f"torchcam/{key}_curve"].shape
    curve = _report(f"{key} curve", ours[f"{key}_curve"], reference[f"torchcam/{key}_curve"])
    assert curve <= PROBABILITY_TOLERANCE
    assert _report(f"{key} AUC", ours[key], reference[f"torchcam/{key}"]) <= PROBABILITY_TOLERANCE


@pytest.mark.parametrize("order", ["morf", "lerf"])
def test_road_matches_pytorch_grad_cam(faithfulness_run, order):
    ours, reference = faithfulness_run
    difference = _report(f"ROAD {order}", ours[f"road_{order}"], reference[f"pgc/road_{order}"])
    assert difference <= PROBABILITY_TOLERANCE


def test_road_combined_matches_pytorch_grad_cam(faithfulness_run):
    ours, reference = faithfulness_run
    combined = (ours["road_lerf"].mean(axis=1) - ours["road_morf"].mean(axis=1)) / 2
    assert _report("ROAD combined", combined, reference["pgc/road_combined"]) <= PROBABILITY_TOLERANCE


def test_noisy_road_stays_near_pytorch_grad_cam(faithfulness_run):
    """With the library's 0.01 noise the draws differ (numpy vs torch): only close, not equal."""
    ours, reference = faithfulness_run
    for order in ("morf", "lerf"):
        assert _report(f"noisy ROAD {order}", ours[f"noisy/road_{order}"],
                       reference[f"pgc/noisy/road_{order}"]) <= NOISY_ROAD_TOLERANCE
