"""The methods computed in the engine's one compiled call, each a few lines over a :class:`Context`.

Notation: A = activations (B, h, w, K), g = ∂score/∂A, Σ_ij a sum over positions, Z = h·w. The score is the
target's logit (paper recipe) or probability (the original study's), see ``core.cam``.
"""

from __future__ import annotations

import tensorflow as tf

from core.methods.projection import kernel_projection, principal_projection
from core.methods.registry import Context, Method, register

_POSITIONS = (1, 2)


def cam(ctx: Context) -> tf.Tensor:
    """CAM (Zhou et al. 2016): α_k = Σ_c π_c W[k, c], the classifier's kernel for the target classes.

    Only at the layer feeding global average pooling → Dense; there it needs no gradient at all.
    """
    return tf.matmul(ctx.class_weights, ctx.kernel, transpose_b=True)


def gradcam(ctx: Context) -> tf.Tensor:
    """Grad-CAM (Selvaraju et al. 2017): α_k = (1/Z) Σ_ij g_kij; map = ReLU(Σ_k α_k A_k)."""
    return tf.reduce_mean(ctx.gradients, axis=_POSITIONS)


def gradcam_plus_plus(ctx: Context) -> tf.Tensor:
    """Grad-CAM++ (Chattopadhay et al. 2018): α_k = Σ_ij a_kij ReLU(g_kij), with
    a_kij = g² / (2 g² + Σ_ab A_kab · g³), the closed form for an exponential score (eq. 19 of the paper).

    As pytorch-grad-cam (ε = 1e-6 in the denominator, a = 0 where g = 0). torchcam 0.5.0 drops the
    denominator (its maps are Σ ReLU(g)·g²); this follows the paper.
    """
    g = ctx.gradients
    g2 = tf.square(g)
    sums = tf.reduce_sum(ctx.activations, axis=_POSITIONS, keepdims=True)
    alpha = g2 / (2.0 * g2 + sums * g2 * g + 1e-6)
    alpha = tf.where(g != 0.0, alpha, tf.zeros_like(alpha))
    return tf.reduce_sum(alpha * tf.nn.relu(g), axis=_POSITIONS)


def xgradcam(ctx: Context) -> tf.Tensor:
    """XGrad-CAM (Fu et al. 2020): α_k = Σ_ij (A_kij / Σ_ab A_kab) g_kij (ε = 1e-7, as pytorch-grad-cam)."""
    sums = tf.reduce_sum(ctx.activations, axis=_POSITIONS)
    return tf.reduce_sum(ctx.gradients * ctx.activations, axis=_POSITIONS) / (sums + 1e-7)


def hirescam(ctx: Context) -> tf.Tensor:
    """HiResCAM (Draelos & Carin 2020): map = Σ_k g_k ⊙ A_k, the gradient kept per position.

    Equal to Grad-CAM (up to scale) when the score is linear in the pooled features (GAP + Dense)."""
    return ctx.gradients * ctx.activations


def gradcam_elementwise(ctx: Context) -> tf.Tensor:
    """Grad-CAM element-wise (pytorch-grad-cam): map = Σ_k ReLU(g_k ⊙ A_k)."""
    return tf.nn.relu(ctx.gradients * ctx.activations)


def layercam(ctx: Context) -> tf.Tensor:
    """LayerCAM (Jiang et al. 2021): map = Σ_k ReLU(g_k) ⊙ A_k, a weight per position.

    Several layers fuse with ``core.methods.fusion`` (the paper's tanh scaling, element-wise max)."""
    return tf.nn.relu(ctx.gradients) * ctx.activations


def eigencam(ctx: Context) -> tf.Tensor:
    """Eigen-CAM (Muhammad & Yeasin 2020): the first principal component of the activations.

    Ignores the target class and needs no gradient; its sign is fixed as ``core.methods.projection`` says."""
    return principal_projection(ctx.activations)


def eigengradcam(ctx: Context) -> tf.Tensor:
    """Eigen-Grad-CAM (pytorch-grad-cam): the first principal component of g ⊙ A, class-discriminative."""
    return principal_projection(ctx.gradients * ctx.activations)


def kpcacam(ctx: Context) -> tf.Tensor:
    """KPCA-CAM (Karmani et al. 2024): Eigen-CAM with kernel PCA (sigmoid kernel, scikit-learn's defaults,
    as pytorch-grad-cam) — the first kernel principal component of the activations. Ignores the class."""
    return kernel_projection(ctx.activations)


register(Method("cam", "CAM", "weights", cam, "Zhou et al., CVPR 2016", needs_gradients=False,
                needs_cam_head=True, relu=False, normalize="minmax", smoothable=True, doc=cam.__doc__))
register(Method("gradcam", "Grad-CAM", "weights", gradcam, "Selvaraju et al., ICCV 2017", doc=gradcam.__doc__))
register(Method("gradcampp", "Grad-CAM++", "weights", gradcam_plus_plus, "Chattopadhay et al., WACV 2018",
                doc=gradcam_plus_plus.__doc__))
register(Method("xgradcam", "XGrad-CAM", "weights", xgradcam, "Fu et al., BMVC 2020", doc=xgradcam.__doc__))
register(Method("hirescam", "HiResCAM", "weighted", hirescam, "Draelos & Carin, 2020", doc=hirescam.__doc__))
register(Method("gradcam_elementwise", "Grad-CAM element-wise", "weighted", gradcam_elementwise,
                "pytorch-grad-cam (Gildenblat et al.)", doc=gradcam_elementwise.__doc__))
register(Method("layercam", "LayerCAM", "weighted", layercam, "Jiang et al., IEEE TIP 2021", doc=layercam.__doc__))
register(Method("eigencam", "Eigen-CAM", "map", eigencam, "Muhammad & Yeasin, IJCNN 2020",
                needs_gradients=False, uses_class=False, smoothable=False, doc=eigencam.__doc__))
register(Method("eigengradcam", "Eigen-Grad-CAM", "map", eigengradcam, "pytorch-grad-cam (Gildenblat et al.)",
                smoothable=False, doc=eigengradcam.__doc__))
register(Method("finercam", "FinerCAM", "weights", gradcam, "Zhang et al., 2025", score="finer",
                doc="FinerCAM: Grad-CAM of the contrast Σ_j p_j (z_c − z_j) / Σ_j p_j between the class and "
                    "the 3 classes whose logits are closest to it (p = softmax, α = 1, as pytorch-grad-cam): "
                    "what tells the class from its look-alikes. Uses the target's main class."))
register(Method("kpcacam", "KPCA-CAM", "map", kpcacam, "Karmani et al., 2024", needs_gradients=False,
                uses_class=False, smoothable=False, doc=kpcacam.__doc__))
