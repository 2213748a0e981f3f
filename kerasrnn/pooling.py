"""Concat pooling over time: last state, masked max and masked mean (ULMFiT's classifier head).

For recurrent outputs ``h_1 … h_T`` (B, T, D) with padding mask ``m_t ∈ {0, 1}``::

    last = h_{t*}  with t* = the last unmasked step (forward units) and
           h_1 for the backward half of a Bidirectional layer (its final state)
    max  = max_{t: m_t = 1} h_t
    mean = Σ_t m_t h_t / Σ_t m_t
    y    = [last ; max ; mean]                     (B, 3D)

A sentence classifier then sees the whole sequence, not just the final state
(Howard & Ruder 2018). It is one layer, so the classifier stays a chain of
layers (the exporter replays it on token ids).

>>> import numpy as np
>>> h = np.arange(12, dtype="float32").reshape(1, 4, 3)
>>> mask = np.array([[True, True, False, False]])
>>> ConcatPooling()(h, mask=mask).numpy().tolist()
[[3.0, 4.0, 5.0, 3.0, 4.0, 5.0, 1.5, 2.5, 3.5]]
"""

from __future__ import annotations

import keras
from keras import ops

__all__ = ["ConcatPooling"]


@keras.saving.register_keras_serializable(package="kerasrnn")
class ConcatPooling(keras.layers.Layer):
    """``[last ; masked max ; masked mean]`` of a (B, T, D) sequence → (B, 3D).

    Args:
        backward_units: the last `backward_units` features come from the
            backward direction of a `Bidirectional` layer, whose final state is
            at step 1, not at the last step (default 0 = all forward).

    A sequence with no unmasked step pools to zeros.
    """

    def __init__(self, backward_units: int = 0, **kwargs):
        super().__init__(**kwargs)
        if int(backward_units) < 0:
            raise ValueError(f"ConcatPooling backward_units must be >= 0, got {backward_units!r}")
        self.backward_units = int(backward_units)
        self.supports_masking = True

    def call(self, inputs, mask=None):
        steps = ops.shape(inputs)[1]
        if mask is None:
            mask = ops.ones(ops.shape(inputs)[:2], dtype="bool")
        m = ops.cast(mask, inputs.dtype)[:, :, None]                       # (B, T, 1)
        count = ops.sum(m, axis=1)                                          # (B, 1)
        mean = ops.sum(inputs * m, axis=1) / ops.maximum(count, 1.0)
        lowest = ops.min(inputs, axis=1, keepdims=True) - 1.0
        maximum = ops.max(ops.where(m > 0, inputs, lowest), axis=1) * ops.cast(count > 0, inputs.dtype)
        positions = ops.arange(steps, dtype="int32")[None, :]
        last_step = ops.max(ops.where(ops.cast(mask, "bool"), positions, 0), axis=1)   # (B,)
        one_hot = ops.one_hot(last_step, steps, dtype=inputs.dtype)[:, :, None]
        last = ops.sum(inputs * one_hot, axis=1)
        if self.backward_units:
            forward = last[:, : inputs.shape[-1] - self.backward_units]
            backward = inputs[:, 0, inputs.shape[-1] - self.backward_units:]
            last = ops.concatenate([forward, backward], axis=-1)
        return ops.concatenate([last, maximum, mean], axis=-1)

    def compute_mask(self, inputs, mask=None):
        return None

    def compute_output_shape(self, input_shape):
        return (input_shape[0], 3 * input_shape[-1])

    def get_config(self):
        return {**super().get_config(), "backward_units": self.backward_units}
