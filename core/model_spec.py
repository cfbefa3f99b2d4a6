"""What the engine needs to know about a classifier, read off its layer graph once.

A ``ModelBundle`` wraps a Keras model with its input size, preprocessing, class names, the CAM head
(the layer feeding global average pooling and the Dense classifier after it) and the layers offered
for Grad-CAM. ``inspect_model`` finds these by walking the graph, so any flat functional model works.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

import keras

# Layers that pass a tensor on without changing which features it holds.
_PASS_THROUGH = (keras.layers.Dropout, keras.layers.Activation, keras.layers.Softmax)
# The original study compares Grad-CAM on these ResNet50 block outputs.
ORIGINAL_STUDY_LAYERS = ("conv5_block3_out", "conv4_block3_out", "conv3_block3_out")
# Names Keras applications give to residual block outputs (ResNet "_out", MobileNetV2 "_add").
_BLOCK_OUTPUT_SUFFIXES = ("_out", "_add", "out_relu")


@dataclass(frozen=True)
class CamHead:
    """Global average pooling → Dense: CAM weights are the Dense kernel's columns."""

    feature_layer: str
    pooling_layer: str
    classifier_layer: str


@dataclass(frozen=True)
class ScoreHead:
    """How to get the class logits: from the last Dense's input and kernel, or the output as is."""

    dense_layer: str | None  # logits = input @ kernel + bias of this layer; None: use the tensor below
    tensor_layer: str  # the layer whose output feeds the logits computation (or is the logits)
    output_activation: str  # "softmax", "sigmoid" or "linear": probabilities from logits


@dataclass(frozen=True)
class ModelBundle:
    """A classifier plus everything the explanation engine and the UI need to use it."""

    model: keras.Model
    name: str
    source: str  # where it came from and why it is the one in use, for the user
    preprocessing: str
    class_names: tuple[str, ...]
    score_head: ScoreHead
    cam_head: CamHead | None
    cam_unavailable_reason: str | None
    conv_layers: tuple[str, ...]  # every layer with a spatial output, deepest first
    suggested_layers: tuple[str, ...]  # a short list for menus and the layer grid, deepest first
    class_groups: dict[str, tuple[int, ...]] = field(default_factory=dict)
    metadata: dict = field(default_factory=dict)
    file: Path | None = None  # the .keras file it was loaded from (calibrations are stored beside it)

    @property
    def input_size(self) -> tuple[int, int]:
        """(height, width) the network takes."""
        _, height, width, _ = self.model.input_shape
        return int(height), int(width)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def default_layer(self) -> str:
        """Grad-CAM's default: the CAM feature layer when there is one, else the deepest conv layer."""
        return self.cam_head.feature_layer if self.cam_head else self.conv_layers[0]

    def replace(self, **changes) -> "ModelBundle":
        return dataclasses.replace(self, **changes)


class ModelStructureError(ValueError):
    """The model cannot be explained (no spatial layers, not an image model, unknown layer)."""


def _parent_layer(layer):
    """The single layer feeding ``layer``, or None when it has zero or several inputs."""
    nodes = getattr(layer, "_inbound_nodes", [])
    if len(nodes) != 1 or len(nodes[0].parent_nodes) != 1:
        return None
    return nodes[0].parent_nodes[0].operation


def _activation_name(layer) -> str:
    if isinstance(layer, keras.layers.Softmax):
        return "softmax"
    fn = getattr(layer, "activation", None)
    return getattr(fn, "__name__", "linear") if fn is not None else "linear"


def _find_score_head(model: keras.Model) -> ScoreHead:
    """Locate the logits: a final Dense (optionally followed by a softmax/sigmoid layer)."""
    last = model.get_layer(index=-1) if model.layers else None
    activation = "linear"
    node = last
    if isinstance(node, (keras.layers.Activation, keras.layers.Softmax)):
        activation = _activation_name(node)
        node = _parent_layer(node)
    if isinstance(node, keras.layers.Dense):
        dense_activation = _activation_name(node)
        if activation == "linear":
            activation = dense_activation if dense_activation in ("softmax", "sigmoid") else "linear"
        parent = _parent_layer(node)
        if parent is not None and dense_activation in ("softmax", "sigmoid", "linear"):
            return ScoreHead(node.name, parent.name, activation)
    if activation != "linear" and node is not None:
        return ScoreHead(None, node.name, activation)
    return ScoreHead(None, last.name, "linear")


def _find_cam_head(model: keras.Model, score: ScoreHead) -> tuple[CamHead | None, str | None]:
    """CAM needs features → global average pooling → (dropout) → Dense; say why when absent."""
    if score.dense_layer is None:
        return None, (
            "CAM needs a Dense classifier at the end of the model, fed by global average pooling; "
            f"this model ends in '{score.tensor_layer}'. Grad-CAM works on any convolutional layer."
        )
    node = model.get_layer(score.tensor_layer)
    while isinstance(node, keras.layers.Dropout):
        node = _parent_layer(node)
    if not isinstance(node, keras.layers.GlobalAveragePooling2D):
        kind = type(node).__name__ if node is not None else "several layers"
        return None, (
            f"CAM needs global average pooling right before the classifier '{score.dense_layer}', "
            f"but it is fed by {kind}. Grad-CAM works on any convolutional layer."
        )
    features = _parent_layer(node)
    if features is None:
        return None, "CAM needs one feature layer feeding the global average pooling; found several."
    return CamHead(features.name, node.name, score.dense_layer), None


def _spatial_layers(model: keras.Model) -> tuple[str, ...]:
    """Layers with a 4-D output larger than 1×1, deepest first (input and padding excluded)."""
    names = []
    for layer in model.layers:
        if isinstance(layer, (keras.layers.InputLayer, keras.layers.ZeroPadding2D)):
            continue
        shape = getattr(layer.output, "shape", None)
        if shape is not None and len(shape) == 4 and (shape[1] or 2) > 1 and (shape[2] or 2) > 1:
            names.append(layer.name)
    return tuple(reversed(names))


def _suggested_layers(model: keras.Model, spatial: tuple[str, ...]) -> tuple[str, ...]:
    """The last layer of each resolution stage, plus the original study's ResNet50 layers."""
    by_size: dict[tuple, list[str]] = {}
    for name in spatial:  # deepest first
        by_size.setdefault(tuple(model.get_layer(name).output.shape[1:3]), []).append(name)
    picked = []
    for names in by_size.values():  # a stage's output: its deepest block output, else its deepest layer
        blocks = [n for n in names if n.endswith(_BLOCK_OUTPUT_SUFFIXES)]
        picked.append(blocks[0] if blocks else names[0])
    for name in ORIGINAL_STUDY_LAYERS:
        if name in spatial and name not in picked:
            picked.append(name)
    return tuple(sorted(picked, key=spatial.index))


def inspect_model(
    model: keras.Model,
    *,
    name: str,
    source: str,
    preprocessing: str,
    class_names: tuple[str, ...] | None = None,
    class_groups: dict[str, tuple[int, ...]] | None = None,
    metadata: dict | None = None,
    file: Path | None = None,
) -> ModelBundle:
    """Read the heads and layers off ``model``; raises ModelStructureError if it is no image classifier."""
    shape = model.input_shape
    if isinstance(shape, list) or len(shape) != 4 or shape[-1] != 3 or None in shape[1:3]:
        raise ModelStructureError(
            f"'{name}' takes input of shape {shape}; CAM Explorer needs one RGB image input of fixed "
            "size (batch, height, width, 3)."
        )
    spatial = _spatial_layers(model)
    if not spatial:
        raise ModelStructureError(
            f"'{name}' has no convolutional layer with a spatial output, so there is nothing to map."
        )
    score = _find_score_head(model)
    cam_head, cam_reason = _find_cam_head(model, score)
    num_classes = int(model.output_shape[-1])
    names = tuple(class_names) if class_names else tuple(f"class {i}" for i in range(num_classes))
    if len(names) != num_classes:
        raise ModelStructureError(
            f"'{name}' has {num_classes} outputs but {len(names)} class names were given."
        )
    return ModelBundle(
        model=model,
        name=name,
        source=source,
        preprocessing=preprocessing,
        class_names=names,
        score_head=score,
        cam_head=cam_head,
        cam_unavailable_reason=cam_reason,
        conv_layers=spatial,
        suggested_layers=_suggested_layers(model, spatial),
        class_groups=dict(class_groups or {}),
        metadata=dict(metadata or {}),
        file=file,
    )
