"""A functional Keras model as a chain of segments, back-propagated with recomputation (gradient
checkpointing, Chen et al. 2016, "Training Deep Nets with Sublinear Memory Cost").

A backward pass through the whole network (FullGrad's) keeps every activation of the forward pass alive
until the gradient reaches it: for MobileNetV2 at 704 px that is most of its 830 MB of layer outputs, and
TensorFlow's oneDNN allocator keeps the peak resident after the call. Cut the graph where a single tensor
carries everything later layers need from earlier ones (a block's output), run the forward pass keeping only
those cut tensors, then walk the segments backwards: recompute one segment from its cut under a tape, take
its gradients, drop it. Memory falls to the cut tensors plus one segment; the price is a second forward
pass. Measured for FullGrad on MobileNetV2 (one process each, 8 segments): at 704 px, batch 1, resident
after the call 1211 → 1058 MB, maps equal to 5e-7 of their peak; and no slower here (704 px: 487 against
570 ms; 224 px, batch 16: 45.5 against 49.2 ms a photo), the recomputation paid for by smaller buffers.

    chain = SegmentChain(model, last="global_average_pooling2d", taps=("block_5_add",))
    boundaries, kept = chain.forward(x, keep=("block_5_add",))
    grad_x = chain.backward(boundaries, grad_of_last, visit)   # visit(tap, ∂y/∂tap) per tap, deepest first
"""

from __future__ import annotations

from typing import Callable, Iterable, Sequence

import keras
import numpy as np
import tensorflow as tf

__all__ = ["cut_points", "choose_cuts", "SegmentChain", "SEGMENTS"]

SEGMENTS = 8  # at 704 px batch 1: 4 segments 1143 MB, 8 → 1073, 10 → 1086 (the first blocks' own size)


def _producers(layer) -> list[str]:
    return [tensor._keras_history.operation.name
            for node in layer._inbound_nodes for tensor in node.input_tensors]


def cut_points(model: keras.Model, last: str) -> list[str]:
    """Layers up to and including ``last`` (in graph order) whose output is the only earlier tensor that
    the layers after them, up to ``last``, read: cutting the graph there leaves one tensor in between.
    Inside a residual block nothing qualifies (the shortcut is live too). A layer called more than once
    makes the graph too tangled to cut: then only ``last``."""
    layers = model.layers
    names = [layer.name for layer in layers]
    end = names.index(last)
    if any(len(layer._inbound_nodes) > 1 for layer in layers[:end + 1]):
        return [last]
    last_reader: dict[str, int] = {}
    for index, layer in enumerate(layers[:end + 1]):
        for name in _producers(layer):
            last_reader[name] = max(last_reader.get(name, -1), index)
    position = {name: i for i, name in enumerate(names)}
    cuts = []
    for index, name in enumerate(names[:end]):
        live = [p for p, reader in last_reader.items() if position[p] <= index < reader]
        if index > 0 and live == [name]:
            cuts.append(name)
    return cuts + [last]


def _elements(layer) -> int:
    return int(np.prod(layer.output.shape[1:]))


def choose_cuts(model: keras.Model, last: str, segments: int = SEGMENTS) -> list[str]:
    """About ``segments`` cuts of similar activation size, each at a candidate no larger than its two
    neighbours on either side (a block's narrow output, not its expanded inside); ``last`` ends the chain."""
    candidates = cut_points(model, last)
    layers = model.layers
    position = {layer.name: i for i, layer in enumerate(layers)}
    sizes = [_elements(model.get_layer(name)) for name in candidates]
    spatial = [i for i, layer in enumerate(layers[:position[last] + 1]) if len(layer.output.shape) == 4]
    budget = sum(_elements(layers[i]) for i in spatial) / max(1, segments)
    cuts, start = [], 0
    for k, name in enumerate(candidates[:-1]):
        end = position[name]
        held = sum(_elements(layers[i]) for i in spatial if start <= i <= end)
        narrow = sizes[k] <= min(sizes[max(0, k - 2):k + 3])
        if held >= budget and narrow:
            cuts.append(name)
            start = end + 1
    return cuts + [last]


def _run(part: keras.Model, x: tf.Tensor) -> list[tf.Tensor]:
    """A segment's outputs as a list (Keras returns a bare tensor for a one-output model)."""
    out = part(x, training=False)
    return list(out) if isinstance(out, (list, tuple)) else [out]


class SegmentChain:
    """The model from its input to ``last`` as segments between cuts; each segment also returns the
    outputs of the ``taps`` layers inside it, whose gradients :meth:`backward` hands out."""

    def __init__(self, model: keras.Model, last: str, taps: Iterable[str] = (), segments: int = SEGMENTS):
        cuts = choose_cuts(model, last, segments) if segments > 1 else [last]
        position = {layer.name: i for i, layer in enumerate(model.layers)}
        taps = list(dict.fromkeys(taps))
        for tap in taps:
            if tap not in position or position[tap] > position[last]:
                raise ValueError(f"layer {tap!r} does not come before {last!r} in '{model.name}'")
        self.cuts = cuts
        self.parts: list[tuple[keras.Model, tuple[str, ...]]] = []
        self.boundary_taps: list[tuple[str, ...]] = []  # taps that are a segment's own output
        start, begin = -1, model.input
        for cut in cuts:
            inside = tuple(t for t in taps if start < position[t] < position[cut])
            end = model.get_layer(cut).output
            self.parts.append((keras.Model(begin, [end, *(model.get_layer(t).output for t in inside)]), inside))
            self.boundary_taps.append(tuple(t for t in taps if t == cut))
            start, begin = position[cut], end

    def forward(self, x: tf.Tensor, keep: Sequence[str] = ()) -> tuple[list[tf.Tensor], dict[str, tf.Tensor]]:
        """The cut tensors ``[x, c_1, …, c_last]`` (no tape: nothing else stays alive) and the outputs of
        the taps named in ``keep``."""
        boundaries, kept = [x], {}
        for index, (part, inside) in enumerate(self.parts):
            end, *outputs = _run(part, boundaries[-1])
            kept.update({t: o for t, o in zip(inside, outputs) if t in keep})
            kept.update({t: end for t in self.boundary_taps[index] if t in keep})
            boundaries.append(end)
        return boundaries, kept

    def backward(self, boundaries: list[tf.Tensor], gradient: tf.Tensor,
                 visit: Callable[[str, tf.Tensor], None]) -> tf.Tensor:
        """Back-propagates ``gradient`` (∂y/∂c_last) to the input segment by segment, each recomputed once
        the later one is done; calls ``visit(tap, ∂y/∂tap)`` for every tap on the way (before the next
        segment is recomputed, so its gradient can be reduced and dropped). Returns ∂y/∂x."""
        for index in range(len(self.parts) - 1, -1, -1):
            part, inside = self.parts[index]
            for tap in self.boundary_taps[index]:
                visit(tap, gradient)
            with tf.control_dependencies([gradient]):  # recompute only now, not during the forward pass
                start = tf.identity(boundaries[index])
            with tf.GradientTape(watch_accessed_variables=False) as tape:
                tape.watch(start)
                end, *outputs = _run(part, start)
            found = tape.gradient(end, [start, *outputs], output_gradients=gradient)
            for tap, output, tap_gradient in zip(inside, outputs, found[1:]):
                visit(tap, tf.zeros_like(output) if tap_gradient is None else tap_gradient)  # a dead end
            gradient = found[0]
        return gradient
