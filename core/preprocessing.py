"""Input preprocessing schemes, by name, so a model file can say which one its weights expect.

Each function maps float32 RGB in [0, 255] (shape ``[..., 3]``) to the model's input scale. They use
TensorFlow ops so they run inside the compiled explanation function, and numpy arrays work as well.
"""

from __future__ import annotations

import tensorflow as tf

_IMAGENET_MEAN_RGB = (0.485, 0.456, 0.406)
_IMAGENET_STD_RGB = (0.229, 0.224, 0.225)
_CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)


def _torch(x):
    """torchvision weights: RGB / 255, then ImageNet mean and std."""
    return (x / 255.0 - tf.constant(_IMAGENET_MEAN_RGB)) / tf.constant(_IMAGENET_STD_RGB)


def _caffe(x):
    """Keras ResNet50 weights (converted from Caffe): BGR order, ImageNet mean subtracted, no scaling."""
    return tf.reverse(x, axis=[-1]) - tf.constant(_CAFFE_MEAN_BGR)


def _tf(x):
    """Keras MobileNet/Inception weights: scaled to [-1, 1]."""
    return x / 127.5 - 1.0


def _unit(x):
    """The original study's choice, RGB / 255 (wrong for ImageNet ResNet50 weights, kept for its models)."""
    return x / 255.0


PREPROCESSORS = {"torch": _torch, "caffe": _caffe, "tf": _tf, "unit": _unit}


def preprocess(images, scheme: str):
    """Apply the named scheme to RGB images in [0, 255]; raises ValueError for an unknown scheme."""
    try:
        fn = PREPROCESSORS[scheme]
    except KeyError:
        raise ValueError(
            f"unknown preprocessing {scheme!r}; expected one of {sorted(PREPROCESSORS)}"
        ) from None
    return fn(tf.cast(images, tf.float32))
