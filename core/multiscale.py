"""Test-time fusion of CAM/Grad-CAM maps over input sizes and a horizontal flip.

A 224-pixel input gives MobileNetV2 a 7×7 map: each cell covers 32 pixels, so box edges are coarse.
A fully convolutional backbone followed by global average pooling accepts any input size once its input
layer is rebuilt (:func:`at_input_size`); a 448-pixel input gives a 14×14 map. Averaging the maps of
several sizes and of the mirrored photo (mirrored back) cancels some of each view's noise.

    explainer = FusedExplainer(bundle, InputRecipe(sizes=(224, 448), flip=True))
    raw = explainer.explain([photo], methods=("cam", "gradcam"))[0]   # a RawExplanation, as Explainer's

The fused map of each (method, layer) is the mean of the views' *normalised* maps (the paper
normalisation of :func:`core.explanation.normalization_for`), resized to the finest view's grid; its
class scores are the first view's (first size, not mirrored), which also fixes the class every other
view explains, so all views explain the same class.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import keras
import numpy as np

from core.cam import Explainer, RawExplanation, RunOptions, Target
from core.explanation import normalization_for
from core.heatmaps import normalize_map, upsample
from core.model_spec import ModelBundle, ModelStructureError, inspect_model

__all__ = ["InputRecipe", "at_input_size", "fuse_maps", "FusedExplainer"]

MIN_SIZE, MAX_SIZE = 8, 1024


@dataclass(frozen=True)
class InputRecipe:
    """Which views of a photo the network sees: square input sizes (the first one decides the class;
    none means the model's own input size) and whether the mirrored photo is added."""

    sizes: tuple[int, ...] = ()
    flip: bool = False

    def __post_init__(self):
        for size in self.sizes:
            is_int = isinstance(size, (int, np.integer)) and not isinstance(size, bool)
            if not is_int or not MIN_SIZE <= size <= MAX_SIZE:
                raise ValueError(f"input size {size!r} must be an integer in [{MIN_SIZE}, {MAX_SIZE}]")
        if len(set(self.sizes)) != len(self.sizes):
            raise ValueError(f"input sizes repeat: {self.sizes}")

    @property
    def views(self) -> int:
        return max(1, len(self.sizes)) * (2 if self.flip else 1)

    def label(self) -> str:
        sizes = "+".join(f"{s}px" for s in self.sizes) or "model's input size"
        return sizes + (" + flip" if self.flip else "")

    def as_dict(self) -> dict:
        return {"sizes": list(self.sizes), "flip": self.flip}

    @classmethod
    def from_dict(cls, data: dict) -> "InputRecipe":
        return cls(tuple(int(s) for s in data.get("sizes", ())), bool(data.get("flip", False)))


def at_input_size(bundle: ModelBundle, size: int | tuple[int, int]) -> ModelBundle:
    """The same network and weights taking ``size``×``size`` (or ``(height, width)``) photos; the caller's
    model is untouched.

    Works for fully convolutional backbones ending in global pooling (MobileNetV2, ResNet50). Raises
    ModelStructureError for a model whose weights depend on the input size (e.g. Flatten → Dense).
    """
    height, width = (size, size) if isinstance(size, (int, np.integer)) else size
    if bundle.input_size == (height, width):
        return bundle
    config = copy.deepcopy(bundle.model.get_config())
    inputs = [layer for layer in config["layers"] if layer["class_name"] == "InputLayer"]
    if len(inputs) != 1:
        raise ModelStructureError(f"'{bundle.name}' has {len(inputs)} input layers; expected one image input")
    inputs[0]["config"]["batch_shape"] = [None, int(height), int(width), 3]
    for layer in config["layers"]:
        layer.pop("build_config", None)  # shapes follow the new input when the model is rebuilt
    try:
        model = keras.Model.from_config(config)
        model.set_weights(bundle.model.get_weights())
    except Exception as error:  # Keras raises several types for shape mismatches
        raise ModelStructureError(
            f"'{bundle.name}' cannot take {height}×{width} input: {str(error).splitlines()[0][:200]}. "
            "Only fully convolutional models ending in global pooling can change input size."
        ) from None
    return inspect_model(
        model, name=f"{bundle.name} @ {height}×{width}", source=bundle.source,
        preprocessing=bundle.preprocessing,
        class_names=bundle.class_names, class_groups=bundle.class_groups, metadata=bundle.metadata,
        file=bundle.file,
    )


def _fixed_targets(first: list[RawExplanation], target) -> list[Target]:
    """The class(es) each photo's other views must explain: the first view's choice."""
    targets = [target] * len(first) if isinstance(target, Target) else list(target)
    return [t if t.classes else Target.of_class(raw.predicted_class) for t, raw in zip(targets, first)]


def fuse_maps(views: list[np.ndarray], method: str, variant: str) -> np.ndarray:
    """Mean of the views' normalised maps on the finest grid (views are already un-mirrored)."""
    relu, mode = normalization_for(method, variant)
    height = max(v.shape[0] for v in views)
    width = max(v.shape[1] for v in views)
    total = np.zeros((height, width), np.float32)
    for view in views:
        values = normalize_map(view, relu=relu, mode=mode).values
        total += values if values.shape == (height, width) else upsample(values, height, width)
    return total / len(views)


class FusedExplainer:
    """An :class:`Explainer` per input size, with the same ``explain`` call and result type."""

    def __init__(self, bundle: ModelBundle, recipe: InputRecipe = InputRecipe(), base: Explainer | None = None):
        """``base``: an existing Explainer of ``bundle`` to reuse for the model's own input size (its
        compiled functions, each with a frozen copy of the weights, are then not built twice)."""
        self.bundle = bundle
        self.recipe = recipe
        base = base or Explainer(bundle)
        sizes = recipe.sizes or (None,)  # None: the model as it is
        self.explainers = [base if size is None or (size, size) == bundle.input_size
                           else Explainer(at_input_size(bundle, size)) for size in sizes]

    def check_request(self, methods, layer):
        return self.explainers[0].check_request(methods, layer)

    def explain(self, images, methods=("cam", "gradcam"), layer: str | None = None,
                target: Target | list[Target] = Target(), variant: str = "paper",
                batch_size: int = 16, options: RunOptions = RunOptions()) -> list[RawExplanation]:
        """Raw class scores of the first view and fused maps (see the module docstring)."""
        images = [np.asarray(image) for image in images]
        pairs = self.check_request(methods, layer)
        first = self.explainers[0].explain_pairs(images, pairs, target, variant, batch_size, options)
        if self.recipe.views == 1:
            return first
        fixed = _fixed_targets(first, target)
        mirrored = [np.ascontiguousarray(image[:, ::-1]) for image in images] if self.recipe.flip else None
        views: list[tuple[list[RawExplanation], bool]] = [(first, False)]
        for index, explainer in enumerate(self.explainers):
            if index > 0:
                views.append((explainer.explain_pairs(images, pairs, fixed, variant, batch_size, options), False))
            if mirrored is not None:
                views.append((explainer.explain_pairs(mirrored, pairs, fixed, variant, batch_size, options),
                              True))
        fused = []
        for i, raw in enumerate(first):
            maps = {
                (method, layer_name): fuse_maps(
                    [result[i].maps[(method, layer_name)][:, ::-1] if flipped
                     else result[i].maps[(method, layer_name)] for result, flipped in views],
                    method, variant)
                for method, layer_name in pairs
            }
            fused.append(RawExplanation(raw.probabilities, raw.logits, raw.class_weights, maps, variant))
        return fused
