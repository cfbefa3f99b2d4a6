"""The CAM model to fine-tune: a backbone, global average pooling and Dense(num_classes, softmax), flat.

* ``resnet50`` — the original study's model (:func:`core.model_sources.build_cam_model`); its ImageNet
  start needs the Keras weights download, which offline never works.
* ``mobilenetv2`` — torchvision's ImageNet MobileNetV2, converted offline
  (:func:`core.model_sources.mobilenetv2_offline_backbone`), headless at ``out_relu``: fine-tuning works
  without any download. Its weights need 224×224 inputs and "torch" preprocessing.
* ``tiny`` — three small convolutions, for tests and development only (seconds per run, any input size).
* ``auto`` — ResNet50 when its ImageNet weights can be had, else the offline MobileNetV2; the run says so.

The classifier is float32 even under mixed precision, so the softmax and the loss keep full precision.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, replace

import keras

from core.model_sources import WeightsUnavailableError, build_cam_model, mobilenetv2_offline_backbone

__all__ = ["Backbone", "build_backbone", "attach_cam_head", "with_float32_layers", "OFFLINE_INPUT_SIZE"]

OFFLINE_INPUT_SIZE = 224
POOLING_NAME = "avg_pool"
CLASSIFIER_NAME = "predictions"


@dataclass(frozen=True)
class Backbone:
    """A CAM model ready to compile, with what the metadata and the user need to know about it."""

    model: keras.Model
    key: str  # "resnet50", "mobilenetv2" or "tiny": what --resume rebuilds
    label: str  # for people, e.g. "MobileNetV2 (offline ImageNet weights)"
    preprocessing: str  # the scheme its start weights expect
    cam_layer: str  # the layer feeding global average pooling
    start: str  # where its weights came from
    note: str = ""  # why this backbone, when it was chosen automatically


def attach_cam_head(features: keras.Model, num_classes: int, name: str) -> keras.Model:
    """``features.output`` → GAP → Dense(softmax), flat on the same graph (no nested model)."""
    pooled = keras.layers.GlobalAveragePooling2D(name=POOLING_NAME)(features.output)
    classifier = keras.layers.Dense(num_classes, activation="softmax", dtype="float32", name=CLASSIFIER_NAME)
    outputs = classifier(pooled)
    return keras.Model(features.input, outputs, name=name)


def with_float32_layers(model: keras.Model, names: tuple[str, ...] | None = None) -> keras.Model:
    """A copy of ``model`` whose layers (all, or those ``names``) compute in float32, same weights.

    Used for the classifier under mixed precision and for saving a mixed-precision model so that the
    dashboard, on CPU, runs it in float32.
    """
    config = copy.deepcopy(model.get_config())
    for layer in config["layers"]:
        if names is None or layer["name"] in names:
            layer["config"]["dtype"] = "float32"
    copied = keras.Model.from_config(config)
    copied.set_weights(model.get_weights())
    return copied


def _resnet50(num_classes: int, size: int, imagenet: bool) -> Backbone:
    weights = "imagenet" if imagenet else None
    model = build_cam_model("resnet50", num_classes, weights=weights, input_size=size)
    if keras.config.dtype_policy().compute_dtype != "float32":
        model = with_float32_layers(model, (CLASSIFIER_NAME,))
    start = "ImageNet (Keras ResNet50 weights)" if imagenet else "random initialisation"
    return Backbone(model, "resnet50", "ResNet50", "caffe", "conv5_block3_out", start)


def _mobilenetv2(num_classes: int, size: int, imagenet: bool) -> Backbone:
    if imagenet:
        if size != OFFLINE_INPUT_SIZE:
            raise ValueError(
                f"the offline MobileNetV2 weights are converted for "
                f"{OFFLINE_INPUT_SIZE}×{OFFLINE_INPUT_SIZE} "
                f"inputs; use --image-size {OFFLINE_INPUT_SIZE} (or --weights none for other sizes)"
            )
        features = mobilenetv2_offline_backbone()
        start = "ImageNet (torchvision MobileNetV2 weights, converted offline)"
    else:
        features = keras.applications.MobileNetV2(include_top=False, weights=None,
                                                  input_shape=(size, size, 3))
        start = "random initialisation"
    model = attach_cam_head(features, num_classes, "mobilenetv2_cam")
    return Backbone(model, "mobilenetv2", "MobileNetV2", "torch", "out_relu", start)


def _tiny(num_classes: int, size: int, imagenet: bool) -> Backbone:
    """Test/development backbone: no pretrained weights exist, so ``imagenet`` is ignored (``start`` says
    "random initialisation")."""
    inputs = keras.Input((size, size, 3), name="image")
    x = keras.layers.Conv2D(16, 3, strides=2, padding="same", activation="relu", name="conv1")(inputs)
    x = keras.layers.Conv2D(32, 3, strides=2, padding="same", activation="relu", name="conv2")(x)
    x = keras.layers.Conv2D(32, 3, padding="same", activation="relu", name="features")(x)
    model = attach_cam_head(keras.Model(inputs, x), num_classes, "tiny_cam")
    return Backbone(model, "tiny", "tiny CNN (tests and development only)", "tf", "features",
                    "random initialisation")


BUILDERS: dict[str, Callable[[int, int, bool], Backbone]] = {
    "resnet50": _resnet50, "mobilenetv2": _mobilenetv2, "tiny": _tiny,
}


def build_backbone(key: str, num_classes: int, size: int = 224, weights: str = "imagenet") -> Backbone:
    """Build the CAM model for ``key`` (see module docstring); ``weights`` is "imagenet" or "none".

    An explicit ``resnet50`` with ImageNet weights raises :class:`WeightsUnavailableError` offline, with
    the way out; ``auto`` falls back to the offline MobileNetV2 instead and says why in ``note``.
    """
    if num_classes < 2:
        raise ValueError(f"a classifier needs at least 2 classes, got {num_classes}")
    imagenet = weights == "imagenet"
    if key == "auto":
        if not imagenet:
            return _resnet50(num_classes, size, imagenet=False)
        try:
            built = _resnet50(num_classes, size, imagenet=True)
        except WeightsUnavailableError as error:
            fallback = _mobilenetv2(num_classes, size, imagenet=True)
            return replace(fallback, note=f"{error} So the offline MobileNetV2 is used instead.")
        return replace(built, note="ResNet50 ImageNet weights are available, as in the original study.")
    if key not in BUILDERS:
        raise ValueError(f"unknown backbone {key!r}; choose from {['auto', *BUILDERS]}")
    try:
        return BUILDERS[key](num_classes, size, imagenet)
    except WeightsUnavailableError as error:
        raise WeightsUnavailableError(
            f"{error} For training offline use --backbone mobilenetv2 (real ImageNet weights, no download), "
            "or --weights none to start ResNet50 from random weights (much worse on 8,144 photos)."
        ) from None
