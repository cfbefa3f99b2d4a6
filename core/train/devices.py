"""Where training runs: every visible GPU (``MirroredStrategy`` when there are several) or the CPU, and
in which precision — without code changes between machines.

``precision="auto"`` picks ``mixed_float16`` when every GPU has tensor cores (compute capability ≥ 7.0)
and float32 otherwise, including on CPU. ``mixed_bfloat16`` is never automatic; it can be asked for on
CPUs with AMX/AVX512-BF16 (see ``bench/train_speed.py``). The global Keras dtype policy is set for the
run and must be put back afterwards (:func:`precision_policy` is a context manager).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass

import keras
import tensorflow as tf

__all__ = ["Devices", "select_devices", "precision_policy", "choose_precision"]

TENSOR_CORES = (7, 0)


@dataclass(frozen=True)
class Devices:
    strategy: tf.distribute.Strategy
    description: str  # e.g. "CPU (2 cores)", "1 GPU: NVIDIA A100", "4 GPUs (MirroredStrategy)"
    gpus: int


def _gpu_capabilities(gpus) -> list[tuple[int, int] | None]:
    capabilities = []
    for gpu in gpus:
        try:
            capabilities.append(tf.config.experimental.get_device_details(gpu).get("compute_capability"))
        except (RuntimeError, ValueError):
            capabilities.append(None)
    return capabilities


def choose_precision(requested: str, gpus) -> str:
    """``auto`` → ``mixed_float16`` on GPUs that all have tensor cores, else ``float32``."""
    if requested != "auto":
        return requested
    capabilities = _gpu_capabilities(gpus)
    if capabilities and all(c is not None and tuple(c) >= TENSOR_CORES for c in capabilities):
        return "mixed_float16"
    return "float32"


def select_devices() -> Devices:
    """All visible GPUs, mirrored when there are several; else the default (CPU) strategy."""
    gpus = tf.config.list_physical_devices("GPU")
    if len(gpus) > 1:
        return Devices(tf.distribute.MirroredStrategy(), f"{len(gpus)} GPUs (MirroredStrategy)", len(gpus))
    if gpus:
        name = tf.config.experimental.get_device_details(gpus[0]).get("device_name", gpus[0].name)
        return Devices(tf.distribute.get_strategy(), f"1 GPU: {name}", 1)
    return Devices(tf.distribute.get_strategy(), f"CPU ({os.cpu_count()} cores)", 0)


@contextlib.contextmanager
def precision_policy(precision: str) -> Iterator[str]:
    """Set Keras' global dtype policy for the models built inside, then restore the previous one."""
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(precision)
    try:
        yield precision
    finally:
        keras.config.set_dtype_policy(previous)
