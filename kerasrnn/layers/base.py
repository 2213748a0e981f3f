"""What every kerasrnn cell and sequence layer shares.

A *cell* computes one time step, ``(x_t, states_{t-1}) -> (y_t, states_t)``,
and can be run by any `keras.layers.RNN`. A *sequence layer* is a
`keras.layers.RNN` subclass that owns one cell and runs it over the whole
sequence, exactly like `keras.layers.LSTM` owns a `keras.layers.LSTMCell`.
Because the loop is Keras' own, masks, ``go_backwards``, ``stateful``,
``unroll``, ``initial_state``, ``return_state`` and `keras.layers.Bidirectional`
behave exactly as for the built-in layers.

Only `keras` (and `keras.ops`) is used here, never TensorFlow directly, so the
layers run on every Keras backend (TensorFlow, JAX, PyTorch, NumPy for
inference).
"""

from __future__ import annotations

import keras
from keras import activations, constraints, initializers, ops, regularizers

# Keras' own dropout-mask mixin. `keras.layers.RNN` recognises cells that
# inherit it and creates their dropout masks once per batch, outside the
# time loop (required for the same mask at every step, and for JAX).
from keras.src.layers.rnn.dropout_rnn_cell import DropoutRNNCell

__all__ = ["RecurrentCell", "RecurrentLayer", "DropoutRNNCell"]


def check_units(name: str, value) -> int:
    """Return `value` if it is a positive integer, else raise a ValueError echoing it."""
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"`{name}` must be a positive integer, got {name}={value!r}.")
    return value


def check_rate(name: str, value) -> float:
    """Return `value` as a float in [0, 1), else raise a ValueError echoing it."""
    try:
        rate = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"`{name}` must be a float in [0, 1), got {name}={value!r}.") from None
    if not 0.0 <= rate < 1.0:
        raise ValueError(f"`{name}` must be a float in [0, 1), got {name}={value!r}.")
    return rate


class RecurrentCell(keras.layers.Layer, DropoutRNNCell):
    """Base class of the cells: arguments, weights and dropout common to all three.

    Subclasses set `gates` (1 for SimpleRNN, 3 for GRU, 4 for LSTM), implement
    `call`, and may add arguments to `get_config`.
    """

    gates = 1

    def __init__(
        self,
        units,
        activation="tanh",
        use_bias=True,
        kernel_initializer="glorot_uniform",
        recurrent_initializer="orthogonal",
        bias_initializer="zeros",
        kernel_regularizer=None,
        recurrent_regularizer=None,
        bias_regularizer=None,
        kernel_constraint=None,
        recurrent_constraint=None,
        bias_constraint=None,
        dropout=0.0,
        recurrent_dropout=0.0,
        seed=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.units = check_units("units", units)
        self.activation = activations.get(activation)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.recurrent_initializer = initializers.get(recurrent_initializer)
        self.bias_initializer = initializers.get(bias_initializer)
        self.kernel_regularizer = regularizers.get(kernel_regularizer)
        self.recurrent_regularizer = regularizers.get(recurrent_regularizer)
        self.bias_regularizer = regularizers.get(bias_regularizer)
        self.kernel_constraint = constraints.get(kernel_constraint)
        self.recurrent_constraint = constraints.get(recurrent_constraint)
        self.bias_constraint = constraints.get(bias_constraint)
        self.dropout = check_rate("dropout", dropout)
        self.recurrent_dropout = check_rate("recurrent_dropout", recurrent_dropout)
        if self.recurrent_dropout and self.gates > 1:
            # As Keras' LSTMCell/GRUCell (their "implementation 1"): with recurrent
            # dropout every gate gets its own input and recurrent mask.
            self.dropout_mask_count = self.gates
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed=seed)

    # -- weights ---------------------------------------------------------
    def add_kernels(self, input_dim: int, recurrent_dim: int | None = None):
        """Create `kernel` (in, G*u) and `recurrent_kernel` (recurrent_dim, G*u).

        Same names, shapes and creation order as the built-in Keras cells, so
        `get_weights()`/`set_weights()` lists line up one to one.
        """
        width = self.gates * self.units
        self.kernel = self.add_weight(
            shape=(input_dim, width),
            name="kernel",
            initializer=self.kernel_initializer,
            regularizer=self.kernel_regularizer,
            constraint=self.kernel_constraint,
        )
        self.recurrent_kernel = self.add_weight(
            shape=(recurrent_dim or self.units, width),
            name="recurrent_kernel",
            initializer=self.recurrent_initializer,
            regularizer=self.recurrent_regularizer,
            constraint=self.recurrent_constraint,
        )

    def add_bias(self, shape, initializer=None):
        """Create `bias` of `shape` if `use_bias`, else set it to None."""
        if not self.use_bias:
            self.bias = None
            return
        self.bias = self.add_weight(
            shape=shape,
            name="bias",
            initializer=initializer or self.bias_initializer,
            regularizer=self.bias_regularizer,
            constraint=self.bias_constraint,
        )

    # -- dropout ---------------------------------------------------------
    def drop(self, inputs, h_tm1, training):
        """Apply the cached per-batch dropout masks (training only).

        Returns ``(inputs, h_tm1_for_matmul)``: the recurrent mask only feeds
        the recurrent matmul; the carried state itself is never masked. With
        per-gate masks (`dropout_mask_count`) both are lists, one per gate:
        feed them to `gate_matmul`.
        """
        count = getattr(self, "dropout_mask_count", None)
        if count and training:
            xs, hs = [inputs] * count, [h_tm1] * count
            if training and self.dropout > 0.0:
                xs = [inputs * m for m in self.get_dropout_mask(inputs)]
            if training and self.recurrent_dropout > 0.0:
                hs = [h_tm1 * m for m in self.get_recurrent_dropout_mask(h_tm1)]
            return xs, hs
        if training and self.dropout > 0.0:
            inputs = inputs * self.get_dropout_mask(inputs)
        if training and self.recurrent_dropout > 0.0:
            h_tm1 = h_tm1 * self.get_recurrent_dropout_mask(h_tm1)
        return inputs, h_tm1

    @staticmethod
    def gate_matmul(x, kernel):
        """``x @ kernel``; for a list of per-gate inputs, ``x_g @ kernel_g`` concatenated."""
        if not isinstance(x, list):
            return ops.matmul(x, kernel)
        width = kernel.shape[-1] // len(x)
        return ops.concatenate(
            [ops.matmul(x_g, kernel[:, g * width:(g + 1) * width]) for g, x_g in enumerate(x)],
            axis=-1,
        )

    # -- state -----------------------------------------------------------
    def get_initial_state(self, batch_size=None):
        sizes = self.state_size if isinstance(self.state_size, (list, tuple)) else [self.state_size]
        return [ops.zeros((batch_size, d), dtype=self.compute_dtype) for d in sizes]

    def get_config(self):
        config = {
            "units": self.units,
            "activation": activations.serialize(self.activation),
            "use_bias": self.use_bias,
            "kernel_initializer": initializers.serialize(self.kernel_initializer),
            "recurrent_initializer": initializers.serialize(self.recurrent_initializer),
            "bias_initializer": initializers.serialize(self.bias_initializer),
            "kernel_regularizer": regularizers.serialize(self.kernel_regularizer),
            "recurrent_regularizer": regularizers.serialize(self.recurrent_regularizer),
            "bias_regularizer": regularizers.serialize(self.bias_regularizer),
            "kernel_constraint": constraints.serialize(self.kernel_constraint),
            "recurrent_constraint": constraints.serialize(self.recurrent_constraint),
            "bias_constraint": constraints.serialize(self.bias_constraint),
            "dropout": self.dropout,
            "recurrent_dropout": self.recurrent_dropout,
            "seed": self.seed,
        }
        return {**super().get_config(), **config}

    @classmethod
    def from_config(cls, config):
        return cls(**config)


class RecurrentLayer(keras.layers.RNN):
    """Base class of the sequence layers: a `keras.layers.RNN` that owns its cell.

    Subclasses set `cell_class` and `cell_name` (the built-in's cell name, e.g.
    ``"lstm_cell"``, so weight paths match Keras) and list in `cell_args` the
    constructor arguments that belong to the cell. Every cell argument is also
    readable as a layer attribute (``layer.units``, ``layer.dropout``...).
    """

    cell_class = RecurrentCell
    cell_name = "cell"
    cell_args: tuple[str, ...] = ()

    def __init__(
        self,
        units,
        return_sequences=False,
        return_state=False,
        go_backwards=False,
        stateful=False,
        unroll=False,
        activity_regularizer=None,
        **kwargs,
    ):
        cell_kwargs = {name: kwargs.pop(name) for name in self.cell_args if name in kwargs}
        cell = self.cell_class(
            units,
            dtype=kwargs.get("dtype"),
            trainable=kwargs.get("trainable", True),
            name=self.cell_name,
            **cell_kwargs,
        )
        super().__init__(
            cell,
            return_sequences=return_sequences,
            return_state=return_state,
            go_backwards=go_backwards,
            stateful=stateful,
            unroll=unroll,
            activity_regularizer=activity_regularizer,
            **kwargs,
        )
        self.input_spec = keras.layers.InputSpec(ndim=3)

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        # Every cell argument is readable on the layer, as on keras.layers.LSTM.
        for name in ("units", *cls.cell_args):
            if name not in cls.__dict__:
                setattr(cls, name, property(lambda self, _n=name: getattr(self.cell, _n)))

    #: Train with the fused loop and hand-written BPTT (`kerasrnn.layers.fused`)
    #: when it applies (training, no mask, no dropout, default activations,
    #: TensorFlow backend). On by default only where `kerasrnn bench layers`
    #: measured it faster than Keras' loop in the best XLA setting: LSTM
    #: (b64/T100/128->256, 2-core CPU: 65 ms vs 84 ms for keras.layers.LSTM with
    #: XLA, 74 ms for PyTorch). For GRU (110 vs 103 ms in an earlier run) and
    #: SimpleRNN (40 vs 38 ms) Keras' loop without XLA stays faster, so there it
    #: is opt-in (``layer.fused = True``); outputs and gradients are identical
    #: either way (to float32 round-off).
    fused = False

    def inner_loop(self, sequences, initial_state, mask, training=False):
        # Only training steps take the fused path: inference gains nothing from it
        # (measured) and Keras' loop stores nothing for a backward pass.
        if self.fused and training:
            from kerasrnn.layers.fused import fused_sequence

            result = fused_sequence(self, sequences, initial_state, mask, training)
            if result is not None:
                return result
        return super().inner_loop(sequences, initial_state, mask, training=training)

    def call(self, sequences, initial_state=None, mask=None, training=False):
        return super().call(sequences, mask=mask, training=training, initial_state=initial_state)

    def get_config(self):
        cell_config = self.cell.get_config()
        config = {"units": self.cell.units}
        config.update({name: cell_config[name] for name in self.cell_args if name in cell_config})
        config["activity_regularizer"] = regularizers.serialize(self.activity_regularizer)
        base_config = super().get_config()
        del base_config["cell"]
        return {**base_config, **config}

    @classmethod
    def from_config(cls, config):
        return cls(**config)
