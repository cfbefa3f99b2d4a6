"""The explanation engine: every registered CAM method (``core.methods``) for a batch of photos.

All one-pass methods requested together (CAM, Grad-CAM, Grad-CAM++, XGrad-CAM, HiResCAM, LayerCAM,
Eigen-CAM, …) cost one forward and one backward pass in one compiled function; each method only turns
the captured activations and gradients of its layer into a map; FullGrad, which belongs to no layer, takes
the input's gradient and every bias layer's from the same backward pass. Perturbation methods (Score-CAM,
Ablation-CAM) then reuse that call's activations and score masked or ablated inputs in chunks through a
compiled forward function (``core.methods.perturbation``), with progress and a stop signal.

A target is a set of classes per photo with weights π = softmax of their logits (a single class gives
π = 1). With the logit score, Σ_c π_c z_c has the gradient of log Σ_c exp z_c, the log-probability of
the class group, so "all car classes" localises *a car* rather than one body style. The original study's
variant (softmax probability as the score, no ReLU, divided by the max) stays selectable.

A layer written ``"a+b+c"`` asks for LayerCAM's fusion of the method's maps over those layers.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Callable

import keras
import numpy as np
import tensorflow as tf

from core.folding import FoldedTwin, fold_batch_norms
from core.freezing import FreezableFunction
from core.memory import return_free_memory
from core.methods import INPUT, Context, InputContext, PerturbationContext, fuse_layer_maps, method
from core.methods.fullgrad import bias_layers, effective_bias
from core.methods.registry import SCORES
from core.model_spec import ModelBundle, ModelStructureError
from core.preprocessing import preprocess
from core.segments import SegmentChain

VARIANTS = ("paper", "original")
FUSION_SEPARATOR = "+"


@dataclass(frozen=True)
class RunOptions:
    """How a request runs, beyond what it computes: eigen-smoothing, and for perturbation methods the
    chunk size, a ``progress(method, done, total)`` callback and a ``threading.Event`` that stops them."""

    eigen_smooth: bool = False
    chunk: int = 16  # masked inputs per forward pass: as fast per photo as 64 here, a quarter of the memory
    progress: Callable[[str, int, int], None] | None = None
    stop: threading.Event | None = None


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


def _layers_of(spec: str) -> tuple[str, ...]:
    return tuple(spec.split(FUSION_SEPARATOR))


FINER_COMPARISONS = 3


def _finer_score(logits, class_weights, comparisons: int, alpha: float = 1.0):
    """FinerCAM's score per photo: Σ_j p_j (z_c − α z_j) / Σ_j p_j over the classes j whose logits are
    nearest the main target class c (its largest weight), p = softmax(z); p is not held constant."""
    main = tf.argmax(class_weights, axis=-1)
    z_main = tf.gather(logits, main, batch_dims=1)
    distance = tf.abs(logits - z_main[:, None])
    distance = tf.where(tf.one_hot(main, tf.shape(logits)[-1]) > 0, -1.0, distance)  # c itself comes first
    _, nearest = tf.math.top_k(-distance, comparisons + 1)
    nearest = nearest[:, 1:]
    weights = tf.gather(tf.nn.softmax(logits), nearest, batch_dims=1)
    contrast = z_main[:, None] - alpha * tf.gather(logits, nearest, batch_dims=1)
    return tf.reduce_sum(weights * contrast, axis=-1) / (tf.reduce_sum(weights, axis=-1) + 1e-9)


def _split_pairs(pairs) -> tuple[tuple[tuple[str, str], ...], tuple[str, ...], tuple[str, ...]]:
    """(method, single layer) pairs the compiled call maps from layers, the layers perturbation methods
    need, and the ``"input"`` methods (FullGrad), which the network call maps itself."""
    layered = [(m, spec) for m, spec in pairs if method(m).one_pass and method(m).kind != "input"]
    one_pass = tuple(dict.fromkeys((m, part) for m, spec in layered for part in _layers_of(spec)))
    perturbed = tuple(dict.fromkeys(spec for m, spec in pairs if not method(m).one_pass))
    inputs = tuple(dict.fromkeys(m for m, _ in pairs if method(m).kind == "input"))
    return one_pass, perturbed, inputs


def _one_pass_map(entry, ctx: Context, smooth: bool) -> tf.Tensor:
    """(B, h, w) map of a one-pass method; eigen-smoothing projects its weighted activations instead."""
    from core.methods.projection import principal_projection

    out = entry.compute(ctx)
    if entry.kind == "map":
        return out
    weighted = ctx.activations * out[:, None, None, :] if entry.kind == "weights" else out
    if smooth and entry.smoothable:
        return principal_projection(weighted)
    if entry.kind == "weights":
        return tf.einsum("bhwk,bk->bhw", ctx.activations, out)
    return tf.reduce_sum(weighted, axis=-1)


class Explainer:
    """Every registered method for one model; build once and reuse (compiled functions are cached).

    >>> explainer = Explainer(bundle)
    >>> raw = explainer.explain([photo], methods=("cam", "gradcam", "layercam"))[0]
    >>> raw.maps[("cam", "conv5_block3_out")].shape
    (7, 7)
    """

    # Network calls kept per Explainer (their frozen twins are also bounded in memory, process-wide, by
    # core.freezing.budget), and the small map functions kept per Explainer.
    MAX_COMPILED = 6
    MAX_MAP_FUNCTIONS = 32

    def __init__(self, bundle: ModelBundle, freeze: str = "background"):
        """``freeze``: "background" (answer at once, speed up when frozen), "now" (batch work: freeze
        before the first call) or "never" (use the live weights, e.g. during training)."""
        self.bundle = bundle
        self.freeze = freeze
        self._functions: dict[tuple, FreezableFunction] = {}
        self._map_functions: dict[tuple, Callable] = {}
        self._build_lock = threading.Lock()  # dashboard sessions share one Explainer across threads
        self._tails: dict[str, keras.Model | None] = {}
        self._twin: FoldedTwin | None | bool = False  # False: not built yet
        self._twin_lock = threading.Lock()  # taken inside _build_lock (builds call _forward_model)
        head = bundle.score_head
        model = bundle.model
        self._dense = model.get_layer(head.dense_layer) if head.dense_layer else None
        self._cam_dense = model.get_layer(bundle.cam_head.classifier_layer) if bundle.cam_head else None

    def _forward_model(self, *layers: str) -> keras.Model:
        """The model to run forward when ``layers``' activations are read: the BatchNorm-folded twin
        (``core.folding``, 1.1–1.25× faster) unless the weights must stay live (``freeze="never"``, e.g.
        during training) or one of ``layers`` is a convolution the fold changed."""
        if self.freeze == "never":
            return self.bundle.model
        with self._twin_lock:
            if self._twin is False:
                self._twin = fold_batch_norms(self.bundle.model)
        twin = self._twin
        if twin is None or twin.changed.intersection(layers):
            return self.bundle.model
        return twin.model

    # -- validation -------------------------------------------------------------------------------
    def _check_layer(self, name: str) -> None:
        if name not in self.bundle.conv_layers:
            raise ModelStructureError(
                f"layer {name!r} is not a convolutional layer of '{self.bundle.name}'; "
                f"pick one of its {len(self.bundle.conv_layers)} spatial layers, "
                f"e.g. {', '.join(self.bundle.suggested_layers[:4])}"
            )

    def check_request(self, methods, layer: str | None) -> tuple[tuple[str, str], ...]:
        """(method, layer) pairs this request computes; raises ValueError with the next step to take."""
        pairs = []
        for key in methods:
            entry = method(key)
            if entry.kind == "input":  # no layer: the map is at the input's resolution
                pairs.append((key, INPUT))
                continue
            if entry.needs_cam_head:
                if self.bundle.cam_head is None:
                    raise ModelStructureError(f"CAM is unavailable: {self.bundle.cam_unavailable_reason}")
                pairs.append((key, self.bundle.cam_head.feature_layer))
                continue
            chosen = layer or self.bundle.default_layer
            parts = _layers_of(chosen)
            if len(parts) > 1 and not entry.one_pass:
                raise ValueError(f"{entry.label} runs on one layer; layer fusion ({chosen!r}) is for the "
                                 "one-pass methods")
            for part in parts:
                self._check_layer(part)
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
    def _cached(self, key: tuple, build: Callable, freeze: str | None = None) -> FreezableFunction:
        with self._build_lock:
            if key in self._functions:
                self._functions[key] = self._functions.pop(key)  # most recently used last
            else:
                run, signature = build()
                self._functions[key] = FreezableFunction(run, signature, freeze or self.freeze)
                dropped = False
                while len(self._functions) > self.MAX_COMPILED:
                    self._functions.pop(next(iter(self._functions))).release()
                    dropped = True
                if dropped:
                    return_free_memory()
            return self._functions[key]

    def _compiled(self, pairs: tuple[tuple[str, str], ...], variant: str, smooth: bool = False) -> Callable:
        """``run(images, mask)`` → (probabilities, logits, class weights, *one-pass maps, *input methods'
        maps, *activations of the perturbed layers): the frozen network call shared by every method set on
        the same layers and scores, then the small (unfrozen) function that turns its activations and
        gradients into maps; the input methods (FullGrad) from their own call (:meth:`_build_input_network`),
        so one compiled FullGrad serves every method set it is requested with."""
        one_pass, perturbed, inputs = _split_pairs(pairs)
        layers = tuple(dict.fromkeys([layer for _, layer in one_pass] + list(perturbed)))
        scores = tuple(s for s in SCORES if s in {method(m).score for m, _ in one_pass if method(m).needs_gradients})
        scores = self._covering_scores(layers, scores, variant)
        network = (self._cached(("network", layers, scores, variant),
                                lambda: self._build_network(layers, scores, variant))
                   if layers or not inputs else None)
        # unfrozen: freezing saved ~10 % of its time but held ~350 MB more at 704 px (bench/methods_memory.py)
        input_network = (self._cached(("inputs", inputs, variant),
                                      lambda: self._build_input_network(inputs, variant), freeze="never")
                         if inputs else None)
        maps = self._map_function(one_pass, layers, scores, smooth) if one_pass else None
        kept = [layers.index(layer) for layer in perturbed]

        def run(images, mask):
            input_maps, activations, gradients = (), (), ()
            if input_network is not None:
                probabilities, logits, class_weights, *input_maps = input_network(images, mask)
            if network is not None:
                probabilities, logits, class_weights, *rest = network(images, mask)
                activations, gradients = rest[:len(layers)], rest[len(layers):]
            computed = maps(activations, gradients, class_weights) if maps is not None else ()
            kept_activations = (activations[i] for i in kept)
            return (probabilities, logits, class_weights, *computed, *input_maps, *kept_activations)

        return run

    def _covering_scores(self, layers, scores, variant: str) -> tuple[str, ...]:
        """``scores``, or those of a cached network call on the same layers that differentiates more of
        them: FinerCAM after Grad-CAM, or all methods together, then need no second frozen twin."""
        if not scores:
            return scores
        with self._build_lock:
            for kind, *rest in reversed(self._functions):  # most recently used first
                if kind == "network" and rest[0] == layers and rest[2] == variant and set(scores) <= set(rest[1]):
                    return rest[1]
        return scores

    def _map_function(self, one_pass, layers, scores, smooth: bool):
        """The one-pass methods' maps from the network call's activations and gradients: no weights of
        its own but the CAM kernel, so it stays unfrozen and costs little memory per method set."""
        key = (one_pass, layers, scores, smooth)
        with self._build_lock:
            if key in self._map_functions:
                self._map_functions[key] = self._map_functions.pop(key)
                return self._map_functions[key]
        cam_kernel = self._cam_dense.kernel if self._cam_dense is not None else None
        model = self.bundle.model
        shapes = [tuple(model.get_layer(name).output.shape[1:]) for name in layers]
        signature = ([tf.TensorSpec([None, *shape], tf.float32) for shape in shapes]
                     + [tf.TensorSpec([None, *shape], tf.float32) for _ in scores for shape in shapes]
                     + [tf.TensorSpec([None, self.bundle.num_classes], tf.float32)])

        @tf.function(input_signature=signature)
        def maps_of(*flat):
            activations, gradients, class_weights = flat[:len(layers)], flat[len(layers):-1], flat[-1]
            maps = []
            for method_key, layer in one_pass:
                i = layers.index(layer)
                entry = method(method_key)
                chosen = None
                if entry.needs_gradients:
                    chosen = gradients[scores.index(entry.score) * len(layers) + i]
                ctx = Context(activations[i], chosen, class_weights, cam_kernel)
                maps.append(_one_pass_map(entry, ctx, smooth))
            return tuple(maps)

        concrete = maps_of.get_concrete_function()

        def run(activations, gradients, class_weights):
            # the flat call skips binding structured arguments (~0.3 ms a call, measured)
            return tuple(concrete._call_flat([*activations, *gradients, class_weights], concrete.captured_inputs))

        with self._build_lock:
            self._map_functions[key] = run
            while len(self._map_functions) > self.MAX_MAP_FUNCTIONS:
                self._map_functions.pop(next(iter(self._map_functions)))
        return run

    def _logits(self, head_input):
        dense = self._dense
        if dense is None:
            return head_input
        logits = tf.matmul(head_input, dense.kernel)
        return logits + dense.bias if dense.bias is not None else logits

    def _to_probabilities(self, logits):
        activation = self.bundle.score_head.output_activation
        if activation == "softmax":
            return tf.nn.softmax(logits)
        if activation == "sigmoid":
            return tf.sigmoid(logits)
        return logits

    def _score(self, logits, class_weights, variant: str):
        scored = self._to_probabilities(logits) if variant == "original" else logits
        return tf.reduce_sum(class_weights * scored, axis=-1)

    def _target_weights(self, logits, mask):
        """π (B, C): softmax of the logits over each photo's target classes (the predicted class for an
        all-zero mask row), constant for the backward pass."""
        predicted = tf.one_hot(tf.argmax(logits, axis=-1), self.bundle.num_classes)
        use_predicted = tf.reduce_sum(mask, axis=-1, keepdims=True) == 0
        chosen = tf.where(use_predicted, predicted, mask)
        masked_logits = tf.where(chosen > 0, logits, tf.fill(tf.shape(logits), -np.inf))
        return tf.stop_gradient(tf.nn.softmax(masked_logits))

    def _check_scores(self, scores) -> None:
        if "finer" in scores and self.bundle.num_classes < 2:
            raise ModelStructureError("FinerCAM contrasts a class with others: this model has only one class")

    def _score_totals(self, logits, class_weights, scores, variant: str):
        """The batch total of each score in ``scores``, the quantities the backward pass differentiates."""
        comparisons = min(FINER_COMPARISONS, self.bundle.num_classes - 1)  # fewer classes, fewer look-alikes
        differentiated = {"target": lambda: self._score(logits, class_weights, variant),
                          "finer": lambda: _finer_score(logits, class_weights, comparisons)}
        return [tf.reduce_sum(differentiated[name]()) for name in scores]

    def _signature(self):
        height, width = self.bundle.input_size
        return (tf.TensorSpec([None, height, width, 3], tf.uint8),
                tf.TensorSpec([None, self.bundle.num_classes], tf.float32))

    def _build_network(self, layers, scores, variant: str) -> tuple[Callable, tuple]:
        """One compiled call: class scores, the layers' activations, then for each score in ``scores`` the
        gradients of its total over the batch with respect to them (one ``tape.gradient`` per score)."""
        self._check_scores(scores)
        bundle = self.bundle
        model = self._forward_model(*layers)
        capture = keras.Model(model.input, [model.get_layer(name).output for name in layers]
                              + [model.get_layer(bundle.score_head.tensor_layer).output])
        signature = self._signature()

        @tf.function(input_signature=signature, reduce_retracing=True)
        def run(images, mask):
            x = preprocess(images, bundle.preprocessing)
            with tf.GradientTape(watch_accessed_variables=False, persistent=len(scores) > 1) as tape:
                tape.watch(x)  # records the forward pass, so intermediate maps get gradients
                *activations, head_input = capture(x, training=False)
                logits = self._logits(head_input)
                class_weights = self._target_weights(logits, mask)
                totals = self._score_totals(logits, class_weights, scores, variant)
            gradients = []
            for total in totals:
                gradients += tape.gradient(total, list(activations))
            del tape
            return (self._to_probabilities(logits), logits, class_weights, *activations, *gradients)

        return run, signature

    def _build_input_network(self, inputs, variant: str) -> tuple[Callable, tuple]:
        """The compiled call of the input methods (FullGrad): class scores, then each method's map from the
        gradients of the input and of every bias layer's output. The backward pass to the input runs
        segment by segment with recomputation (``core.segments``), so the forward pass's activations are
        never all alive at once, and each bias layer's term is reduced to its (B, H, W) map as soon as its
        gradient exists."""
        scores = tuple(s for s in SCORES if s in {method(m).score for m in inputs})
        self._check_scores(scores)
        bundle = self.bundle
        model = bundle.model
        biased = {name: model.get_layer(name) for name in bias_layers(model)}
        chain = SegmentChain(model, bundle.score_head.tensor_layer, taps=biased)
        signature = self._signature()

        @tf.function(input_signature=signature, reduce_retracing=True)
        def run(images, mask):
            x = preprocess(images, bundle.preprocessing)
            boundaries, _ = chain.forward(x)
            head_input = boundaries[-1]
            with tf.GradientTape(watch_accessed_variables=False, persistent=len(scores) > 1) as tape:
                tape.watch(head_input)
                logits = self._logits(head_input)
                class_weights = self._target_weights(logits, mask)
                totals = self._score_totals(logits, class_weights, scores, variant)
            input_maps = {}
            for name, total in zip(scores, totals):
                wanted = [key for key in inputs if method(key).score == name]
                sums = {}

                def visit(tap, gradient):  # a running sum: 52 maps held until the end were 100 MB at 704 px
                    ctx = InputContext(x, None, (gradient,), (effective_bias(biased[tap]),))
                    for key in wanted:
                        piece = method(key).compute(ctx)
                        sums[key] = sums[key] + piece if key in sums else piece

                input_gradient = chain.backward(boundaries, tape.gradient(total, head_input), visit)
                for key in wanted:
                    piece = method(key).compute(InputContext(x, input_gradient, (), ()))
                    input_maps[key] = sums[key] + piece if key in sums else piece
            del tape
            return (self._to_probabilities(logits), logits, class_weights, *(input_maps[key] for key in inputs))

        return run, signature

    # -- score functions for perturbation methods (and faithfulness metrics) ------------------------
    def score_function(self, variant: str = "paper") -> Callable:
        """``score(inputs, class_weights) → (N,)``: the target's score for preprocessed inputs (N, H, W, 3)
        float32, with each row's class weights π (N, C); compiled and frozen like the explanation."""
        height, width = self.bundle.input_size

        def build():
            model = self._forward_model()
            forward = keras.Model(model.input, model.get_layer(self.bundle.score_head.tensor_layer).output)
            signature = (tf.TensorSpec([None, height, width, 3], tf.float32),
                         tf.TensorSpec([None, self.bundle.num_classes], tf.float32))

            @tf.function(input_signature=signature, reduce_retracing=True)
            def run(inputs, class_weights):
                return (self._score(self._logits(forward(inputs, training=False)), class_weights, variant),)

            return run, signature

        compiled = self._cached(("score", variant), build)
        return lambda inputs, weights: compiled(tf.constant(inputs, tf.float32),
                                                tf.constant(weights, tf.float32))[0].numpy()

    def tail_score_function(self, layer: str, variant: str = "paper") -> Callable | None:
        """Like :meth:`score_function` but from ``layer``'s activations onward; None when the rest of the
        network needs more than that layer's output (the layer is no cut of the graph)."""
        model = self._forward_model(layer)
        if layer not in self._tails:
            try:
                self._tails[layer] = keras.Model(model.get_layer(layer).output,
                                                 model.get_layer(self.bundle.score_head.tensor_layer).output)
            except Exception:  # Keras raises several types for a graph that needs other inputs
                self._tails[layer] = None
        tail = self._tails[layer]
        if tail is None:
            return None
        shape = tuple(model.get_layer(layer).output.shape[1:])

        def build():
            signature = (tf.TensorSpec([None, *shape], tf.float32),
                         tf.TensorSpec([None, self.bundle.num_classes], tf.float32))

            @tf.function(input_signature=signature, reduce_retracing=True)
            def run(activations, class_weights):
                return (self._score(self._logits(tail(activations, training=False)), class_weights, variant),)

            return run, signature

        compiled = self._cached(("tail", layer, variant), build)
        return lambda acts, weights: compiled(tf.constant(acts, tf.float32), tf.constant(weights, tf.float32))[0].numpy()

    # -- the public calls ---------------------------------------------------------------------------
    def explain(
        self,
        images,
        methods=("cam", "gradcam"),
        layer: str | None = None,
        target: Target | list[Target] = Target(),
        variant: str = "paper",
        batch_size: int = 16,
        options: RunOptions = RunOptions(),
    ) -> list[RawExplanation]:
        """Raw maps and class scores for each photo (RGB uint8 arrays of any size)."""
        return self.explain_pairs(images, self.check_request(methods, layer), target, variant, batch_size,
                                  options)

    def explain_layers(self, images, layers, target: Target | list[Target] = Target(),
                       variant: str = "paper", batch_size: int = 16, methods=("gradcam",)) -> list[RawExplanation]:
        """One-pass methods on several layers in one pass (one forward, one backward), as the layer grid
        needs."""
        pairs = tuple(pair for name in layers for pair in self.check_request(methods, name))
        return self.explain_pairs(images, tuple(dict.fromkeys(pairs)), target, variant, batch_size)

    def explain_pairs(self, images, pairs, target, variant: str = "paper", batch_size: int = 16,
                      options: RunOptions = RunOptions()) -> list[RawExplanation]:
        """The shared loop: resize, run the compiled function per batch, then any perturbation method,
        split results per photo."""
        if variant not in VARIANTS:
            raise ValueError(f"unknown variant {variant!r}; choose from {VARIANTS}")
        images = list(images)
        pairs = tuple(pairs)
        mask = self.target_mask(target, len(images))
        run = self._compiled(pairs, variant, options.eigen_smooth)
        one_pass, perturbed, inputs = _split_pairs(pairs)
        mapped = one_pass + tuple((key, INPUT) for key in inputs)
        results: list[RawExplanation] = []
        for start in range(0, len(images), batch_size):
            batch = _resize_batch(images[start : start + batch_size], self.bundle.input_size)
            outputs = run(tf.constant(batch), tf.constant(mask[start : start + len(batch)]))
            probabilities, logits, weights, *rest = (tensor.numpy() for tensor in outputs)
            computed = dict(zip(mapped, rest[:len(mapped)]))
            activations = dict(zip(perturbed, rest[len(mapped):]))
            extra = self._perturbation_maps(pairs, batch, weights, activations, variant, options) \
                if perturbed else {}
            for j in range(len(batch)):
                maps = {}
                for key, spec in pairs:
                    if (key, spec) in extra:
                        maps[(key, spec)] = extra[(key, spec)][j]
                    elif FUSION_SEPARATOR in spec:
                        relu, mode = method(key).normalization(variant)
                        maps[(key, spec)] = fuse_layer_maps([computed[(key, p)][j] for p in _layers_of(spec)],
                                                            relu, mode)
                    else:
                        maps[(key, spec)] = computed[(key, spec)][j]
                results.append(RawExplanation(probabilities=probabilities[j], logits=logits[j],
                                              class_weights=weights[j], maps=maps, variant=variant))
        if perturbed or inputs or options.eigen_smooth:
            # hundreds of chunked forward passes, FullGrad's backward to the input or the SVDs of
            # eigen-smoothing leave up to ~150 MB of freed pages in glibc's heap; handing them back costs
            # ~10 ms, little next to these methods' time
            return_free_memory(collect=False)
        return results

    def gradient_function(self, layer: str, variant: str = "paper") -> Callable:
        """``gradients(inputs, class_weights) → (activations, ∂score/∂activations)`` at ``layer``, each
        (N, h, w, K), for preprocessed inputs (N, H, W, 3) float32 and class weights π (N, C): the
        engine's forward and backward pass on inputs it did not make (Smooth Grad-CAM++'s noisy copies)."""
        height, width = self.bundle.input_size

        def build():
            model = self._forward_model(layer)
            capture = keras.Model(model.input, [model.get_layer(layer).output,
                                                model.get_layer(self.bundle.score_head.tensor_layer).output])
            signature = (tf.TensorSpec([None, height, width, 3], tf.float32),
                         tf.TensorSpec([None, self.bundle.num_classes], tf.float32))

            @tf.function(input_signature=signature, reduce_retracing=True)
            def run(inputs, class_weights):
                with tf.GradientTape(watch_accessed_variables=False) as tape:
                    tape.watch(inputs)
                    activations, head_input = capture(inputs, training=False)
                    total = tf.reduce_sum(self._score(self._logits(head_input), class_weights, variant))
                return activations, tape.gradient(total, activations)

            return run, signature

        # unfrozen: only Smooth Grad-CAM++ uses it, and a frozen twin held ~90 MB more for its few passes
        compiled = self._cached(("gradients", layer, variant), build, freeze="never")

        def gradients(inputs, weights):
            activations, grads = compiled(tf.constant(inputs, tf.float32), tf.constant(weights, tf.float32))
            return activations.numpy(), grads.numpy()

        return gradients

    def perturbation_context(self, inputs: np.ndarray, activations: np.ndarray, class_weights: np.ndarray,
                             layer: str, variant: str, options: RunOptions, key: str) -> PerturbationContext:
        """One photo's :class:`PerturbationContext`: its preprocessed input (H, W, 3) and ``layer``'s
        activations (h, w, K), score functions bound to its target weights π (C,), and the run options."""
        pi = np.asarray(class_weights, np.float32)[None]
        score = self.score_function(variant)
        tail = self.tail_score_function(layer, variant)
        needs_gradients = method(key).needs_gradients
        gradients = self.gradient_function(layer, variant) if needs_gradients else None
        report = None if options.progress is None else (
            lambda done, total: options.progress(key, done, total))
        return PerturbationContext(
            inputs=inputs, activations=activations,
            score=lambda x: score(x, np.repeat(pi, len(x), axis=0)),
            tail_score=None if tail is None else (lambda a: tail(a, np.repeat(pi, len(a), axis=0))),
            chunk=options.chunk, progress=report, stop=options.stop,
            gradients=None if gradients is None else (lambda x: gradients(x, np.repeat(pi, len(x), axis=0))))

    def _perturbation_maps(self, pairs, batch, class_weights, activations, variant, options) -> dict:
        """(method, layer) → (B, h, w) maps of the perturbation methods, photo by photo."""
        inputs = preprocess(tf.constant(batch), self.bundle.preprocessing).numpy()
        out = {}
        for key, layer in pairs:
            entry = method(key)
            if entry.one_pass:
                continue
            maps = []
            for j in range(len(batch)):
                ctx = self.perturbation_context(inputs[j], activations[layer][j], class_weights[j], layer,
                                                variant, options, key)
                alpha = entry.compute(ctx)
                maps.append(np.einsum("hwk,k->hw", activations[layer][j], alpha).astype(np.float32))
            out[(key, layer)] = np.stack(maps)
        return out

    def run_preprocessed_batch(self, batch: np.ndarray, methods=("cam", "gradcam"), layer=None,
                               variant: str = "paper"):
        """The compiled call alone on a uint8 batch already at input size (benchmarks, evaluation)."""
        pairs = self.check_request(methods, layer)
        mask = np.zeros((len(batch), self.bundle.num_classes), np.float32)
        return self._compiled(pairs, variant)(tf.constant(batch), tf.constant(mask))
