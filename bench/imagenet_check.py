"""Check the torch → Keras MobileNetV2 conversion on the 200 shared ImageNet photos (top-1 / top-5).

Reference numbers (../shared/README.md): exact conversion top-1 0.860, top-5 0.970; without the
padding fix top-1 0.765. Measured here: exact 0.875 / 0.970 (the model matches a numpy re-implementation
of torch's forward pass, so the gap is image decoding/resizing detail: other resizers give 0.845-0.865);
Keras' padding 0.765; Keras' padding and epsilon 0.005. Also times a cold load (convert + cache) and a
warm load (from the cache).

    .venv/bin/python -m bench.imagenet_check [--limit 50] [--skip-naive]

The last line printed is one JSON object with all numbers.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf
from PIL import Image

from core.imagenet_classes import imagenet_wnids_and_names
from core.offline_mobilenet import (
    convert_checkpoint,
    load_offline_mobilenet_v2,
    preprocess_torch,
    torch_eval_crop,
)
from core.paths import PROJECT_ROOT

SAMPLES_DIR = PROJECT_ROOT.parent / "shared" / "data" / "imagenet_samples"
BATCH_SIZE = 25
# The exact conversion first, then naive ones without the torch fixes (expected top-1 0.765, ~0).
VARIANTS = {
    "exact": {"symmetric_padding": True, "torch_epsilon": True},
    "keras_padding": {"symmetric_padding": False, "torch_epsilon": True},
    "keras_padding_and_epsilon": {"symmetric_padding": False, "torch_epsilon": False},
}


def sample_paths(folder: Path = SAMPLES_DIR, limit: int | None = None) -> list[Path]:
    """The ``<wnid>_<name>.JPEG`` photos in ``folder``, sorted by file name, the first ``limit`` of them."""
    if not folder.is_dir():
        raise FileNotFoundError(f"ImageNet sample folder {folder} is missing (it lives in ../shared)")
    paths = sorted(folder.glob("*.JPEG"))
    return paths[:limit] if limit is not None else paths


def true_class_index(path: Path) -> int:
    """Class index of a photo named ``<wnid>_<name>.JPEG`` (position of the wnid in sorted order)."""
    index_of = {wnid: index for index, (wnid, _) in enumerate(imagenet_wnids_and_names())}
    wnid = path.name.split("_", 1)[0]
    if wnid not in index_of:
        raise ValueError(f"{path.name} does not start with an ImageNet wnid (got {wnid!r})")
    return index_of[wnid]


def load_inputs(paths: list[Path]) -> np.ndarray:
    """Photos as torchvision evaluates them: short side 256, centre 224, torch normalisation."""
    crops = []
    for path in paths:
        with Image.open(path) as image:
            crops.append(torch_eval_crop(image))
    return preprocess_torch(np.stack(crops))


def top_k_accuracy(model: keras.Model, paths: list[Path], batch_size: int = BATCH_SIZE) -> dict[str, float]:
    """Top-1 and top-5 accuracy of ``model`` (softmax over 1000 ImageNet classes) on ``paths``."""
    predict = tf.function(
        lambda x: model(x, training=False),
        input_signature=[tf.TensorSpec([None, 224, 224, 3], tf.float32)],
    )
    labels = np.array([true_class_index(path) for path in paths])
    top5 = []
    for start in range(0, len(paths), batch_size):
        probabilities = predict(load_inputs(paths[start : start + batch_size])).numpy()
        top5.append(np.argsort(-probabilities, axis=1)[:, :5])
    top5 = np.concatenate(top5)
    return {
        "top1": float(np.mean(top5[:, 0] == labels)),
        "top5": float(np.mean((top5 == labels[:, None]).any(axis=1))),
    }


def time_cold_and_warm_load() -> dict[str, float]:
    """Seconds to convert + cache into an empty cache folder, then to load from that cache."""
    previous = os.environ.get("CAM_EXPLORER_CACHE")
    with tempfile.TemporaryDirectory() as folder:
        os.environ["CAM_EXPLORER_CACHE"] = folder
        try:
            start = time.perf_counter()
            load_offline_mobilenet_v2(cache=True)
            cold = time.perf_counter() - start
            start = time.perf_counter()
            load_offline_mobilenet_v2(cache=True)
            warm = time.perf_counter() - start
        finally:
            if previous is None:
                os.environ.pop("CAM_EXPLORER_CACHE", None)
            else:
                os.environ["CAM_EXPLORER_CACHE"] = previous
    return {"cold_load_s": round(cold, 2), "warm_load_s": round(warm, 2)}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=None, help="only the first N photos (sorted by name)")
    parser.add_argument("--skip-naive", action="store_true", help="only the exact conversion")
    parser.add_argument("--skip-timing", action="store_true", help="skip the cold/warm load timing")
    args = parser.parse_args(argv)

    paths = sample_paths(limit=args.limit)
    result: dict = {"photos": len(paths)}
    if not args.skip_timing:
        result.update(time_cold_and_warm_load())
        print(f"load: cold {result['cold_load_s']} s (convert + cache), warm {result['warm_load_s']} s")
    variants = dict(list(VARIANTS.items())[:1]) if args.skip_naive else VARIANTS
    for label, fixes in variants.items():
        scores = top_k_accuracy(convert_checkpoint(**fixes), paths)
        result[label] = scores
        print(f"{label:>25}: top-1 {scores['top1']:.3f}  top-5 {scores['top5']:.3f}  on {len(paths)} photos")
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main(sys.argv[1:])
