"""Parity of this engine's maps with pytorch-grad-cam 1.5.7 and torchcam 0.5.0 on the shared Stanford Cars
photos (the same check as ``tests/test_parity.py``, on real photos; nothing made from them is kept).

Each photo is resized to 224×224 as the engine does (area averaging), explained for the class this
engine predicts, by both sides on the same pixels: torchvision's MobileNetV2 with the checkpoint the
project converts, and the converted Keras model. Per (library, method, layer): the lowest and mean
Pearson r of the low-resolution maps and how often the peak cell agrees.

    .venv/bin/python bench/parity.py [--limit 164] [--slow-limit 4] [--samples 4]

SS-CAM and IS-CAM run ``--samples`` passes per channel on both sides (the registry's N, 4 by default) on the
first ``--slow-limit`` photos; SS-CAM and Smooth Grad-CAM++ get the same noise on both sides.

The reference maps live in a temporary folder deleted at the end. The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
PROJECT_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT_ROOT))

import numpy as np  # noqa: E402

from core.cam import Explainer, RunOptions, Target, _resize_batch  # noqa: E402
from core.images import read_image  # noqa: E402
from core.methods import METHODS  # noqa: E402
from core.methods.noisy import SMOOTH_NOISE  # noqa: E402
from core.methods.perturbation import is_cam, ss_cam  # noqa: E402
from core.model_sources import mobilenetv2_offline  # noqa: E402
from core.preprocessing import preprocess  # noqa: E402
from tests.reference.parity import (  # noqa: E402
    INPUT, LAYERS, PEAK_GRID, REFERENCE_METHODS, UP_TO_SIGN, compare, pairs_to_compare, table,
)

PHOTOS = PROJECT_ROOT.parent / "shared" / "data" / "stanford_cars" / "cars_train"
ONE_PASS = ("gradcam", "hirescam", "gradcam_elementwise", "gradcampp", "xgradcam", "layercam", "eigencam",
            "eigengradcam", "kpcacam", "finercam")
SLOW = {"scorecam", "ablationcam"}
SAMPLED = {"sscam": ss_cam, "iscam": is_cam}


def sampled_maps(explainer, images, targets, layer: str, samples: int) -> dict:
    """SS-CAM and IS-CAM with ``samples`` passes per channel (the registry's entries fix theirs)."""
    out = {key: [] for key in SAMPLED}
    run = explainer.run_preprocessed_batch(images, ("scorecam",), layer)
    inputs = preprocess(images, explainer.bundle.preprocessing).numpy()
    for j, target in enumerate(targets):
        weights = np.zeros(explainer.bundle.num_classes, np.float32)
        weights[target.classes[0]] = 1.0
        acts = run[-1].numpy()[j]
        ctx = explainer.perturbation_context(inputs[j], acts, weights, layer, "paper",
                                             RunOptions(), "sscam")
        for key, function in SAMPLED.items():
            out[key].append(np.einsum("hwk,k->hw", acts, function(ctx, samples=samples)))
    return {key: np.stack(maps) for key, maps in out.items()}


def our_maps(explainer, images, targets, slow_limit: int, samples: int) -> dict:
    maps = {}
    for layer in LAYERS.values():
        for smooth in (False, True):
            raws = explainer.explain(images, ONE_PASS, layer=layer, target=targets,
                                     options=RunOptions(eigen_smooth=smooth))
            for key in ONE_PASS:
                maps[(f"{key}+smooth" if smooth else key, layer)] = np.stack([r.maps[(key, layer)] for r in raws])
        slow = ("scorecam", "ablationcam") if layer == "out_relu" else ("scorecam",)
        if slow_limit > 0:  # --slow-limit 0: no slow method at all
            raws = explainer.explain(images[:slow_limit], slow, layer=layer, target=targets[:slow_limit])
            for key in slow:
                maps[(key, layer)] = np.stack([r.maps[(key, layer)] for r in raws])
            for key, value in sampled_maps(explainer, images[:slow_limit], targets[:slow_limit], layer,
                                           samples).items():
                maps[(key, layer)] = value
        raws = explainer.explain(images, ("smoothgradcampp",), layer=layer, target=targets)
        maps[("smoothgradcampp", layer)] = np.stack([r.maps[("smoothgradcampp", layer)] for r in raws])
    raws = explainer.explain(images, ("cam",), target=targets)
    maps[("cam", "out_relu")] = np.stack([r.maps[("cam", "out_relu")] for r in raws])
    raws = explainer.explain(images, ("fullgrad",), target=targets)
    maps[("fullgrad", INPUT)] = np.stack([r.maps[("fullgrad", INPUT)] for r in raws])
    return maps


def parity_rows(ours: dict, reference: dict) -> list[dict]:
    rows = []
    for library, key, mine, layer in pairs_to_compare():
        theirs = reference.get(f"{library}/{key}/{layer}")
        ours_layer = LAYERS.get(layer, INPUT)  # FullGrad: no layer
        if theirs is None or len(theirs) == 0 or (mine, ours_layer) not in ours:  # left out: --slow-limit 0
            continue
        grid = PEAK_GRID if layer == "all" else None
        values = [compare(a, b, up_to_sign=key in UP_TO_SIGN, peak_grid=grid)
                  for a, b in zip(ours[(mine, ours_layer)], theirs)]
        r = np.array([v[0] for v in values])
        rows.append({"library": library, "method": key, "layer": ours_layer, "n": len(values),
                     "min_r": float(r.min()), "mean_r": float(r.mean()),
                     "peaks": int(sum(v[1] for v in values))})
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--limit", type=int, default=None, help="first N shared photos (default: all)")
    parser.add_argument("--slow-limit", type=int, default=4, help="photos for Score-CAM, SS-CAM, IS-CAM and "
                        "Ablation-CAM")
    parser.add_argument("--samples", type=int, default=METHODS["sscam"].samples,
                        help="SS-CAM's and IS-CAM's passes per channel (both sides)")
    args = parser.parse_args(argv)
    if not PHOTOS.is_dir():
        print(f"the shared photos are absent ({PHOTOS}); nothing to compare", file=sys.stderr)
        return 1
    paths = sorted(PHOTOS.glob("*.jpg"))[:args.limit]
    images = _resize_batch([read_image(p) for p in paths], (224, 224))
    explainer = Explainer(mobilenetv2_offline(), freeze="now")
    classes = np.array([r.predicted_class for r in explainer.explain(images, ("gradcam",), layer="out_relu")])
    targets = [Target.of_class(int(c)) for c in classes]
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as folder:
        np.savez(Path(folder) / "in.npz", images=images, classes=classes)
        subprocess.run([sys.executable, str(PROJECT_ROOT / "tests" / "reference" / "torch_reference.py"),
                        "--images", f"{folder}/in.npz", "--out", f"{folder}/out.npz", "--methods", REFERENCE_METHODS,
                        "--slow-limit", str(args.slow_limit), "--samples", str(args.samples),
                        "--smooth-noise", str(SMOOTH_NOISE),
                        "--smooth-samples", str(METHODS["smoothgradcampp"].samples)], check=True)
        reference = dict(np.load(Path(folder) / "out.npz"))
    reference_seconds = time.perf_counter() - started
    agree = float(np.mean(np.argmax(reference["logits"], axis=1) == classes))
    ours = our_maps(explainer, images, targets, args.slow_limit, args.samples)
    rows = parity_rows(ours, reference)
    print(f"{len(images)} shared photos; the two models' top-1 agree on {agree:.1%}; reference took "
          f"{reference_seconds:.0f} s")
    print(table(rows))
    print(json.dumps({"photos": len(images), "top1_agreement": agree, "rows": rows,
                      "min_r": min(r["min_r"] for r in rows),
                      "all_peaks_agree": all(r["peaks"] == r["n"] for r in rows)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
