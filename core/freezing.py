"""Compiled functions with the weights frozen into constants, so TensorFlow can fold each BatchNorm into
the convolution before it and fuse the pair (measured: ResNet50 at batch 1, 56 → 38 ms per photo here).

Freezing a ResNet50 function costs a few seconds, so by default it happens in a background thread: the
plain compiled function answers at once and the frozen one takes over when ready. A frozen function
snapshots the weights: build a new Explainer after changing them (e.g. after training).

A frozen function is not free: TensorFlow keeps its constants several times over (the Python graph, the
function library, the optimised copy, the kernels and oneDNN's reordered filters). Measured here for the
offline MobileNetV2 (13 MB of weights): 100–180 MB of resident memory per frozen explanation function,
against ~18 MB for the same function unfrozen. So every frozen twin in the process is charged
``FROZEN_COPIES`` × its constants' bytes against one process-wide budget (:data:`budget`,
``CAM_EXPLORER_FROZEN_BUDGET_MB``, default 320 MB); past it, the least recently used twins are dropped and
their functions run unfrozen (slower, same results). The newest twin always stays, so a ResNet50 (~800 MB
per twin) keeps one frozen function.
"""

from __future__ import annotations

import logging
import os
import threading
import weakref
from collections import OrderedDict
from typing import Callable, Sequence

import tensorflow as tf
from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

from core.memory import return_free_memory

FREEZE_MODES = ("background", "now", "never")
FROZEN_COPIES = 12  # resident bytes per byte of frozen constants, measured (see the module docstring)
_log = logging.getLogger(__name__)


class FrozenBudget:
    """Process-wide bound on the memory held by frozen twins, least recently used dropped first.

    ``limit_bytes`` None means unbounded (benchmarks that keep every contender frozen)."""

    def __init__(self, limit_bytes: int | None):
        self.limit_bytes = limit_bytes
        self._lock = threading.Lock()
        self._entries: OrderedDict[int, tuple[weakref.ref, int]] = OrderedDict()

    @property
    def used_bytes(self) -> int:
        with self._lock:
            return sum(cost for ref, cost in self._entries.values() if ref() is not None)

    def admit(self, function: "FreezableFunction", cost: int) -> None:
        """Charge ``cost`` for ``function``'s twin, dropping older twins until the rest fits; the newest
        twin always stays (a batch job with one function keeps its speed whatever the model's size)."""
        with self._lock:
            self._entries[id(function)] = (weakref.ref(function), cost)
            self._entries.move_to_end(id(function))
            self._evict(keep=id(function))

    def touch(self, function: "FreezableFunction") -> None:
        with self._lock:
            if id(function) in self._entries:
                self._entries.move_to_end(id(function))

    def release(self, function: "FreezableFunction") -> None:
        with self._lock:
            self._entries.pop(id(function), None)

    def _evict(self, keep: int) -> None:
        for key in [k for k, (ref, _) in self._entries.items() if ref() is None]:
            del self._entries[key]
        dropped = False
        while (self.limit_bytes is not None and len(self._entries) > 1
               and sum(c for _, c in self._entries.values()) > self.limit_bytes):
            oldest = next(k for k in self._entries if k != keep)
            ref, _ = self._entries.pop(oldest)
            victim = ref()
            if victim is not None:
                victim._drop_frozen()
                dropped = True
        if dropped:
            return_free_memory()


def _default_limit() -> int | None:
    text = os.environ.get("CAM_EXPLORER_FROZEN_BUDGET_MB", "320")
    return None if text.strip().lower() in ("", "none", "unbounded") else int(float(text) * 2**20)


budget = FrozenBudget(_default_limit())


def constant_bytes(concrete) -> int:
    """Bytes of the constants in a (frozen) concrete function's graph."""
    total = 0
    for op in concrete.graph.get_operations():
        if op.type == "Const":
            value = op.get_attr("value")
            count = 1
            for dim in value.tensor_shape.dim:
                count *= max(dim.size, 0)
            total += count * tf.dtypes.as_dtype(value.dtype).size
    return total


class FreezableFunction:
    """Calls ``function`` (a ``tf.function`` returning a flat tuple of tensors) or its frozen twin."""

    def __init__(self, function, input_signature: Sequence[tf.TensorSpec], mode: str = "background",
                 frozen_budget: FrozenBudget | None = None):
        if mode not in FREEZE_MODES:
            raise ValueError(f"freeze mode must be one of {FREEZE_MODES}, got {mode!r}")
        self._function = function
        self._signature = tuple(input_signature)
        self._frozen: Callable | None = None
        self._budget = frozen_budget or budget
        self.ready = threading.Event()  # set once freezing finished (or was not asked for / failed)
        if mode == "now":
            self._freeze()
        elif mode == "background":
            # not a daemon: TensorFlow aborts the process if the interpreter exits mid-freeze
            threading.Thread(target=self._freeze, name="freeze-explainer", daemon=False).start()
        else:
            self.ready.set()

    @property
    def frozen(self) -> bool:
        return self._frozen is not None

    @property
    def tracing_count(self) -> int:
        """How often TensorFlow traced the function (stays constant once warm: no retracing)."""
        return self._function.experimental_get_tracing_count()

    def _freeze(self) -> None:
        try:
            concrete = self._function.get_concrete_function(*self._signature)
            frozen = convert_variables_to_constants_v2(concrete)
            self._frozen = frozen
            self._budget.admit(self, FROZEN_COPIES * constant_bytes(frozen))
        except Exception as error:  # a model TF cannot freeze still works unfrozen
            _log.warning("could not freeze the explanation function, running it unfrozen: %s", error)
        finally:
            self.ready.set()

    def _drop_frozen(self) -> None:
        """Fall back to the live function (the budget needs the twin's memory for a newer one)."""
        self._frozen = None

    def release(self) -> None:
        """Give the twin's share of the budget back (the function is no longer cached)."""
        self._frozen = None
        self._budget.release(self)

    def __call__(self, *args) -> tuple:
        frozen = self._frozen
        if frozen is None:
            return tuple(self._function(*args))
        self._budget.touch(self)
        # A frozen function has no structured signature, so its ordinary call first fails to bind the
        # arguments and builds an error message holding their repr (~30 ms for a 30 MB tensor) before
        # falling back to the flat call: go to the flat call at once.
        tensors = [tf.convert_to_tensor(arg, spec.dtype) for arg, spec in zip(args, self._signature)]
        return tuple(frozen._call_flat(tensors, frozen.captured_inputs))
