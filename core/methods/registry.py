"""What a CAM method is, and the one registry every consumer (engine, pages, CLIs, plots, evaluation,
calibration) iterates.

A method makes a map, most for one layer at its resolution, from what the network gives it, in one of four ways:

* ``"weights"``: channel weights α (B, K); the map is Σ_k α_k A_k (CAM, Grad-CAM, Grad-CAM++, XGrad-CAM);
* ``"weighted"``: weighted activations W ⊙ A (B, h, w, K), summed over channels (HiResCAM, LayerCAM,
  Grad-CAM element-wise);
* ``"map"``: the map itself (B, h, w) (Eigen-CAM, Eigen-Grad-CAM);
* ``"input"``: a map at the input's resolution (B, H, W) that belongs to no layer, from the input's gradient
  and every bias layer's (FullGrad; :class:`InputContext`): it ignores the layer choice, and its pair's
  layer is :data:`INPUT`;

all four inside the engine's one compiled call (one forward, one backward for every gradient method
together), or ``"perturbation"``: channel weights from extra passes, run in chunks outside it with progress
and a stop signal: forward passes of masked, noisy-masked, scaled or ablated inputs (Score-CAM, SS-CAM,
IS-CAM, Ablation-CAM; ``core.methods.perturbation``), or forward and backward passes of noisy copies of the
photo (Smooth Grad-CAM++; ``core.methods.noisy``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import tensorflow as tf

__all__ = ["Context", "InputContext", "INPUT", "Method", "METHODS", "register", "method", "one_pass", "resolve", "ALIASES", "COST_CLASSES", "DEFAULT_METHODS"]

KINDS = ("weights", "weighted", "map", "input", "perturbation")
INPUT = "input"  # the "layer" of an "input" method's map: the network's input, whatever layer was chosen
COST_CLASSES = {
    "one pass": "one forward and one backward pass, shared by every gradient method",
    "channels": "one extra forward pass per channel of the layer (chunked; can be stopped)",
    "channels × samples": "N extra forward passes per channel of the layer: N × Score-CAM (chunked; can be "
                          "stopped)",
    "samples": "a forward and a backward pass per noisy copy of the photo (chunked; can be stopped)",
}
_MENU_NOTES = {"one pass": "", "channels": "slow: a pass per channel",
               "channels × samples": "very slow: {samples} passes per channel",
               "samples": "{samples} noisy passes"}
_PROGRESS_UNITS = {"one pass": "passes", "channels": "channels", "channels × samples": "masked inputs",
                   "samples": "noisy copies"}
NORMALIZATIONS = ("minmax", "max")
SCORES = ("target", "finer")


@dataclass(frozen=True)
class Context:
    """What a one-pass method may use, all for one layer of one batch (TensorFlow tensors)."""

    activations: tf.Tensor  # A: (B, h, w, K)
    gradients: tf.Tensor | None  # ∂score/∂A, same shape (None when no requested method needs them)
    class_weights: tf.Tensor  # π: (B, C), the target's class weights per photo, rows sum to 1
    kernel: tf.Tensor | None  # the CAM head's Dense kernel (K, C), when the layer is the CAM layer


@dataclass(frozen=True)
class InputContext:
    """What an ``"input"`` method may use, for one batch: the preprocessed input and gradients of the score
    with respect to it and to the output of every layer that adds a per-channel bias (TensorFlow tensors).

    An input method's map is a sum over these terms, and the engine may hand them over in pieces (the
    backward pass runs segment by segment to bound its memory, ``core.segments``): a context then holds
    some bias layers' gradients, or only the input's, and the engine adds the pieces' maps."""

    inputs: tf.Tensor  # x: (B, H, W, 3)
    input_gradients: tf.Tensor | None  # ∂score/∂x, same shape (None in a piece without the input's term)
    bias_gradients: tuple  # ∂score/∂z_l for each bias layer's output z_l: (B, h_l, w_l, K_l)
    biases: tuple  # b_l: (K_l,), each layer's per-channel bias (BatchNorm's inference-time one)


@dataclass(frozen=True)
class Method:
    """One CAM method: how its map is made, what it needs, how it is normalised, what it costs.

    ``compute``: for one-pass kinds a function of :class:`Context` (``"input"``: of :class:`InputContext`); for ``"perturbation"`` a function
    ``(PerturbationContext) -> (B, K) weights`` (see ``core.methods.perturbation``). ``relu`` and
    ``normalize`` are the paper's post-processing ("minmax": (x − min)/(max − min); "max": x / max).
    ``uses_class``: False for methods that ignore the target (Eigen-CAM says so in the UI).
    ``smoothable``: eigen-smoothing (the first principal component of the weighted activations instead
    of their sum, as pytorch-grad-cam's ``eigen_smooth``) applies. ``samples``: the noisy or scaled copies
    a "channels × samples" or "samples" method averages over (its menu label says so).
    """

    key: str
    label: str
    kind: str
    compute: Callable
    paper: str
    needs_gradients: bool = True
    needs_cam_head: bool = False
    uses_class: bool = True
    relu: bool = True
    normalize: str = "max"
    cost: str = "one pass"
    smoothable: bool = True
    doc: str = ""
    score: str = "target"  # the score differentiated: the target's, or "finer" (FinerCAM's contrast)
    samples: int = 0

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {self.kind!r}")
        if self.normalize not in NORMALIZATIONS:
            raise ValueError(f"normalize must be one of {NORMALIZATIONS}, got {self.normalize!r}")
        if self.score not in SCORES:
            raise ValueError(f"score must be one of {SCORES}, got {self.score!r}")
        if self.cost not in COST_CLASSES:
            raise ValueError(f"cost must be one of {sorted(COST_CLASSES)}, got {self.cost!r}")
        if (self.cost in ("channels × samples", "samples")) != (self.samples > 0):
            raise ValueError(f"{self.key}: a positive sample count goes with the sampled cost classes only")
        if (self.kind == "perturbation") == (self.cost == "one pass"):
            raise ValueError(f"{self.key}: perturbation methods, and only they, cost more than one pass")

    @property
    def one_pass(self) -> bool:
        """Computed inside the engine's single compiled call."""
        return self.kind != "perturbation"

    def normalization(self, variant: str = "paper") -> tuple[bool, str]:
        """(relu, mode) for this method; the original study's recipe is ``map / max`` without ReLU."""
        return (False, "max") if variant == "original" else (self.relu, self.normalize)

    @property
    def uses_layer_choice(self) -> bool:
        """False for methods whose map does not depend on the chosen layer: CAM (always the layer before
        pooling) and ``"input"`` methods (no layer at all)."""
        return not (self.needs_cam_head or self.kind == "input")

    @property
    def progress_unit(self) -> str:
        """What a progress count of this method counts ("12/1280 channels")."""
        return _PROGRESS_UNITS[self.cost]

    @property
    def menu_label(self) -> str:
        """The label with its cost, for pickers: slow methods say so."""
        note = _MENU_NOTES[self.cost].format(samples=self.samples)
        if self.kind == "input":
            note = ", ".join(filter(None, ["ignores the layer", note]))
        return f"{self.label} ({note})" if note else self.label


METHODS: dict[str, Method] = {}
# What pages show first: three maps that differ at the CAM layer. There Grad-CAM (and XGrad-CAM, HiResCAM)
# equal CAM, and LayerCAM (like element-wise Grad-CAM) is Grad-CAM++ to within a few per cent; Eigen-CAM,
# the activations' first principal component, ignores the class altogether.
DEFAULT_METHODS = ("cam", "gradcampp", "eigencam")


def register(entry: Method) -> Method:
    """Add a method to the registry (keys are unique)."""
    if entry.key in METHODS:
        raise ValueError(f"method {entry.key!r} is registered twice")
    METHODS[entry.key] = entry
    return entry


def method(key: str) -> Method:
    """The registered method ``key``; ValueError listing the choices otherwise."""
    try:
        return METHODS[key]
    except KeyError:
        raise ValueError(f"unknown method {key!r}; choose from {', '.join(METHODS)}") from None


def one_pass(keys) -> tuple[str, ...]:
    return tuple(k for k in keys if method(k).one_pass)


ALIASES = {"all": "every registered method", "fast": "every one-pass method (no extra passes)",
           "both": "CAM and Grad-CAM (the original study's pair)"}


def resolve(spec, cam_available: bool = True) -> tuple[str, ...]:
    """Method keys from a CLI-style spec: ``"all"``, ``"fast"``, ``"both"`` or comma-separated keys.
    CAM is left out of the aliases when the model has no CAM head (and named keys are checked)."""
    names = spec.split(",") if isinstance(spec, str) else list(spec)
    keys: list[str] = []
    for name in (n.strip() for n in names if n.strip()):
        if name == "all":
            keys += [k for k in METHODS if cam_available or not METHODS[k].needs_cam_head]
        elif name == "fast":
            keys += [k for k, m in METHODS.items() if m.one_pass and (cam_available or not m.needs_cam_head)]
        elif name == "both":
            keys += ["cam", "gradcam"] if cam_available else ["gradcam"]
        else:
            keys.append(method(name).key)
    if not keys:
        raise ValueError(f"no method named in {spec!r}; use all, fast, both or keys from {', '.join(METHODS)}")
    return tuple(dict.fromkeys(keys))
