"""LSTM: the long short-term memory recurrence, one step and whole sequence."""

from __future__ import annotations

import keras
from keras import activations, initializers, ops

from kerasrnn.layers.base import RecurrentCell, RecurrentLayer, activation_name, check_units
from kerasrnn.layers.fused import lstm_sequence

_CELL_ARGS = (
    "activation", "recurrent_activation", "use_bias", "kernel_initializer",
    "recurrent_initializer", "bias_initializer", "unit_forget_bias",
    "kernel_regularizer", "recurrent_regularizer", "bias_regularizer",
    "kernel_constraint", "recurrent_constraint", "bias_constraint",
    "dropout", "recurrent_dropout", "seed", "proj_size",
    "projection_initializer", "recurrent_weight_dropout", "implementation",
)


@keras.saving.register_keras_serializable(package="kerasrnn")
class LSTMCell(RecurrentCell):
    """One LSTM step, in the seeds' notation (W·[h_{t-1}, x_t] split into x and h parts):

        i_t = σ(W_i·[h_{t-1}, x_t] + b_i)            input gate
        f_t = σ(W_f·[h_{t-1}, x_t] + b_f)            forget gate
        C̃_t = tanh(W_C·[h_{t-1}, x_t] + b_C)         candidate cell
        o_t = σ(W_o·[h_{t-1}, x_t] + b_o)            output gate
        C_t = f_t ⊙ C_{t-1} + i_t ⊙ C̃_t
        h_t = o_t ⊙ tanh(C_t)                         (proj_size > 0: h_t = W_hr (o_t ⊙ tanh(C_t)))

    Layout of `keras.layers.LSTMCell`: ``kernel`` (in, 4u) and
    ``recurrent_kernel`` (u, 4u) hold the x and h halves of W in gate order
    i, f, C̃, o; ``bias`` (4u,). With ``proj_size=P`` (PyTorch's LSTM
    projection, Sak et al. 2014) a fourth weight ``projection_kernel`` (u, P)
    maps the output down, the recurrent kernel becomes (P, 4u) and the state
    is ``[h (P), C (u)]``. States are ``[h, C]`` like Keras.

    Args:
        units: Positive integer, size of C (and of h without projection).
        activation: Default ``"tanh"`` (for C̃ and the output).
        recurrent_activation: Default ``"sigmoid"`` (the gates σ).
        use_bias: Default True.
        kernel_initializer: Default ``"glorot_uniform"``.
        recurrent_initializer: Default ``"orthogonal"``.
        bias_initializer: Default ``"zeros"``.
        unit_forget_bias: Default True: b_f starts at 1 (Jozefowicz et al.).
        kernel_regularizer, recurrent_regularizer, bias_regularizer: Default None.
        kernel_constraint, recurrent_constraint, bias_constraint: Default None.
        dropout: Fraction of x_t dropped (one mask per batch). Default 0.
        recurrent_dropout: Fraction of h_{t-1} dropped before the recurrent matmul. Default 0.
        seed: Random seed for dropout. Default None.
        proj_size: Default 0 (no projection, exactly the Keras layout).
        projection_initializer: Default ``"glorot_uniform"``.
        recurrent_weight_dropout: Weight-drop rate on U (AWD-LSTM): in training each
            call uses ``U ⊙ M``, one mask M per call. Default 0.
        implementation: Keras' legacy mode, 0, 1 or 2 (default 2); recorded, and 1 draws
            per-gate dropout masks as Keras does.

    >>> rnn = keras.layers.RNN(LSTMCell(4), return_state=True)
    >>> out, h, c = rnn(np.zeros((2, 5, 3), "float32"))
    >>> tuple(out.shape), tuple(c.shape)
    ((2, 4), (2, 4))
    """

    gates = 4
    has_implementation = True

    def __init__(
        self,
        units,
        activation="tanh",
        recurrent_activation="sigmoid",
        use_bias=True,
        unit_forget_bias=True,
        proj_size=0,
        projection_initializer="glorot_uniform",
        **kwargs,
    ):
        super().__init__(units, activation=activation, use_bias=use_bias, **kwargs)
        self.recurrent_activation = activations.get(recurrent_activation)
        self.unit_forget_bias = bool(unit_forget_bias)
        if proj_size != 0:
            check_units("proj_size", proj_size)
        self.proj_size = int(proj_size)
        self.projection_initializer = initializers.get(projection_initializer)
        out = self.proj_size or self.units
        self.state_size = [out, self.units]
        self.output_size = out

    def build(self, input_shape):
        self.add_kernels(input_shape[-1], self.proj_size or self.units)
        initializer = None
        if self.unit_forget_bias:
            u = self.units

            def initializer(_, *args, **kwargs):
                return ops.concatenate(
                    [
                        self.bias_initializer((u,), *args, **kwargs),
                        initializers.get("ones")((u,), *args, **kwargs),
                        self.bias_initializer((2 * u,), *args, **kwargs),
                    ]
                )

        self.add_bias((4 * self.units,), initializer)
        if self.proj_size:
            self.projection_kernel = self.add_weight(
                shape=(self.units, self.proj_size),
                name="projection_kernel",
                initializer=self.projection_initializer,
            )

    def input_projection(self, inputs):
        z = self.gate_matmul(inputs, self.kernel)
        return z + self.bias if self.bias is not None else z

    def projected_step(self, x_proj, states, h_rec, recurrent_kernel):
        c_tm1 = states[1]
        z = x_proj + self.gate_matmul(h_rec, recurrent_kernel)
        z_i, z_f, z_c, z_o = ops.split(z, 4, axis=-1)
        i = self.recurrent_activation(z_i)
        f = self.recurrent_activation(z_f)
        c = f * c_tm1 + i * self.activation(z_c)
        o = self.recurrent_activation(z_o)
        h = o * self.activation(c)
        if self.proj_size:
            h = ops.matmul(h, self.projection_kernel)
        return h, [h, c]

    def fused_blocker(self):
        if self.proj_size:
            return "proj_size"
        if activation_name(self.activation) != "tanh" or activation_name(self.recurrent_activation) != "sigmoid":
            return "activation"
        return None

    def fused_sequence(self, x, initial_state, training, go_backwards=False, sequences=True, parts=1):
        bias = self.bias if self.bias is not None else ops.zeros((4 * self.units,), self.compute_dtype)
        return lstm_sequence(x, self.kernel, self.recurrent_weights(training), bias, *initial_state,
                             training=training, sequences=sequences, go_backwards=go_backwards, parts=parts)

    def get_config(self):
        config = {
            "recurrent_activation": activations.serialize(self.recurrent_activation),
            "unit_forget_bias": self.unit_forget_bias,
            "proj_size": self.proj_size,
            "projection_initializer": initializers.serialize(self.projection_initializer),
        }
        return {**super().get_config(), **config}


@keras.saving.register_keras_serializable(package="kerasrnn")
class LSTM(RecurrentLayer):
    """LSTM over a whole sequence; a drop-in `keras.layers.LSTM` (Hochreiter 1997).

    Runs `LSTMCell` (equations there) with Keras' RNN loop. Takes every
    argument of `keras.layers.LSTM` with the same defaults (units,
    activation="tanh", recurrent_activation="sigmoid", use_bias=True,
    initializers, unit_forget_bias=True, regularizers, constraints,
    dropout=0, recurrent_dropout=0, seed=None, return_sequences=False,
    return_state=False, go_backwards=False, stateful=False, unroll=False)
    plus ``proj_size=0``, ``recurrent_weight_dropout=0`` (weight-drop, see
    `LSTMCell`), ``implementation`` and ``use_cudnn`` (accepted and recorded)
    and ``fused=None`` (see `RecurrentLayer`). Weights are ``[kernel, recurrent_kernel, bias]``
    exactly as the built-in, so ``ours.set_weights(builtin.get_weights())``
    works both ways. With ``return_state=True`` returns ``output, h, C``.

    >>> layer = LSTM(4, return_state=True)
    >>> out, h, c = layer(np.zeros((2, 5, 3), "float32"))
    >>> tuple(out.shape)
    (2, 4)
    """

    cell_class = LSTMCell
    cell_name = "lstm_cell"
    cell_args = _CELL_ARGS
    has_use_cudnn = True
