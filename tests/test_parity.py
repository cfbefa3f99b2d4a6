"""Parity with the reference implementations: torchvision's MobileNetV2 with the very checkpoint the
project converts, explained by pytorch-grad-cam 1.5.7 and torchcam 0.5.0 (``tests/reference``), against
this engine on the converted Keras model. Same pixels, same target class; Pearson r ≥ 0.99 of the
low-resolution maps and the same peak cell, on the last block and a middle one (FullGrad, which has no
layer: of its 224×224 maps, peak on a 7×7 grid; see ``tests/reference/parity.py``). SS-CAM and Smooth
Grad-CAM++ see the same noise on both sides (the reference is fed this engine's draws); SS-CAM and
IS-CAM, N passes per channel, are compared at the middle block only here (torchcam needs minutes per sample
at the last one's 1,280 channels; ``bench/parity.py`` compares both).

The reference runs in a subprocess (torch beside TensorFlow in one process is asking for trouble). CI
installs torch (``scripts/setup.sh --dev``), so there the check never skips.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys

import cv2
import numpy as np
import pytest

from core.cam import Explainer, RunOptions, Target
from core.methods import METHODS
from core.methods.noisy import SMOOTH_NOISE
from core.paths import ASSETS_DIR
from tests.conftest import PROJECT_ROOT
from tests.reference.parity import INPUT, LAYERS, PEAK_GRID, REFERENCE_METHODS, UP_TO_SIGN, compare, pairs_to_compare

CI_SAMPLED_LAYERS = ("middle",)

MIN_CORRELATION = 0.99
# Smooth Grad-CAM++ with the paper's α at the middle block is ill-conditioned for the first image: one channel's
# denominator 2D₂ + ΣA·D₃ cancels to 1e-4 of its terms, so its α is 2394 (median 0.48) and it carries 38 % of
# the map's weight. Perturbing our own gradients by 1e-4 (relative, random) moves r between 0.986 and 1.0;
# the two frameworks' float32 gradients plausibly differ that much (not measured). 0.978 was seen on one
# machine, ≥ 0.99 on another. The peak agrees throughout, and the bar is 0.97 for this pair only.
LOOSER = {("torchcam", "smoothgradcampp_paper", "middle"): 0.97}
SCRIPT = PROJECT_ROOT / "tests" / "reference" / "torch_reference.py"


def project_images() -> np.ndarray:
    """The sample drawing, its mirror, and two synthetic photos (a lit blob on a gradient, seeded noise
    smoothed), all 224×224 RGB uint8: images the project may commit and test on."""
    drawing = cv2.cvtColor(cv2.imread(str(ASSETS_DIR / "sample_car.jpg")), cv2.COLOR_BGR2RGB)
    drawing = cv2.resize(drawing, (224, 224), interpolation=cv2.INTER_AREA)
    yy, xx = np.mgrid[0:224, 0:224] / 223.0
    blob = np.exp(-((xx - 0.65) ** 2 + (yy - 0.4) ** 2) / 0.02)
    gradient = np.stack([200 * blob + 40 * xx, 120 * yy + 60 * blob, 90 + 100 * (1 - xx) * blob], -1)
    noise = cv2.GaussianBlur(np.random.default_rng(0).integers(0, 256, (224, 224, 3)).astype(np.uint8), (9, 9), 3)
    return np.stack([drawing, drawing[:, ::-1], np.clip(gradient, 0, 255).astype(np.uint8), noise])


def _torch_available() -> bool:
    return importlib.util.find_spec("torch") is not None


@pytest.fixture(scope="module")
def parity_run(offline_bundle, tmp_path_factory):
    if not _torch_available():
        if os.environ.get("CI"):
            pytest.fail("torch is missing on CI: scripts/setup.sh --dev installs the reference libraries")
        pytest.skip("the reference libraries are dev dependencies: bash scripts/setup.sh --dev")
    images = project_images()
    explainer = Explainer(offline_bundle, freeze="never")
    classes = np.array([r.predicted_class for r in explainer.explain(images, ("gradcam",), layer="out_relu")])
    folder = tmp_path_factory.mktemp("parity")
    np.savez(folder / "in.npz", images=images, classes=classes)
    done = subprocess.run([sys.executable, str(SCRIPT), "--images", str(folder / "in.npz"), "--out",
                           str(folder / "out.npz"), "--methods", REFERENCE_METHODS, "--slow-limit", "1",
                           "--sampled-layers", ",".join(CI_SAMPLED_LAYERS), "--smooth-noise", str(SMOOTH_NOISE),
                           "--samples", str(METHODS["sscam"].samples),
                           "--smooth-samples", str(METHODS["smoothgradcampp"].samples)],
                          capture_output=True, text=True, timeout=1200)
    assert done.returncode == 0, done.stderr[-3000:]
    reference = dict(np.load(folder / "out.npz"))
    ours = {}
    targets = [Target.of_class(int(c)) for c in classes]
    for layer in LAYERS.values():
        plain = ("gradcam", "hirescam", "gradcam_elementwise", "gradcampp", "xgradcam", "layercam", "eigencam",
                 "eigengradcam", "kpcacam", "finercam")
        for smooth in (False, True):
            for raw_list in [explainer.explain(images, plain, layer=layer, target=targets,
                                               options=RunOptions(eigen_smooth=smooth))]:
                for key in plain:
                    name = f"{key}+smooth" if smooth else key
                    ours[(name, layer)] = np.stack([r.maps[(key, layer)] for r in raw_list])
        slow = ("scorecam", "ablationcam") if layer == "out_relu" else ("scorecam", "sscam", "iscam")
        for (key, _), value in explainer.explain(images[:1], slow, layer=layer, target=targets[:1])[0].maps.items():
            ours[(key, layer)] = value[None]
        smooth = explainer.explain(images, ("smoothgradcampp",), layer=layer, target=targets)
        ours[("smoothgradcampp", layer)] = np.stack([r.maps[("smoothgradcampp", layer)] for r in smooth])
    cam = explainer.explain(images, ("cam",), target=targets)
    ours[("cam", "out_relu")] = np.stack([r.maps[("cam", "out_relu")] for r in cam])
    full = explainer.explain(images, ("fullgrad",), target=targets)
    ours[("fullgrad", INPUT)] = np.stack([r.maps[("fullgrad", INPUT)] for r in full])
    return ours, reference, classes


def test_the_reference_model_predicts_as_the_converted_one(parity_run):
    _, reference, classes = parity_run
    assert np.array_equal(np.argmax(reference["logits"], axis=1), classes)


@pytest.mark.parametrize("library,key,ours,layer", list(pairs_to_compare(sampled_layers=CI_SAMPLED_LAYERS)))
def test_maps_match_the_reference(parity_run, library, key, ours, layer):
    mine, reference, _ = parity_run
    theirs = reference[f"{library}/{key}/{layer}"]
    engine = mine[(ours, LAYERS.get(layer, INPUT))][:len(theirs)]
    assert engine.shape == theirs.shape
    for i, (a, b) in enumerate(zip(engine, theirs)):
        grid = PEAK_GRID if layer == "all" else None  # FullGrad's 224×224 maps: the peak cell of 7×7
        r, same_peak = compare(a, b, up_to_sign=key in UP_TO_SIGN, peak_grid=grid)
        least = LOOSER.get((library, key, layer), MIN_CORRELATION)
        assert r >= least and same_peak, f"image {i}: r = {r:.4f}, same peak: {same_peak}"
