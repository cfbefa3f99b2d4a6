"""A CAM method taken apart: every intermediate array between the photo and the box, for one photo.

The product shows the end of the chain (overlay, box, IoU); this module keeps the steps on the way so a
person can see how a map is made: the photo at the network's input size → the feature maps A of the
layer → the method's channel weights α (and the gradients they come from) → the weighted sum → ReLU and
normalisation → upsampling → the threshold τ → connected regions → the box → its IoU.

Two calls, because only the first needs the network: :func:`network_stages` (activations, gradients,
weights, the raw map; cache it) and :func:`threshold_stages` (normalisation to IoU, milliseconds; re-run
it when τ moves). :func:`explain_stages` does both.

The raw map is made from the captured activations and gradients with the method's own registered
``compute`` exactly as the engine (``core.cam``) combines it for its ``kind``, and everything after it goes
through ``core.explanation``'s functions, so the final map and box are the ones the other pages show
(tests/test_stages.py checks both against the engine). Eigen-smoothing and layer fusion are not taken
apart here: they are a projection and a fusion of whole maps, not per-channel steps. FullGrad has no layer:
its "channels" are its terms (the input's and each bias layer's, at the input's resolution), and its
weights each term's share of the map.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass, field

import cv2
import keras
import numpy as np
import tensorflow as tf

from core.cam import (
    FINER_COMPARISONS,
    FUSION_SEPARATOR,
    Explainer,
    RawExplanation,
    RunOptions,
    Target,
    _finer_score,
    _resize_batch,
)
from core.explanation import BoxSettings, Localized, localize, normalization_for, photo_heatmap
from core.heatmaps import NormalizedMap, normalize_map
from core.methods import INPUT, Context, InputContext
from core.methods.fullgrad import bias_layers, effective_bias, term_maps
from core.methods import method as get_method
from core.preprocessing import preprocess

__all__ = [
    "CHANNEL_RULES",
    "DEFAULT_TOP_K",
    "NetworkStages",
    "Stages",
    "explain_stages",
    "network_stages",
    "threshold_stages",
]

DEFAULT_TOP_K = 6
CHANNEL_RULES = {
    "weights": "the largest channel weights αₖ",
    "perturbation": "the largest channel weights αₖ",
    "weighted": "the largest contributions Σᵢⱼ (W ⊙ A)ₖᵢⱼ (the weights differ per position)",
    "map": "the largest mean activations (this method gives channels no weights)",
    "input": "the largest shares of the map (the input's term and each bias layer's)",
}


@dataclass(frozen=True, eq=False)
class NetworkStages:
    """What needs the network, for one photo, method and layer.

    ``photo_input``: (H, W, 3) uint8 at the network's input size. ``channels``: (k,) indices of the channels
    shown, chosen by ``CHANNEL_RULES[kind]``, best first; ``activations`` (h, w, k) and ``gradients``
    (h, w, k, None when the method uses none) are theirs. ``weights``: (K,) every channel's weight α (for
    ``"weighted"`` methods its total contribution; None for ``"map"`` methods). ``raw``: (h, w) the
    method's low-resolution map (for every kind but ``"map"``, the weighted sum over channels).
    ``channel_count``: K, the layer's channels. ``not_applicable``: stage name → why that stage does not
    exist for this method.
    """

    method: str
    layer: str
    kind: str
    variant: str
    photo_input: np.ndarray
    probabilities: np.ndarray
    class_weights: np.ndarray
    channels: np.ndarray
    activations: np.ndarray
    gradients: np.ndarray | None
    weights: np.ndarray | None
    raw: np.ndarray
    channel_count: int
    not_applicable: dict[str, str] = field(default_factory=dict)
    channel_names: tuple[str, ...] = ()  # for "input" methods: what each "channel" (term) is

    def explanation(self) -> RawExplanation:
        """The raw map as the engine returns it, for ``core.explanation``'s functions."""
        logits = np.full_like(self.probabilities, np.nan)  # not kept: nothing downstream reads them
        maps = {(self.method, self.layer): self.raw}
        return RawExplanation(self.probabilities, logits, self.class_weights, maps, self.variant)


@dataclass(frozen=True, eq=False)
class Stages:
    """Every stage from the raw map on, at one τ: ``after_relu`` (h, w), ``normalized`` (h, w) in [0, 1],
    ``upsampled`` (photo size, what the overlay shows), ``mask`` (photo size, bool: value ≥ τ · peak),
    ``labels`` (photo size, int32: 0 background, 1… the 8-connected regions), ``localized`` (the boxes,
    main one first, as ``core.explanation.localize``) and ``iou`` (None without a ground truth)."""

    network: NetworkStages
    threshold: float
    after_relu: np.ndarray
    normalized: NormalizedMap
    upsampled: NormalizedMap
    mask: np.ndarray
    labels: np.ndarray
    region_count: int
    localized: Localized
    iou: float | None

    @property
    def box(self) -> np.ndarray | None:
        return self.localized.main_box


# -- the network half ---------------------------------------------------------------------------------
# explainer → {(layer, variant, score): compiled capture}; dropped with the explainer
_CAPTURES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_MAX_CAPTURES = 8  # layers × recipes a user looks at in a row; each is a traced function (~1-4 s to trace)


def _capture(explainer: Explainer, layer: str, variant: str, score: str):
    """A compiled ``(images uint8, mask) → (inputs, activations, gradients, probabilities, class_weights)``
    for one layer: the engine's forward pass, target weights π and differentiated score, kept unreduced."""
    cache = _CAPTURES.setdefault(explainer, {})
    key = (layer, variant, score)
    if layer == INPUT:
        return _cached_capture(cache, key, lambda: _input_capture(explainer, variant))
    return _cached_capture(cache, key, lambda: _layer_capture(explainer, layer, variant, score))


def _cached_capture(cache: dict, key, build):
    if key in cache:
        cache[key] = cache.pop(key)  # most recently used last
        return cache[key]
    while len(cache) >= _MAX_CAPTURES:
        cache.pop(next(iter(cache)))
    cache[key] = build()
    return cache[key]


def _forward_and_target(explainer: Explainer, capture, x, mask):
    """The capture's outputs, logits and target weights π, as the engine's forward pass makes them."""
    *outputs, head_input = capture(x, training=False)
    logits = explainer._logits(head_input)
    return outputs, logits, explainer._target_weights(logits, mask)


def _input_capture(explainer: Explainer, variant: str):
    """A compiled ``(images uint8, mask) → (term maps (B, H, W) each, probabilities, class_weights)`` for
    FullGrad: the gradients of the input and of every bias layer's output, each term post-processed."""
    bundle = explainer.bundle
    model = bundle.model
    biased = [model.get_layer(name) for name in bias_layers(model)]
    capture = keras.Model(model.input, [layer.output for layer in biased]
                          + [model.get_layer(bundle.score_head.tensor_layer).output])
    height, width = bundle.input_size

    signature = (tf.TensorSpec([None, height, width, 3], tf.uint8),
                 tf.TensorSpec([None, bundle.num_classes], tf.float32))

    @tf.function(input_signature=signature, reduce_retracing=True)
    def run(images, mask):
        x = preprocess(images, bundle.preprocessing)
        with tf.GradientTape(watch_accessed_variables=False) as tape:
            tape.watch(x)
            outputs, logits, class_weights = _forward_and_target(explainer, capture, x, mask)
            total = tf.reduce_sum(explainer._score(logits, class_weights, variant))
        found = tape.gradient(total, [x, *outputs])
        ctx = InputContext(x, found[0], tuple(found[1:]), tuple(effective_bias(layer) for layer in biased))
        return term_maps(ctx), explainer._to_probabilities(logits), class_weights

    return run


def _layer_capture(explainer: Explainer, layer: str, variant: str, score: str):
    bundle = explainer.bundle
    model = bundle.model
    capture = keras.Model(model.input, [model.get_layer(layer).output,
                                        model.get_layer(bundle.score_head.tensor_layer).output])
    height, width = bundle.input_size
    num_classes = bundle.num_classes
    comparisons = min(FINER_COMPARISONS, num_classes - 1)

    @tf.function(input_signature=(tf.TensorSpec([None, height, width, 3], tf.uint8),
                                  tf.TensorSpec([None, num_classes], tf.float32)), reduce_retracing=True)
    def run(images, mask):
        x = preprocess(images, bundle.preprocessing)
        with tf.GradientTape(watch_accessed_variables=False) as tape:
            tape.watch(x)
            (activations,), logits, class_weights = _forward_and_target(explainer, capture, x, mask)
            total = tf.reduce_sum(_finer_score(logits, class_weights, comparisons) if score == "finer"
                                  else explainer._score(logits, class_weights, variant))
        gradients = tape.gradient(total, activations)
        return x, activations, gradients, explainer._to_probabilities(logits), class_weights

    return run


def _cam_kernel(explainer: Explainer):
    head = explainer.bundle.cam_head
    return None if head is None else explainer.bundle.model.get_layer(head.classifier_layer).kernel


def _one_pass(entry, ctx: Context) -> tuple[np.ndarray | None, np.ndarray]:
    """(per-channel weights or contributions (K,), raw map (h, w)) for one photo, as the engine sums them."""
    out = entry.compute(ctx)
    if entry.kind == "weights":
        return out.numpy()[0], tf.einsum("bhwk,bk->bhw", ctx.activations, out).numpy()[0]
    if entry.kind == "weighted":
        return tf.reduce_sum(out, axis=(1, 2)).numpy()[0], tf.reduce_sum(out, axis=-1).numpy()[0]
    return None, out.numpy()[0]


def _perturbation(explainer, entry, layer, variant, inputs, activations, class_weights, options: RunOptions):
    """Channel weights from the method's extra passes, and Σ_k α_k A_k (as the engine)."""
    ctx = explainer.perturbation_context(inputs, activations, class_weights, layer, variant, options, entry.key)
    alpha = np.asarray(entry.compute(ctx))
    return alpha, np.einsum("hwk,k->hw", activations, alpha).astype(np.float32)


def _not_applicable(entry) -> dict[str, str]:
    notes = {}
    if not entry.needs_gradients:
        notes["gradients"] = (f"{entry.label} uses no gradient: "
                              + ("its weights are the classifier's own weights for the class."
                                 if entry.needs_cam_head else
                                 "its weights come from scoring masked or ablated inputs."
                                 if not entry.one_pass else
                                 "its map is computed from the activations alone."))
    if entry.kind == "map":
        notes["weights"] = (f"{entry.label} makes its map directly (a principal-component projection of the "
                            "activations), so there are no channel weights and no weighted sum.")
    return notes


def network_stages(explainer: Explainer, photo: np.ndarray, method: str, layer: str | None = None,
                   target: Target = Target(), variant: str = "paper", top_k: int = DEFAULT_TOP_K,
                   options: RunOptions = RunOptions()) -> NetworkStages:
    """Run the network once and keep the stages up to the raw map. ``photo``: RGB uint8 of any size.

    ValueError (or ``ModelStructureError``) naming the fix for an unknown method, a method the model cannot
    run (CAM without a CAM head), a missing layer or a fused layer; ``Stopped`` when ``options.stop`` is set
    during a perturbation method.
    """
    entry = get_method(method)
    if layer and FUSION_SEPARATOR in layer:
        raise ValueError(f"'{layer}' fuses several layers; stages are shown for one layer at a time: "
                         "pick one")
    if top_k < 1:
        raise ValueError(f"top_k must be at least 1, got {top_k}")
    ((_, layer),) = explainer.check_request((method,), layer)
    batch = _resize_batch([photo], explainer.bundle.input_size)
    mask = explainer.target_mask(target, 1)
    run = _capture(explainer, layer, variant, entry.score)
    if entry.kind == "input":
        return _input_stages(entry, run, batch, mask, variant, top_k, bias_layers(explainer.bundle.model))
    inputs, activations, gradients, probabilities, class_weights = run(tf.constant(batch), tf.constant(mask))
    if entry.one_pass:
        ctx = Context(activations, gradients if entry.needs_gradients else None, class_weights,
                      _cam_kernel(explainer) if entry.needs_cam_head else None)
        weights, raw = _one_pass(entry, ctx)
    else:
        weights, raw = _perturbation(explainer, entry, layer, variant, inputs.numpy()[0],
                                     activations.numpy()[0], class_weights.numpy()[0], options)
    acts = activations.numpy()[0]
    ranking = weights if weights is not None else acts.mean(axis=(0, 1))
    channels = np.argsort(-ranking, kind="stable")[:top_k]
    grads = gradients.numpy()[0][..., channels] if entry.needs_gradients else None
    return NetworkStages(method, layer, entry.kind, variant, batch[0], probabilities.numpy()[0],
                         class_weights.numpy()[0], channels, acts[..., channels], grads,
                         None if weights is None else weights.astype(np.float32), raw.astype(np.float32),
                         acts.shape[-1], _not_applicable(entry))


def _input_stages(entry, run, batch, mask, variant: str, top_k: int,
                  biased: tuple[str, ...]) -> NetworkStages:
    """FullGrad's stages: its terms stand for channels, each term's total for its weight."""
    terms, probabilities, class_weights = run(tf.constant(batch), tf.constant(mask))
    maps = np.stack([t.numpy()[0] for t in terms], axis=-1)  # (H, W, terms)
    shares = maps.sum(axis=(0, 1))
    shares = (shares / (shares.sum() or 1.0)).astype(np.float32)
    channels = np.argsort(-shares, kind="stable")[:top_k]
    names = ("input × gradient",) + tuple(f"{name} bias × gradient" for name in biased)
    notes = {"gradients": f"{entry.label} uses the gradients of the input and of every layer with a bias; "
                          "each term is |value × gradient|, shown as its own map above.",
             "layer": f"{entry.label} ignores the layer: its map is at the input's resolution."}
    return NetworkStages(entry.key, INPUT, entry.kind, variant, batch[0], probabilities.numpy()[0],
                         class_weights.numpy()[0], channels, maps[..., channels], None, shares,
                         maps.sum(axis=-1).astype(np.float32), maps.shape[-1], notes, names)


# -- the cheap half -----------------------------------------------------------------------------------
def threshold_stages(network: NetworkStages, photo_size: tuple[int, int],
                     settings: BoxSettings = BoxSettings(), ground_truth=None) -> Stages:
    """Normalisation to IoU for a photo of ``photo_size`` (height, width): no network, milliseconds."""
    height, width = photo_size
    relu, mode = normalization_for(network.method, network.variant)
    after_relu = np.maximum(network.raw, 0.0) if relu else network.raw.copy()
    normalized = normalize_map(network.raw, relu=relu, mode=mode)
    upsampled = photo_heatmap(network.explanation(), network.method, network.layer, height, width)
    values = upsampled.values
    if upsampled.flat:
        mask = np.zeros(values.shape, bool)
    else:  # core.localize's rule: value ≥ τ · peak
        mask = values >= np.float32(settings.threshold * float(values.max()))
    count, labels = cv2.connectedComponents(mask.astype(np.uint8), connectivity=8)
    found = localize(upsampled, settings, ground_truth)
    return Stages(network, settings.threshold, after_relu, normalized, upsampled, mask,
                  labels.astype(np.int32), int(count) - 1, found, found.iou)


def explain_stages(explainer: Explainer, photo: np.ndarray, method: str, layer: str | None = None,
                   target: Target = Target(), variant: str = "paper", settings: BoxSettings = BoxSettings(),
                   ground_truth=None, top_k: int = DEFAULT_TOP_K,
                   options: RunOptions = RunOptions()) -> Stages:
    """Every stage for one photo in one call (see :func:`network_stages` and :func:`threshold_stages`).

    >>> stages = explain_stages(explainer, photo, "gradcam", "out_relu")
    >>> stages.network.raw.shape, stages.mask.shape == photo.shape[:2]
    ((7, 7), True)
    """
    network = network_stages(explainer, photo, method, layer, target, variant, top_k, options)
    return threshold_stages(network, photo.shape[:2], settings, ground_truth)
