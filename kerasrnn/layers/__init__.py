"""kerasrnn.layers: SimpleRNN, LSTM and GRU written with `keras.ops` only.

Module map (arrows = "imports"): ``compat`` (the private Keras imports) <-
``fused`` (whole-sequence loops with hand-written BPTT, no layer imports) <-
``base`` (cell/layer base classes, the fused-path dispatch and `PathRecord`) <-
``simple_rnn``, ``lstm``, ``gru`` (each cell owns its step and its fused call) <-
``stack`` (`RecurrentStack`) <- this package. Cell names, aliases, gate counts
and XLA settings are in `kerasrnn.cells` (re-exported here).

Each recurrence has a Cell (one step, usable in `keras.layers.RNN`) and a
sequence layer (a `keras.layers.RNN` subclass) that is a drop-in replacement
for its `keras.layers` namesake: same arguments, same weight layout, same
outputs and gradients (proved by `kerasrnn verify` and the tests).

>>> import numpy as np
>>> from kerasrnn import layers
>>> lstm = layers.LSTM(8, return_sequences=True)
>>> tuple(lstm(np.zeros((2, 5, 3), "float32")).shape)
(2, 5, 8)
"""

from kerasrnn.cells import (
    CELL_SPECS,
    CELL_TYPES,
    canonical_name,
    gate_count,
    get_layer_class,
    get_spec,
    recommended_jit_compile,
)
from kerasrnn.layers.base import PathRecord, keras_loop
from kerasrnn.layers.gru import GRU, GRUCell
from kerasrnn.layers.lstm import LSTM, LSTMCell
from kerasrnn.layers.simple_rnn import ReluSimpleRNN, SimpleRNN, SimpleRNNCell
from kerasrnn.layers.stack import RecurrentStack

__all__ = [
    "SimpleRNN", "SimpleRNNCell", "ReluSimpleRNN", "LSTM", "LSTMCell", "GRU", "GRUCell",
    "RecurrentStack", "PathRecord", "keras_loop", "CELL_SPECS", "CELL_TYPES", "canonical_name", "gate_count",
    "get_layer_class", "get_spec", "recommended_jit_compile",
]
