"""How fast the engine explains a photo, against the original study, tf-keras-vis and the forward pass.

One run, one ResNet50 (the original study's CAM model: ResNet50 → GAP → Dense(196, softmax), seeded random
weights), CPU. Every contender is warmed up, then all are timed in interleaved rounds (round 1: each
contender once, round 2: each once, ...) so background load hits them alike; the median is reported.

Contenders (all explain ``conv5_block3_out``; photos are decoded before timing, everything after is timed):

* ours, one photo: ``Explainer.explain([photo])`` (resize + compiled CAM and Grad-CAM) and then both maps
  normalised and resized to the photo (``photo_heatmap``), i.e. what the original's functions return.
* ours, batched: ``Explainer.run_preprocessed_batch`` on a uint8 batch of 16 at 224×224 (CAM + Grad-CAM).
* the original study's ``generate_cam`` and ``generate_grad_cam``, reproduced below, one photo per call.
* tf-keras-vis 0.8.7 ``Gradcam`` (Grad-CAM only), one photo at a time and a batch of 16.
* the floor: a compiled forward pass (preprocessing + ``model(x, training=False)``) on the same batch.

    .venv/bin/python bench/speed.py [--repeats 7] [--quick]

The last line printed is one JSON object with the ratios and the raw milliseconds.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TensorFlow's start-up chatter out of the table
PROJECT_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT_ROOT))  # run as a script from anywhere: `python bench/speed.py`

import cv2  # noqa: E402
import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from core.cam import Explainer  # noqa: E402
from core.explanation import photo_heatmap  # noqa: E402
from core.model_sources import build_cam_model  # noqa: E402
from core.model_spec import inspect_model  # noqa: E402
from core.preprocessing import preprocess  # noqa: E402

SHARED_PHOTOS = PROJECT_ROOT.parent / "shared" / "data" / "stanford_cars" / "cars_train"
LAYER = "conv5_block3_out"
BATCH = 16
NUM_CLASSES = 196
SYNTHETIC_SIZE = (480, 640)  # (height, width): a typical Stanford Cars photo
TARGETS = {  # ratio name → (comparison, bound) the engine must meet
    "speedup_vs_original": (">=", 30.0),
    "speedup_vs_original_batched": (">=", 30.0),
    "speedup_vs_tf_keras_vis": (">=", 5.0),
    "speedup_vs_tf_keras_vis_single": (">=", 10.0),
    "overhead_vs_forward": ("<=", 1.2),
}


# -- photos -------------------------------------------------------------------------------------------------
def load_photos(count: int, seed: int = 0) -> tuple[list[np.ndarray], str]:
    """``count`` RGB uint8 photos: the shared Stanford Cars ones when present (decoded here, never copied),
    else seeded random photos of a realistic size."""
    paths = sorted(SHARED_PHOTOS.glob("*.jpg"))[:count] if SHARED_PHOTOS.is_dir() else []
    decoded = [cv2.imread(str(path)) for path in paths]
    if len(decoded) == count and all(image is not None for image in decoded):
        photos = [cv2.cvtColor(image, cv2.COLOR_BGR2RGB) for image in decoded]
        widths = sorted(p.shape[1] for p in photos)
        return photos, (f"{count} shared Stanford Cars photos (widths {widths[0]}–{widths[-1]} px, "
                        f"median {widths[count // 2]})")
    rng = np.random.default_rng(seed)
    height, width = SYNTHETIC_SIZE
    photos = [rng.integers(0, 256, (height, width, 3), dtype=np.uint8) for _ in range(count)]
    return photos, f"{count} synthetic random photos {width}×{height} (shared photos absent)"


def resize_to_input(photo: np.ndarray, size: int = 224) -> np.ndarray:
    """The same shrink the engine applies (area averaging), for contenders that need a 224×224 input."""
    return cv2.resize(photo, (size, size), interpolation=cv2.INTER_AREA)


# -- the original study's code (Korean CAM/Grad-CAM lab), reproduced as the reference ------------------------
# Copied in behaviour from /work/shared/original/000_b0e83331f8dcbff7.txt: a new Model per call, an eager
# call, a Python loop over the 2,048 channels, np.max normalisation, cv2.resize to the photo.
# Adapted for Keras 3, and only that: `Model([model.inputs], ...)` became `Model(model.inputs, ...)`
# (Keras 3 accepts the nested list but warns on every call that the input structure does not match).
# Everything else runs unchanged: `tf.keras` is Keras 3 here, and `numpy_array += tensor` still defers to
# TensorFlow (the accumulator becomes an EagerTensor), so the original `.numpy()` calls work as written.
# Its Grad-CAM also keeps the original's quirk: `np.zeros(conv_output.shape[0:2])` is (1, 7) and
# broadcasting to (7, 7) on the first `+=` makes it work.
def normalize_and_resize_img(input):
    """Normalizes images: `uint8` -> `float32`."""
    image = tf.image.resize(input["image"], [224, 224])
    input["image"] = tf.cast(image, tf.float32) / 255.0
    return input["image"], input["label"]


def generate_cam(model, item):
    item = copy.deepcopy(item)
    width = item["image"].shape[1]
    height = item["image"].shape[0]

    img_tensor, class_idx = normalize_and_resize_img(item)

    cam_model = tf.keras.models.Model(model.inputs, [model.layers[-3].output, model.output])
    conv_outputs, predictions = cam_model(tf.expand_dims(img_tensor, 0))

    conv_outputs = conv_outputs[0, :, :, :]
    class_weights = model.layers[-1].get_weights()[0]

    cam_image = np.zeros(dtype=np.float32, shape=conv_outputs.shape[0:2])
    for i, w in enumerate(class_weights[:, class_idx]):
        cam_image += w * conv_outputs[:, :, i]

    cam_image /= np.max(cam_image)
    cam_image = cam_image.numpy()
    cam_image = cv2.resize(cam_image, (width, height))
    return cam_image


def generate_grad_cam(model, activation_layer, item):
    item = copy.deepcopy(item)
    width = item["image"].shape[1]
    height = item["image"].shape[0]
    img_tensor, class_idx = normalize_and_resize_img(item)

    grad_model = tf.keras.models.Model(model.inputs, [model.get_layer(activation_layer).output, model.output])

    with tf.GradientTape() as tape:
        conv_output, pred = grad_model(tf.expand_dims(img_tensor, 0))

        loss = pred[:, class_idx]
        output = conv_output[0]
        grad_val = tape.gradient(loss, conv_output)[0]

    weights = np.mean(grad_val, axis=(0, 1))
    grad_cam_image = np.zeros(dtype=np.float32, shape=conv_output.shape[0:2])
    for k, w in enumerate(weights):
        grad_cam_image += w * output[:, :, k]

    grad_cam_image /= np.max(grad_cam_image)
    grad_cam_image = grad_cam_image.numpy()
    grad_cam_image = cv2.resize(grad_cam_image, (width, height))
    return grad_cam_image


# -- contenders ---------------------------------------------------------------------------------------------
@dataclass
class Contender:
    """One timed callable; ``photos_per_call`` turns a call's time into time per photo."""

    name: str
    run: Callable[[int], object]  # argument: call number, to cycle through photos
    photos_per_call: int = 1
    calls_per_round: int = 1
    warmup_calls: int = 1
    samples: list[float] = field(default_factory=list)

    @property
    def ms_per_photo(self) -> float:
        return statistics.median(self.samples) * 1000.0 / self.photos_per_call


def _ours(explainer: Explainer, photos, batch_uint8) -> list[Contender]:
    def single(call: int):
        photo = photos[call % len(photos)]
        raw = explainer.explain([photo], methods=("cam", "gradcam"), layer=LAYER)[0]
        height, width = photo.shape[:2]
        return [photo_heatmap(raw, method, LAYER, height, width) for method in ("cam", "gradcam")]

    def compiled(batch):
        def run(call: int):
            _, _, _, *maps = explainer.run_preprocessed_batch(batch, methods=("cam", "gradcam"), layer=LAYER)
            return [m.numpy() for m in maps]

        return run

    return [
        Contender("ours: explain 1 photo + maps at photo size", single, calls_per_round=5, warmup_calls=3),
        Contender(f"ours: compiled call, batch {BATCH}", compiled(batch_uint8), BATCH, warmup_calls=2),
        Contender("ours: compiled call, batch 1 (breakdown)", compiled(batch_uint8[:1]), calls_per_round=5,
                  warmup_calls=3),
    ]


def _forward(model: keras.Model, batch_uint8) -> list[Contender]:
    """The floor: predicting only. Preprocessing is inside, as in ours, so the gap is the explaining alone."""

    @tf.function(input_signature=[tf.TensorSpec([None, 224, 224, 3], tf.uint8)], reduce_retracing=True)
    def forward(images):
        return model(preprocess(images, "caffe"), training=False)

    def run(batch):
        return lambda call: forward(tf.constant(batch)).numpy()

    return [
        Contender(f"forward pass, batch {BATCH} (floor)", run(batch_uint8), BATCH, warmup_calls=2),
        Contender("forward pass, batch 1 (breakdown)", run(batch_uint8[:1]), calls_per_round=5, warmup_calls=3),
    ]


def _original(model: keras.Model, photos) -> list[Contender]:
    items = [{"image": photo, "label": i % NUM_CLASSES} for i, photo in enumerate(photos)]
    return [
        Contender("original study: generate_cam", lambda call: generate_cam(model, items[call % len(items)])),
        Contender("original study: generate_grad_cam",
                  lambda call: generate_grad_cam(model, LAYER, items[call % len(items)])),
    ]


def _tf_keras_vis(model: keras.Model, photos, batch_uint8) -> list[Contender]:
    """Grad-CAM from tf-keras-vis as its documentation recommends (clone, logits), on the same layer.

    It runs on Keras 3 without a shim. It takes a preprocessed input, so the single-photo call includes the
    same resize and Keras' caffe ``preprocess_input``, and the map is resized to the photo as ours is.
    ``seek_penultimate_conv_layer=False`` keeps it on ``conv5_block3_out`` (else it moves to the last Conv2D,
    ``conv5_block3_3_conv``).
    """
    try:
        from tf_keras_vis.gradcam import Gradcam
        from tf_keras_vis.utils.model_modifiers import ReplaceToLinear
        from tf_keras_vis.utils.scores import CategoricalScore
    except ImportError as error:
        raise SystemExit(f"tf-keras-vis is needed for this comparison ({error}); "
                         "install it in the venv: pip install tf-keras-vis==0.8.7") from None

    gradcam = Gradcam(model, model_modifier=ReplaceToLinear(), clone=True)
    caffe = keras.applications.resnet50.preprocess_input
    options = dict(penultimate_layer=LAYER, seek_penultimate_conv_layer=False)

    def single(call: int):
        photo = photos[call % len(photos)]
        seed = caffe(resize_to_input(photo).astype(np.float32))
        cam = gradcam(CategoricalScore(call % NUM_CLASSES), seed, **options)
        return cv2.resize(cam[0], (photo.shape[1], photo.shape[0]))

    batch_classes = [i % NUM_CLASSES for i in range(BATCH)]

    def batched(call: int):
        return gradcam(CategoricalScore(batch_classes), caffe(batch_uint8.astype(np.float32)), **options)

    return [
        Contender("tf-keras-vis Gradcam, 1 photo at a time", single, calls_per_round=2, warmup_calls=2),
        Contender(f"tf-keras-vis Gradcam, batch {BATCH}", batched, BATCH),
    ]


# -- timing -------------------------------------------------------------------------------------------------
def run_interleaved(contenders: list[Contender], repeats: int, log=print) -> None:
    """Warm every contender up, then ``repeats`` rounds in which each runs ``calls_per_round`` times."""
    for c in contenders:
        start = time.perf_counter()
        for call in range(c.warmup_calls):
            c.run(call)
        log(f"  warmed up {c.name} ({time.perf_counter() - start:.1f} s)")
    call = 0  # keeps cycling through the photos across contenders and rounds
    for round_index in range(repeats):
        for c in contenders:
            for _ in range(c.calls_per_round):
                start = time.perf_counter()
                c.run(call)
                c.samples.append(time.perf_counter() - start)
                call += 1
        log(f"  round {round_index + 1}/{repeats} done")


def _check(name: str, value: float) -> str:
    comparison, bound = TARGETS[name]
    met = value >= bound if comparison == ">=" else value <= bound
    return f"{'met' if met else 'MISSED'} (target {comparison} {bound:g})"


def summarise(by_name: dict[str, Contender]) -> tuple[dict[str, tuple[float, float]], float]:
    """name → (ratio, ceiling) and the original's CAM + Grad-CAM milliseconds per photo. The ceiling is the
    ratio an engine with zero overhead over the forward pass (at the same batch size) would reach."""
    ms = {name: c.ms_per_photo for name, c in by_name.items()}
    original = ms["original study: generate_cam"] + ms["original study: generate_grad_cam"]
    ours_single = ms["ours: explain 1 photo + maps at photo size"]
    ours_batched = ms[f"ours: compiled call, batch {BATCH}"]
    forward_single = ms["forward pass, batch 1 (breakdown)"]
    forward_batched = ms[f"forward pass, batch {BATCH} (floor)"]
    tkv_single = ms["tf-keras-vis Gradcam, 1 photo at a time"]
    tkv_batched = ms[f"tf-keras-vis Gradcam, batch {BATCH}"]
    return {
        "speedup_vs_original": (original / ours_single, original / forward_single),
        "speedup_vs_original_batched": (original / ours_batched, original / forward_batched),
        "speedup_vs_tf_keras_vis": (tkv_batched / ours_batched, tkv_batched / forward_batched),
        "speedup_vs_tf_keras_vis_single": (tkv_single / ours_single, tkv_single / forward_single),
        "overhead_vs_forward": (ours_batched / forward_batched, 1.0),
        "overhead_vs_forward_single": (ours_single / forward_single, 1.0),
    }, original


def print_table(contenders: list[Contender], ratios: dict, original_ms: float) -> None:
    print(f"\n{'contender':<48} {'ms/photo':>9} {'ms/call':>9} {'min':>8} {'max':>8} {'n':>3}")
    for c in contenders:
        calls = [s * 1000.0 for s in c.samples]
        print(f"{c.name:<48} {c.ms_per_photo:9.1f} {statistics.median(calls):9.1f} "
              f"{min(calls):8.1f} {max(calls):8.1f} {len(calls):3d}")
    print(f"{'original study: CAM + Grad-CAM (sum)':<48} {original_ms:9.1f}")
    print(f"\n{'ratio':<32} {'measured':>9} {'ceiling':>9}  target   (ceiling: zero overhead over the forward pass)")
    for name, (value, ceiling) in ratios.items():
        verdict = _check(name, value) if name in TARGETS else "(breakdown: explain() at batch 1)"
        print(f"{name:<32} {value:8.2f}× {ceiling:8.2f}×  {verdict}")


def _parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=None,
                        help="timed rounds per contender (default 7, or 3 with --quick)")
    parser.add_argument("--quick", action="store_true", help="fewer rounds, for a smoke run")
    args = parser.parse_args(argv)
    if args.repeats is None:
        args.repeats = 3 if args.quick else 7
    if args.repeats < 1:
        parser.error(f"--repeats must be at least 1, got {args.repeats}")
    return args


def main(argv=None) -> int:
    args = _parse_args(argv)
    load_before = os.getloadavg()[0]
    photos, photo_note = load_photos(BATCH)
    batch_uint8 = np.stack([resize_to_input(p) for p in photos])
    keras.utils.set_random_seed(0)
    model = build_cam_model("resnet50", num_classes=NUM_CLASSES, weights=None)
    bundle = inspect_model(model, name="ResNet50 CAM (random weights)", source="bench", preprocessing="caffe")
    explainer = Explainer(bundle, freeze="now")  # weights frozen into constants: BatchNorm folded
    print(f"ResNet50 → GAP → Dense({NUM_CLASSES}), random weights, layer {LAYER}, CPU "
          f"({os.cpu_count()} cores), {photo_note}; {args.repeats} interleaved rounds")

    contenders = (
        _ours(explainer, photos, batch_uint8) + _forward(model, batch_uint8)
        + _original(model, photos) + _tf_keras_vis(model, photos, batch_uint8)
    )
    started = time.perf_counter()
    run_interleaved(contenders, args.repeats)
    by_name = {c.name: c for c in contenders}
    ratios, original_ms = summarise(by_name)
    print_table(contenders, ratios, original_ms)

    result = {name: round(value, 2) for name, (value, _) in ratios.items()}
    result["ceilings"] = {name: round(ceiling, 2) for name, (_, ceiling) in ratios.items() if name.startswith("speedup")}
    result["targets_met"] = {name: _check(name, ratios[name][0]).startswith("met") for name in TARGETS}
    result["ms_per_photo"] = {name: round(c.ms_per_photo, 2) for name, c in by_name.items()}
    result["ms_per_photo"]["original study: CAM + Grad-CAM (sum)"] = round(original_ms, 1)
    result.update(
        batch=BATCH, layer=LAYER, repeats=args.repeats, photos=photo_note,
        timing_seconds=round(time.perf_counter() - started, 1),
        load_average_before_after=[round(load_before, 2), round(os.getloadavg()[0], 2)],
    )
    print(json.dumps(result, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
