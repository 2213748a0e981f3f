"""SimpleRNN: the plain (Elman) recurrence, one step and whole sequence."""

from __future__ import annotations

import keras
from keras import ops

from kerasrnn.layers.base import RecurrentCell, RecurrentLayer, activation_name
from kerasrnn.layers.fused import SIMPLE_RNN_ACTIVATIONS, simple_rnn_sequence

_CELL_ARGS = (
    "activation", "use_bias", "kernel_initializer", "recurrent_initializer",
    "bias_initializer", "kernel_regularizer", "recurrent_regularizer",
    "bias_regularizer", "kernel_constraint", "recurrent_constraint",
    "bias_constraint", "dropout", "recurrent_dropout", "seed",
    "recurrent_weight_dropout",
)


@keras.saving.register_keras_serializable(package="kerasrnn")
class SimpleRNNCell(RecurrentCell):
    """One step of the fully-connected recurrence (seeds 000-004):

        h_t = tanh(W_xh x_t + W_hh h_{t-1} + b_h)

    with ``W_xh = kernel`` (in, units), ``W_hh = recurrent_kernel`` (units, units),
    ``b_h = bias`` (units,) — the layout of `keras.layers.SimpleRNNCell`. The
    output is the new state, ``y_t = h_t``. ``activation="relu"`` gives
    PyTorch's ``nonlinearity="relu"``.

    Args:
        units: Positive integer, size of h.
        activation: Default ``"tanh"``; ``"relu"`` or None (linear) also work.
        use_bias: Default True.
        kernel_initializer: Default ``"glorot_uniform"``.
        recurrent_initializer: Default ``"orthogonal"``.
        bias_initializer: Default ``"zeros"``.
        kernel_regularizer, recurrent_regularizer, bias_regularizer: Default None.
        kernel_constraint, recurrent_constraint, bias_constraint: Default None.
        dropout: Fraction of the inputs dropped (same mask at every step). Default 0.
        recurrent_dropout: Fraction of h_{t-1} dropped before W_hh. Default 0.
        seed: Random seed for dropout. Default None.
        recurrent_weight_dropout: Weight-drop rate on W_hh (AWD-LSTM): in training each
            call uses ``W_hh ⊙ M``, one mask M per call. Default 0.

    >>> rnn = keras.layers.RNN(SimpleRNNCell(4))
    >>> tuple(rnn(np.zeros((2, 5, 3), "float32")).shape)
    (2, 4)
    """

    gates = 1

    def __init__(self, units, activation="tanh", use_bias=True, **kwargs):
        super().__init__(units, activation=activation, use_bias=use_bias, **kwargs)
        self.state_size = self.units
        self.output_size = self.units

    def build(self, input_shape):
        self.add_kernels(input_shape[-1])
        self.add_bias((self.units,))

    def input_projection(self, inputs):
        z = ops.matmul(inputs, self.kernel)
        return z + self.bias if self.bias is not None else z

    def projected_step(self, x_proj, states, h_rec, recurrent_kernel):
        h = self.activation(x_proj + ops.matmul(h_rec, recurrent_kernel))
        return h, ([h] if isinstance(states, (list, tuple)) else h)

    def fused_blocker(self):
        if activation_name(self.activation) not in SIMPLE_RNN_ACTIVATIONS:
            return "activation"
        return None

    def fused_sequence(self, x, initial_state, training, go_backwards=False, sequences=True, parts=1):
        bias = self.bias if self.bias is not None else ops.zeros((self.units,), self.compute_dtype)
        return simple_rnn_sequence(
            x, self.kernel, self.recurrent_weights(training), bias, initial_state[0],
            activation=activation_name(self.activation), training=training, sequences=sequences,
            go_backwards=go_backwards, parts=parts,
        )


@keras.saving.register_keras_serializable(package="kerasrnn")
class SimpleRNN(RecurrentLayer):
    """Fully-connected RNN over a whole sequence; a drop-in `keras.layers.SimpleRNN`.

    Runs `SimpleRNNCell` (``h_t = tanh(W_xh x_t + W_hh h_{t-1} + b_h)``) with
    Keras' RNN loop. Takes every argument of `keras.layers.SimpleRNN` with the
    same defaults (see `SimpleRNNCell` for the cell's), plus
    ``return_sequences=False``, ``return_state=False``, ``go_backwards=False``,
    ``stateful=False``, ``unroll=False``, and ``recurrent_weight_dropout=0``
    (weight-drop, see `SimpleRNNCell`) and ``fused=None`` (see `RecurrentLayer`:
    the fused loop by default). Weights are
    ``[kernel, recurrent_kernel, bias]`` in that order, exactly as the built-in.

    >>> layer = SimpleRNN(4, return_sequences=True)
    >>> tuple(layer(np.zeros((2, 5, 3), "float32")).shape)
    (2, 5, 4)
    """

    cell_class = SimpleRNNCell
    cell_name = "simple_rnn_cell"
    cell_args = _CELL_ARGS
    # Measured on 2 cores, Sequential + compile defaults: with the batch split into two
    # loops (fused.batch_parts) the fused loop trains and infers faster than Keras' loop at
    # every size measured (B64 T100 128->256: train 40 vs 41 ms, infer 12 vs 21 ms; smaller
    # sizes 1.7-3.5x in training).
    fused_defaults = (True, True)


@keras.saving.register_keras_serializable(package="kerasrnn")
class ReluSimpleRNN(SimpleRNN):
    """A `SimpleRNN` whose default activation is relu: ``h_t = relu(W_xh x_t + W_hh h_{t-1} + b_h)``.

    The layer class of the cell type ``"rnn_relu"`` (PyTorch's
    ``nn.RNN(nonlinearity="relu")``) in `kerasrnn.cells`. Every other
    argument and default is `SimpleRNN`'s; an explicit ``activation`` still wins.

    >>> ReluSimpleRNN(4).cell.activation is keras.activations.relu
    True
    """

    def __init__(self, units, activation="relu", **kwargs):
        super().__init__(units, activation=activation, **kwargs)
