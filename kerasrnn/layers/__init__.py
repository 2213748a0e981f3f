"""kerasrnn.layers: SimpleRNN, LSTM and GRU written with `keras.ops` only.

Each recurrence has a Cell (one step, usable in `keras.layers.RNN`) and a
sequence layer (a `keras.layers.RNN` subclass) that is a drop-in replacement
for its `keras.layers` namesake: same arguments, same weight layout, same
outputs and gradients (proved by `kerasrnn verify` and the tests).

>>> import numpy as np
>>> from kerasrnn import layers
>>> lstm = layers.LSTM(8, return_sequences=True)
>>> lstm(np.zeros((2, 5, 3), "float32")).shape
(2, 5, 8)
"""

from kerasrnn.layers.gru import GRU, GRUCell
from kerasrnn.layers.lstm import LSTM, LSTMCell
from kerasrnn.layers.simple_rnn import SimpleRNN, SimpleRNNCell
from kerasrnn.layers.stack import RecurrentStack

__all__ = [
    "SimpleRNN", "SimpleRNNCell", "LSTM", "LSTMCell", "GRU", "GRUCell",
    "get_layer_class", "recommended_jit_compile", "CELL_TYPES", "RecurrentStack",
]

# Canonical cell-type names (and aliases) -> sequence layer class.
CELL_TYPES = {
    "simple_rnn": SimpleRNN,
    "rnn": SimpleRNN,
    "rnn_tanh": SimpleRNN,
    "rnn_relu": SimpleRNN,
    "lstm": LSTM,
    "gru": GRU,
}

# Training-step XLA setting measured fastest with `kerasrnn bench layers` on a
# 2-core CPU (b64/T100/128->256, medians of 10 interleaved rounds, 2026-11-23):
# LSTM (fused BPTT) 65 ms with XLA vs 91 ms without; GRU 58 ms without XLA vs
# 65 ms with; SimpleRNN 22 ms without vs 38 ms with. (Inference is a few ms
# faster with XLA for every cell: `keras.Model.compile(jit_compile=True)`.)
_JIT_FOR_TRAINING = {SimpleRNN: False, LSTM: True, GRU: False}


def get_layer_class(cell_type: str):
    """Return the sequence-layer class for a cell type name.

    Args:
        cell_type: one of ``"simple_rnn"`` (aliases ``"rnn"``, ``"rnn_tanh"``,
            ``"rnn_relu"``), ``"lstm"``, ``"gru"``; case-insensitive.

    >>> get_layer_class("lstm").__name__
    'LSTM'
    """
    key = str(cell_type).lower()
    if key not in CELL_TYPES:
        raise ValueError(
            f"Unknown cell type {cell_type!r}; expected one of {sorted(CELL_TYPES)}."
        )
    return CELL_TYPES[key]


def recommended_jit_compile(cell_type: str) -> bool:
    """The `jit_compile` value for `model.compile` that trains this cell fastest on CPU.

    Keras' default ``jit_compile="auto"`` turns XLA off on CPU-only machines;
    pass this instead.

    >>> recommended_jit_compile("lstm"), recommended_jit_compile("rnn")
    (True, False)
    """
    return _JIT_FOR_TRAINING[get_layer_class(cell_type)]
