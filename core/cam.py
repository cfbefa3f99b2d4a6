"""CAM (Zhou et al. 2016) and Grad-CAM (Selvaraju et al. 2017) for a batch, in one compiled function.

Both methods are a weighted sum of a layer's feature maps, ``map = Σ_k α_k A_k``; they differ only in
the channel weights α, so each method is one small weights function registered in ``METHODS``:

* CAM: α_k = Σ_c π_c W[k, c], the Dense classifier's kernel columns for the target classes.
* Grad-CAM: α_k = mean over positions of ∂score/∂A_k (paper: score = class logit, map through ReLU).

A target is a set of classes per photo with weights π = softmax of their logits (a single class gives
π = 1). With the logit score, Σ_c π_c z_c has the gradient of log Σ_c exp z_c, the log-probability of
the class group, so "all car classes" localises *a car* rather than one body style. The original study's
variant (softmax probability as the score, no ReLU, divided by the max) stays selectable.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Callable

import keras
import numpy as np
import tensorflow as tf

from core.freezing import FreezableFunction
from core.model_spec import ModelBundle, ModelStructureError
from core.preprocessing import preprocess

VARIANTS = ("paper", "original")


@dataclass(frozen=True)
class _Context:
    """What a weights function may use, all for one layer of one batch."""

    activations: tf.Tensor  # (B, h, w, K)
    gradients: tf.Tensor | None  # ∂score/∂activations, same shape
    class_weights: tf.Tensor  # (B, C), π per photo
    kernel: tf.Tensor | None  # classifier kernel (K, C) for CAM


def _cam_weights(ctx: _Context) -> tf.Tensor:
    return tf.matmul(ctx.class_weights, ctx.kernel, transpose_b=True)


def _gradcam_weights(ctx: _Context) -> tf.Tensor:
    return tf.reduce_mean(ctx.gradients, axis=[1, 2])


@dataclass(frozen=True)
class Method:
    key: str
    label: str
    weights: Callable[[_Context], tf.Tensor]
    needs_gradients: bool
    needs_cam_head: bool


METHODS: dict[str, Method] = {
    "cam": Method("cam", "CAM", _cam_weights, needs_gradients=False, needs_cam_head=True),
    "gradcam": Method("gradcam", "Grad-CAM", _gradcam_weights, needs_gradients=True, needs_cam_head=False),
}


@dataclass(frozen=True)
class Target:
    """Which class(es) to explain: the predicted one (``classes=()``), a class, or a class group."""

    classes: tuple[int, ...] = ()
    label: str = "predicted class"

    @classmethod
    def predicted(cls) -> "Target":
        return cls()

    @classmethod
    def of_class(cls, index: int, name: str | None = None) -> "Target":
        return cls((int(index),), name or f"class {index}")

    @classmethod
    def group(cls, indices, name: str) -> "Target":
        return cls(tuple(sorted({int(i) for i in indices})), name)


@dataclass(frozen=True)
class RawExplanation:
    """Network outputs for one photo: class scores and feature-resolution maps (before any resizing)."""

    probabilities: np.ndarray  # (C,)
    logits: np.ndarray  # (C,)
    class_weights: np.ndarray  # (C,) π of the target, sums to 1
    maps: dict[tuple[str, str], np.ndarray]  # (method, layer) → (h, w) float32 raw map
    variant: str

    @property
    def predicted_class(self) -> int:
        return int(np.argmax(self.probabilities))

    def top_k(self, k: int = 5) -> list[tuple[int, float]]:
        order = np.argsort(-self.probabilities)[:k]
        return [(int(i), float(self.probabilities[i])) for i in order]


def _resize_batch(images, size: tuple[int, int]) -> np.ndarray:
    """Photos of any size → one uint8 batch at the network's input size (area-averaged when shrinking)."""
    import cv2

    height, width = size
    out = np.empty((len(images), height, width, 3), np.uint8)
    for i, image in enumerate(images):
        image = np.asarray(image)
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ValueError(
                f"photo {i} has shape {image.shape} and dtype {image.dtype}; expected RGB uint8 (H, W, 3)"
            )
        shrinking = image.shape[0] > height or image.shape[1] > width
        out[i] = cv2.resize(
            image, (width, height), interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR
        )
    return out


class Explainer:
    """Compiled CAM/Grad-CAM for one model; build once and reuse (compiled functions are cached).

    >>> explainer = Explainer(bundle)
    >>> raw = explainer.explain([photo], methods=("cam", "gradcam"))[0]
    >>> raw.maps[("cam", "conv5_block3_out")].shape
    (7, 7)
    """

    # Each frozen function holds its own copy of the weights (ResNet50: ~100 MB): keep the recent ones.
    MAX_COMPILED = 6

    def __init__(self, bundle: ModelBundle, freeze: str = "background"):
        """``freeze``: "background" (answer at once, speed up when frozen), "now" (batch work: freeze
        before the first call) or "never" (use the live weights, e.g. during training)."""
        self.bundle = bundle
        self.freeze = freeze
        self._functions: dict[tuple, FreezableFunction] = {}
        self._build_lock = threading.Lock()  # dashboard sessions share one Explainer across threads
        head = bundle.score_head
        model = bundle.model
        self._dense = model.get_layer(head.dense_layer) if head.dense_layer else None
        self._cam_dense = model.get_layer(bundle.cam_head.classifier_layer) if bundle.cam_head else None

    # -- validation -------------------------------------------------------------------------------
    def check_request(self, methods, layer: str | None) -> tuple[tuple[str, str], ...]:
        """(method, layer) pairs this request computes; raises ValueError with the next step to take."""
        pairs = []
        for key in methods:
            if key not in METHODS:
                raise ValueError(f"unknown method {key!r}; choose from {sorted(METHODS)}")
            method = METHODS[key]
            if method.needs_cam_head:
                if self.bundle.cam_head is None:
                    raise ModelStructureError(f"CAM is unavailable: {self.bundle.cam_unavailable_reason}")
                pairs.append((key, self.bundle.cam_head.feature_layer))
            else:
                chosen = layer or self.bundle.default_layer
                if chosen not in self.bundle.conv_layers:
                    raise ModelStructureError(
                        f"layer {chosen!r} is not a convolutional layer of '{self.bundle.name}'; "
                        f"pick one of its {len(self.bundle.conv_layers)} spatial layers, "
                        f"e.g. {', '.join(self.bundle.suggested_layers[:4])}"
                    )
                pairs.append((key, chosen))
        return tuple(pairs)

    def target_mask(self, targets, batch: int) -> np.ndarray:
        """(B, C) float mask of target classes; an all-zero row means "the predicted class"."""
        if isinstance(targets, Target):
            targets = [targets] * batch
        if len(targets) != batch:
            raise ValueError(f"{len(targets)} targets for {batch} photos")
        mask = np.zeros((batch, self.bundle.num_classes), np.float32)
        for row, target in enumerate(targets):
            for index in target.classes:
                if not 0 <= index < self.bundle.num_classes:
                    raise ValueError(
                        f"class index {index} is out of range for '{self.bundle.name}', "
                        f"which has {self.bundle.num_classes} classes"
                    )
                mask[row, index] = 1.0
        return mask

    # -- compiled core ----------------------------------------------------------------------------
    def _compiled(self, pairs: tuple[tuple[str, str], ...], variant: str) -> Callable:
        key = (pairs, variant)
        with self._build_lock:
            if key in self._functions:
                self._functions[key] = self._functions.pop(key)  # most recently used last
            else:
                run, signature = self._build(pairs, variant)
                self._functions[key] = FreezableFunction(run, signature, self.freeze)
                while len(self._functions) > self.MAX_COMPILED:
                    self._functions.pop(next(iter(self._functions)))
            return self._functions[key]

    def _build(self, pairs, variant: str) -> Callable:
        bundle = self.bundle
        model = bundle.model
        layers = tuple(dict.fromkeys(layer for _, layer in pairs))
        head = bundle.score_head
        capture = keras.Model(
            model.input,
            [model.get_layer(name).output for name in layers] + [model.get_layer(head.tensor_layer).output],
        )
        dense = self._dense
        cam_kernel = self._cam_dense.kernel if self._cam_dense is not None else None
        activation = head.output_activation
        need_grads = any(METHODS[m].needs_gradients for m, _ in pairs)
        height, width = bundle.input_size
        num_classes = bundle.num_classes

        def to_probabilities(logits):
            if activation == "softmax":
                return tf.nn.softmax(logits)
            if activation == "sigmoid":
                return tf.sigmoid(logits)
            return logits

        signature = (
            tf.TensorSpec([None, height, width, 3], tf.uint8),
            tf.TensorSpec([None, num_classes], tf.float32),
        )

        @tf.function(input_signature=signature, reduce_retracing=True)
        def run(images, mask):
            x = preprocess(images, bundle.preprocessing)
            with tf.GradientTape(watch_accessed_variables=False) as tape:
                tape.watch(x)  # records the forward pass, so intermediate maps get gradients
                outputs = capture(x, training=False)
                activations, head_input = outputs[:-1], outputs[-1]
                if dense is not None:
                    logits = tf.matmul(head_input, dense.kernel)
                    if dense.bias is not None:
                        logits = logits + dense.bias
                else:
                    logits = head_input
                probabilities = to_probabilities(logits)
                predicted = tf.one_hot(tf.argmax(logits, axis=-1), num_classes)
                use_predicted = tf.reduce_sum(mask, axis=-1, keepdims=True) == 0
                chosen = tf.where(use_predicted, predicted, mask)
                masked_logits = tf.where(chosen > 0, logits, tf.fill(tf.shape(logits), -np.inf))
                class_weights = tf.stop_gradient(tf.nn.softmax(masked_logits))
                scored = probabilities if variant == "original" else logits
                score = tf.reduce_sum(class_weights * scored)
            gradients = tape.gradient(score, activations) if need_grads else [None] * len(layers)
            maps = []
            for method_key, layer in pairs:
                i = layers.index(layer)
                ctx = _Context(activations[i], gradients[i], class_weights, cam_kernel)
                alpha = METHODS[method_key].weights(ctx)
                maps.append(tf.einsum("bhwk,bk->bhw", activations[i], alpha))
            return (probabilities, logits, class_weights, *maps)

        return run, signature

    def explain(
        self,
        images,
        methods=("cam", "gradcam"),
        layer: str | None = None,
        target: Target | list[Target] = Target(),
        variant: str = "paper",
        batch_size: int = 16,
    ) -> list[RawExplanation]:
        """Raw maps and class scores for each photo (RGB uint8 arrays of any size)."""
        return self.explain_pairs(images, self.check_request(methods, layer), target, variant, batch_size)

    def explain_layers(self, images, layers, target: Target | list[Target] = Target(),
                       variant: str = "paper", batch_size: int = 16) -> list[RawExplanation]:
        """Grad-CAM on several layers in one pass (one forward, one backward), as the layer grid needs."""
        pairs = tuple(pair for name in layers for pair in self.check_request(("gradcam",), name))
        return self.explain_pairs(images, pairs, target, variant, batch_size)

    def explain_pairs(self, images, pairs, target, variant: str = "paper",
                      batch_size: int = 16) -> list[RawExplanation]:
        """The shared loop: resize, run the compiled function per batch, split results per photo."""
        if variant not in VARIANTS:
            raise ValueError(f"unknown variant {variant!r}; choose from {VARIANTS}")
        images = list(images)
        mask = self.target_mask(target, len(images))
        run = self._compiled(tuple(pairs), variant)
        results: list[RawExplanation] = []
        for start in range(0, len(images), batch_size):
            batch = _resize_batch(images[start : start + batch_size], self.bundle.input_size)
            outputs = run(tf.constant(batch), tf.constant(mask[start : start + len(batch)]))
            probabilities, logits, weights, *maps = (tensor.numpy() for tensor in outputs)
            for j in range(len(batch)):
                results.append(
                    RawExplanation(
                        probabilities=probabilities[j],
                        logits=logits[j],
                        class_weights=weights[j],
                        maps={pair: maps[k][j] for k, pair in enumerate(pairs)},
                        variant=variant,
                    )
                )
        return results

    def run_preprocessed_batch(self, batch: np.ndarray, methods=("cam", "gradcam"), layer=None,
                               variant: str = "paper"):
        """The compiled call alone on a uint8 batch already at input size (benchmarks, evaluation)."""
        pairs = self.check_request(methods, layer)
        mask = np.zeros((len(batch), self.bundle.num_classes), np.float32)
        return self._compiled(pairs, variant)(tf.constant(batch), tf.constant(mask))
