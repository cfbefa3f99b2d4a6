"""The first principal component of activations over positions: Eigen-CAM's map and eigen-smoothing.

Muhammad & Yeasin (2020) project the centred (positions × channels) activation matrix onto its first
right singular vector. A singular vector's sign is arbitrary (pytorch-grad-cam leaves it to LAPACK), so
here it is fixed: the map correlates non-negatively with the channel sum of the same activations, i.e.
the regions where the layer is most active come out positive.
"""

from __future__ import annotations

import tensorflow as tf

__all__ = ["principal_projection"]


def principal_projection(values: tf.Tensor) -> tf.Tensor:
    """(B, h, w, K) → (B, h, w): each photo's positions projected on its first principal direction.

    Positions are the samples and channels the features, centred over positions (as pytorch-grad-cam's
    ``get_2d_projection``); NaN counts as 0.
    """
    values = tf.where(tf.math.is_nan(values), tf.zeros_like(values), values)
    shape = tf.shape(values)
    flat = tf.reshape(values, (shape[0], shape[1] * shape[2], shape[3]))
    centred = flat - tf.reduce_mean(flat, axis=1, keepdims=True)
    _, _, v = tf.linalg.svd(centred, full_matrices=False)  # v: (B, K, r), columns by singular value
    projection = tf.einsum("bnk,bk->bn", centred, v[:, :, 0])
    channel_sum = tf.reduce_sum(centred, axis=-1)
    sign = tf.where(tf.reduce_sum(projection * channel_sum, axis=1, keepdims=True) < 0, -1.0, 1.0)
    return tf.reshape(projection * sign, shape[:3])
