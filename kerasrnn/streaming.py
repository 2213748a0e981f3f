"""Streaming (one step at a time) views of trained sequence models.

A generator trained on whole sequences is sampled one character at a time:
the step model shares the trained weights and carries the recurrent state
explicitly, so each new character costs exactly one step of every layer and
the prefix is never re-run.
"""

from __future__ import annotations

import keras
import numpy as np

from kerasrnn.layers.base import RecurrentLayer

__all__ = ["build_step_model", "initial_states", "recurrent_layers"]


def recurrent_layers(model: keras.Model) -> list[RecurrentLayer]:
    """The kerasrnn sequence layers of `model`, in order (named ``rnn_0``, ``rnn_1``...)."""
    layers = [layer for layer in model.layers if isinstance(layer, RecurrentLayer)]
    if not layers:
        raise ValueError(f"Model {model.name!r} has no kerasrnn recurrent layer.")
    for layer in layers:
        if layer.go_backwards:
            raise ValueError(f"Layer {layer.name!r} runs backwards; it cannot be streamed.")
    return layers


def _state_sizes(layer: RecurrentLayer) -> list[int]:
    size = layer.cell.state_size
    return list(size) if isinstance(size, (list, tuple)) else [size]


def build_step_model(model: keras.Model, batch_size: int | None = None) -> keras.Model:
    """Build ``(token_ids, *states) -> (logits, *new_states)`` from a generation model.

    `model` follows the generation contract: ``Embedding(name="embedding")`` →
    kerasrnn recurrent layers (Dropout between them is ignored: inference) →
    ``Dense(name="logits")``. The step model reuses those layer objects, so it
    shares their weights.

    Args:
        model: the trained sequence model.
        batch_size: fix the batch dimension (e.g. 1 for TFLite); default None.

    Returns:
        A keras.Model with inputs ``token`` (B,) int32 then, for every recurrent
        layer ``L``, ``L_h`` (and ``L_c`` for LSTM); outputs ``logits`` (B, V)
        then the new states in the same order.

    >>> step = build_step_model(model)  # doctest: +SKIP
    >>> logits, h, c = step([np.array([3]), *initial_states(step, 1)])  # doctest: +SKIP
    """
    embedding = model.get_layer("embedding")
    head = model.get_layer("logits")
    layers = recurrent_layers(model)
    if len({layer.cell.name for layer in layers}) < len(layers):
        # Keras names every cell of one type alike ("lstm_cell"); a functional model
        # that calls two of them needs unique names. Weight paths do not use them.
        for layer in layers:
            layer.cell.name = f"{layer.name}_cell"
    token = keras.Input(batch_shape=(batch_size,), dtype="int32", name="token")
    x = embedding(token)
    state_inputs, new_states = [], []
    for layer in layers:
        names = ["h", "c"][: len(_state_sizes(layer))]
        states = [
            keras.Input(batch_shape=(batch_size, size), name=f"{layer.name}_{n}")
            for size, n in zip(_state_sizes(layer), names)
        ]
        x, out_states = layer.cell(x, states, training=False)
        out_states = list(out_states) if isinstance(out_states, (list, tuple)) else [out_states]
        state_inputs += states
        new_states += out_states
    logits = head(x)
    return keras.Model([token, *state_inputs], [logits, *new_states], name="step_model")


def initial_states(step_model: keras.Model, batch_size: int) -> list[np.ndarray]:
    """Zero states for `step_model` (every input after the token), as float32 arrays."""
    return [
        np.zeros((batch_size, int(t.shape[-1])), dtype="float32")
        for t in step_model.inputs[1:]
    ]
