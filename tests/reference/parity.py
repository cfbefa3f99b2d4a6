"""Comparing this engine's maps with the reference libraries' (pure numpy: no torch, no TensorFlow), and
the pairs compared, shared by ``tests/test_parity.py`` and ``bench/parity.py``.

Keras layer ↔ torchvision module: ``out_relu`` ↔ ``features[18]`` ("last"), ``block_12_add`` ↔
``features[13]`` ("middle"). FullGrad belongs to no layer ("all" in the reference, :data:`INPUT` here): its
224×224 maps are compared at that resolution (Pearson r over every pixel), and their peak on the last block's
7×7 grid (each map averaged over 32×32-pixel cells): the brightest single pixel of so spiky a map says little,
the brightest cell is what the box grows from.
"""

from __future__ import annotations

import numpy as np

LAYERS = {"last": "out_relu", "middle": "block_12_add"}
INPUT = "input"  # core.methods.INPUT (not imported: this module stays numpy-only)
PEAK_GRID = 7  # cells per side for the peak of input-resolution maps (FullGrad's)
# (library, reference key) → this engine's method key, on both layers unless restricted
PAIRS = {
    ("pytorch_grad_cam", "gradcam"): "gradcam",
    ("pytorch_grad_cam", "hirescam"): "hirescam",
    ("pytorch_grad_cam", "gradcam_elementwise"): "gradcam_elementwise",
    ("pytorch_grad_cam", "gradcampp"): "gradcampp",
    ("pytorch_grad_cam", "xgradcam"): "xgradcam",
    ("pytorch_grad_cam", "layercam"): "layercam",
    ("pytorch_grad_cam", "eigencam"): "eigencam",
    ("pytorch_grad_cam", "eigengradcam"): "eigengradcam",
    ("pytorch_grad_cam", "gradcam_eigensmooth"): "gradcam+smooth",
    ("pytorch_grad_cam", "kpcacam"): "kpcacam",
    ("pytorch_grad_cam", "finercam"): "finercam",
    ("pytorch_grad_cam", "fullgrad"): "fullgrad",
    ("pytorch_grad_cam", "scorecam"): "scorecam",
    ("pytorch_grad_cam", "ablationcam"): "ablationcam",
    ("torchcam", "cam"): "cam",
    ("torchcam", "gradcam"): "gradcam",
    ("torchcam", "xgradcam"): "xgradcam",
    ("torchcam", "layercam"): "layercam",
    ("torchcam", "sscam"): "sscam",
    ("torchcam", "iscam"): "iscam",
    # torchcam's own SmoothGradCAMpp departs from the paper three ways (see torch_reference.py): compare the
    # paper's formula on torchcam's gradients of the same noisy copies
    ("torchcam", "smoothgradcampp_paper"): "smoothgradcampp",
}
# Ablation-CAM: pytorch-grad-cam's ablation value is ill-defined where the layer's minimum is not 0
ONLY_LAST = {("pytorch_grad_cam", "ablationcam"), ("torchcam", "cam")}
# the sign of a principal component is the SVD's choice there: compare up to sign
UP_TO_SIGN = {"eigencam", "eigengradcam", "gradcam_eigensmooth", "kpcacam"}
# N samples of every channel: at the last block (1,280 channels) torchcam takes minutes per sample, so CI
# compares them at the middle block only and bench/parity.py at both
SAMPLED = {("torchcam", "sscam"), ("torchcam", "iscam")}
# no layer: one comparison, at the reference's layer "all"
LAYER_FREE = {("pytorch_grad_cam", "fullgrad")}
REFERENCE_METHODS = ",".join(f"{library}/{key}" for library, key in PAIRS)


def pearson(a: np.ndarray, b: np.ndarray) -> float:
    a, b = np.ravel(a).astype(np.float64), np.ravel(b).astype(np.float64)
    a, b = a - a.mean(), b - b.mean()
    denominator = np.sqrt((a @ a) * (b @ b))
    return float(a @ b / denominator) if denominator > 0 else float(np.allclose(a, b))


def _cells(values: np.ndarray, grid: int) -> np.ndarray:
    """Mean over grid×grid cells of a map whose sides are multiples of ``grid``."""
    height, width = values.shape
    return values.reshape(grid, height // grid, grid, width // grid).mean(axis=(1, 3))


def compare(ours: np.ndarray, reference: np.ndarray, up_to_sign: bool = False,
            peak_grid: int | None = None) -> tuple[float, bool]:
    """(Pearson correlation, same peak cell) of one map pair; up to sign when asked. ``peak_grid``: take
    the peak on that many cells per side (FullGrad's input-resolution maps: :data:`PEAK_GRID`)."""
    r = pearson(ours, reference)
    if up_to_sign and r < 0:
        ours, r = -ours, -r
    if peak_grid:
        ours, reference = _cells(ours, peak_grid), _cells(reference, peak_grid)
    return r, int(np.argmax(ours)) == int(np.argmax(reference))


def pairs_to_compare(layers=("last", "middle"), sampled_layers=("last", "middle")):
    """(library, reference key, our key, layer name) for every comparison that is defined; the SS-CAM and
    IS-CAM ones only at ``sampled_layers``, FullGrad once at layer "all"."""
    for (library, key), ours in PAIRS.items():
        if (library, key) in LAYER_FREE:
            yield library, key, ours, "all"
            continue
        for layer in layers:
            if layer == "middle" and (library, key) in ONLY_LAST:
                continue
            if (library, key) in SAMPLED and layer not in sampled_layers:
                continue
            yield library, key, ours, layer


def table(rows: list[dict]) -> str:
    """Markdown table of parity rows (library, method, layer, n, min r, mean r, peak agreement)."""
    lines = ["| library | method | layer | photos | min r | mean r | same peak |", "|---|---|---|---|---|---|---|"]
    for row in rows:
        lines.append(f"| {row['library']} | {row['method']} | {row['layer']} | {row['n']} | {row['min_r']:.4f} "
                     f"| {row['mean_r']:.4f} | {row['peaks']}/{row['n']} |")
    return "\n".join(lines)
