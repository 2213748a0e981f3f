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

import contextlib

import keras
from keras import activations, constraints, initializers, ops, regularizers

# Keras' own dropout-mask mixin (private in Keras 3; see compat). `keras.layers.RNN`
# recognises cells that inherit it and creates their dropout masks once per batch,
# outside the time loop (required for the same mask at every step, and for JAX).
from kerasrnn.layers.compat import DropoutRNNCell
from kerasrnn.layers.fused import batch_parts

__all__ = ["RecurrentCell", "RecurrentLayer", "PathRecord", "DropoutRNNCell", "activation_name",
           "FUSED_ACTIVATIONS", "keras_loop"]

#: The activation *functions* the fused loops implement, by identity: a user function
#: that happens to be called ``tanh`` (e.g. a scaled tanh) is not one of them, so it
#: runs Keras' loop with the user's function.
FUSED_ACTIVATIONS = {
    activations.tanh: "tanh",
    activations.sigmoid: "sigmoid",
    activations.relu: "relu",
    activations.linear: "linear",
}


def activation_name(fn):
    """``"tanh"``/``"sigmoid"``/``"relu"``/``"linear"`` if `fn` *is* that Keras activation, else None.

    >>> activation_name(keras.activations.get("tanh")), activation_name(lambda x: x)
    ('tanh', None)
    """
    try:
        return FUSED_ACTIVATIONS.get(fn)
    except TypeError:  # unhashable callable
        return None


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


def check_implementation(value) -> int:
    """Return Keras' legacy ``implementation`` mode (0, 1 or 2), else raise a ValueError echoing it.

    As in Keras 3, only 1 changes anything (per-gate dropout masks); 0 is a Keras 2
    legacy value that old configs still carry.
    """
    if isinstance(value, bool) or value not in (0, 1, 2):
        raise ValueError(f"`implementation` must be 0, 1 or 2, got implementation={value!r}.")
    return int(value)


class RecurrentCell(keras.layers.Layer, DropoutRNNCell):
    """Base class of the cells: arguments, weights and dropout common to all three.

    Subclasses set `gates` (1 for SimpleRNN, 3 for GRU, 4 for LSTM), implement
    one step as two halves, `input_projection` (the x part of every gate) and
    `projected_step` (the rest); `call` drops, projects and steps. They may add
    arguments to `get_config`, and provide the fused training path through
    `fused_blocker` and `fused_sequence`.

    Besides Keras' arguments every cell takes ``recurrent_weight_dropout``
    (default 0): *weight-drop*, DropConnect on the recurrent kernel as in
    AWD-LSTM (Merity et al. 2017; Wan et al. 2013). In training, one mask
    ``M ~ Bernoulli(1 − p) / (1 − p)`` of U's shape is drawn per layer call
    (per batch) and every step uses ``U ⊙ M``; in inference U is used as is.
    LSTM and GRU cells also accept Keras' legacy ``implementation`` (0, 1 or 2):
    it is recorded, and ``implementation=1`` draws one dropout mask per gate
    exactly as Keras does (so the same seed gives the same masks).
    """

    gates = 1
    #: Keras' LSTMCell/GRUCell take ``implementation``; SimpleRNNCell does not.
    has_implementation = False

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
        recurrent_weight_dropout=0.0,
        **kwargs,
    ):
        implementation = kwargs.pop("implementation", 2) if self.has_implementation else 2
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
        self.recurrent_weight_dropout = check_rate("recurrent_weight_dropout", recurrent_weight_dropout)
        self.implementation = check_implementation(implementation)
        if self.recurrent_dropout and self.gates > 1:
            # As Keras' LSTMCell/GRUCell: recurrent dropout forces implementation 1.
            self.implementation = 1
        if self.implementation == 1 and self.gates > 1:
            # Keras' implementation 1: every gate gets its own input and recurrent mask.
            self.dropout_mask_count = self.gates
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed=seed)
        self._recurrent_weight_mask = None

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

    # -- one step, in two halves ------------------------------------------
    def call(self, inputs, states, training=False):
        """One step: dropout masks (training), then ``projected_step(input_projection(x_t))``."""
        h_tm1 = states[0] if isinstance(states, (list, tuple)) else states
        inputs, h_rec = self.drop(inputs, h_tm1, training)
        return self.projected_step(self.input_projection(inputs), states, h_rec, self.recurrent_weights(training))

    def input_projection(self, inputs):
        """The x part of every gate, ``x_t·W_x + b_x`` (gates concatenated, Keras' order).

        Rows are independent of the state, so a caller may project a whole
        sequence in one matmul before its step loop (`kerasrnn.export.tflite`
        does). `inputs` may be a list of per-gate inputs (`drop`).
        """
        raise NotImplementedError

    def projected_step(self, x_proj, states, h_rec, recurrent_kernel):
        """The rest of the step from ``x_proj = input_projection(x_t)``: ``(output, new_states)``.

        `h_rec` is h_{t-1} as the recurrent matmul sees it (dropped in training,
        a per-gate list with `dropout_mask_count`), `recurrent_kernel` is U
        (`recurrent_weights`); inference passes h_{t-1} and U themselves.
        """
        raise NotImplementedError

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

    # -- weight-drop -------------------------------------------------------
    def recurrent_weight_mask(self):
        """The cached weight-drop mask of U for this call (None when the rate is 0).

        Drawn once, scaled by ``1 / (1 - recurrent_weight_dropout)``, reused at every
        step until `reset_recurrent_dropout_mask` (which `keras.layers.RNN` calls after
        each sequence).
        """
        if self.recurrent_weight_dropout > 0.0 and self._recurrent_weight_mask is None:
            self._recurrent_weight_mask = keras.random.dropout(
                ops.ones_like(self.recurrent_kernel),
                rate=self.recurrent_weight_dropout,
                seed=self.seed_generator,
            )
        return self._recurrent_weight_mask

    def recurrent_weights(self, training):
        """U for this step: ``U ⊙ M`` in training with weight-drop, else U itself."""
        if training and self.recurrent_weight_dropout > 0.0:
            return self.recurrent_kernel * self.recurrent_weight_mask()
        return self.recurrent_kernel

    def get_recurrent_dropout_mask(self, step_input):
        # `keras.layers.RNN` calls this once before the time loop: draw the weight-drop
        # mask there too, so the loop body only reads it (one mask per call).
        self.recurrent_weight_mask()
        return super().get_recurrent_dropout_mask(step_input)

    def reset_recurrent_dropout_mask(self):
        super().reset_recurrent_dropout_mask()
        self._recurrent_weight_mask = None

    # -- fused training path ------------------------------------------------
    def fused_blocker(self):
        """Why this cell's configuration cannot take the fused path, or None if it can."""
        return "no fused path for this cell"

    def fused_sequence(self, x, initial_state, training, go_backwards=False, sequences=True, parts=1):
        """Run the whole batch-major sequence `x` (B, T, I) in the fused loop (`kerasrnn.layers.fused`).

        Returns ``[outputs (B, T, H) in processing order, or None when not `sequences`
        and not `training`, *final states]``; the batch runs as `parts` independent
        loops. Only called when `fused_blocker` returned None.
        """
        raise NotImplementedError

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
            "recurrent_weight_dropout": self.recurrent_weight_dropout,
        }
        if self.has_implementation:
            config["implementation"] = self.implementation
        return {**super().get_config(), **config}

    @classmethod
    def from_config(cls, config):
        return cls(**config)


class PathRecord:
    """Which loop a sequence layer ran: the fused BPTT path or Keras' generic loop.

    A layer appends one entry each time its time loop is *built*: every eager
    call, and every trace of a compiled function (a TensorFlow graph function or
    ``model.fit``/``train_on_batch`` step runs the traced loop again without
    Python, so it adds no entry). Tests read it to prove the fused path ran.

    Attributes:
        last: ``"fused"`` or ``"loop"`` for the latest build, None before any.
        reason: why the latest build ran Keras' loop (None when fused), e.g.
            ``"fused=False"``, ``"default (training)"`` (the class's choice for
            ``fused=None``), ``"mask"``, ``"dropout"``, ``"activation"``.
        parts: how many independent loops the latest fused build ran the batch
            as (`kerasrnn.layers.fused.batch_parts`); 1 for Keras' loop.
        counts: ``{"fused": n, "loop": m}`` over the layer's life.

    >>> record = PathRecord(); record.add("loop", "mask"); record.last, record.reason
    ('loop', 'mask')
    """

    def __init__(self):
        self.last = None
        self.reason = None
        self.parts = 1
        self.counts = {"fused": 0, "loop": 0}

    def add(self, path: str, reason: str | None = None, parts: int = 1) -> None:
        self.last, self.reason, self.parts = path, reason, parts
        self.counts[path] += 1

    def __repr__(self):
        return f"PathRecord(last={self.last!r}, reason={self.reason!r}, parts={self.parts}, counts={self.counts})"


class RecurrentLayer(keras.layers.RNN):
    """Base class of the sequence layers: a `keras.layers.RNN` that owns its cell.

    Subclasses set `cell_class` and `cell_name` (the built-in's cell name, e.g.
    ``"lstm_cell"``, so weight paths match Keras) and list in `cell_args` the
    constructor arguments that belong to the cell. Every cell argument is also
    readable as a layer attribute (``layer.units``, ``layer.dropout``...).

    Arguments every sequence layer adds to Keras' (all kept in `get_config`):

    - ``fused``: run the fused loop (`kerasrnn.layers.fused`: XLA-compiled
      whatever the model's ``jit_compile``, hand-written BPTT in training) when
      it applies: no mask, no unroll, no dropout in training, Keras' own
      activations (compared by identity), no mixed precision, the TensorFlow
      backend. True or False force it (for training and inference); the default
      None follows the class's measured choice, `fused_defaults` =
      ``(training, inference)``: ``(True, True)`` for all three cells (on 2
      cores, with the batch run as two concurrent loops, `fused.batch_parts`,
      the fused loop measured faster than Keras' loop in both modes at every
      size tried). Outputs and gradients are identical either way (to float32
      round-off). `path_record` says which loop ran, why, and in how many
      parts; ``fused`` is kept in `get_config` as given.
    - ``use_cudnn`` (LSTM and GRU, as Keras): accepted and recorded so a Keras
      config loads unchanged; kerasrnn has no cuDNN kernel, so ``"auto"`` and
      False run kerasrnn's loops, and True raises (as Keras does when cuDNN cannot
      be used).
    """

    cell_class = RecurrentCell
    cell_name = "cell"
    cell_args: tuple[str, ...] = ()
    #: ``(training, inference)``: whether ``fused=None`` runs the fused loop (see above).
    fused_defaults = (True, True)
    #: Keras' LSTM and GRU take ``use_cudnn``; SimpleRNN does not.
    has_use_cudnn = False

    def __init__(
        self,
        units,
        return_sequences=False,
        return_state=False,
        go_backwards=False,
        stateful=False,
        unroll=False,
        activity_regularizer=None,
        fused=None,
        **kwargs,
    ):
        use_cudnn = kwargs.pop("use_cudnn", "auto") if self.has_use_cudnn else "auto"
        if use_cudnn not in ("auto", True, False):
            raise ValueError(f"`use_cudnn` must be 'auto', True or False, got use_cudnn={use_cudnn!r}.")
        if fused is not None and not isinstance(fused, bool):
            raise ValueError(f"`fused` must be True, False or None, got fused={fused!r}.")
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
        self.use_cudnn = use_cudnn
        self.fused = fused
        self.path_record = PathRecord()

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        # Every cell argument is readable on the layer, as on keras.layers.LSTM.
        for name in ("units", *cls.cell_args):
            if name not in cls.__dict__:
                setattr(cls, name, property(lambda self, _n=name: getattr(self.cell, _n)))

    @classmethod
    def fused_choice(cls, fused, training: bool) -> bool:
        """Whether a ``fused`` setting (True, False or None = `fused_defaults`) asks for the fused loop."""
        if fused is None:
            return cls.fused_defaults[0 if training else 1]
        return fused

    def wants_fused(self, training: bool) -> bool:
        """Whether this layer's ``fused`` setting asks for the fused loop in this mode."""
        return self.fused_choice(self.fused, training)

    def fused_blocker(self, sequences, mask, training):
        """Why this call runs Keras' loop instead of the fused one, or None to run fused."""
        cell = self.cell
        if not self.wants_fused(training):
            return "fused=False" if self.fused is False else f"default ({'training' if training else 'inference'})"
        if keras.backend.backend() != "tensorflow":
            return "backend"
        if mask is not None:
            return "mask"
        if self.unroll:
            return "unroll"
        if training and (cell.dropout > 0 or cell.recurrent_dropout > 0):
            return "dropout"
        if cell.compute_dtype != cell.variable_dtype:
            return "mixed precision"
        if sequences.shape[1] is not None and sequences.shape[1] < 1:
            return "no time steps"
        return cell.fused_blocker()

    def inner_loop(self, sequences, initial_state, mask, training=False):
        if self.use_cudnn is True:
            raise ValueError(
                "use_cudnn=True was given, but kerasrnn layers have no cuDNN kernel; "
                "pass use_cudnn='auto' (the default) to run kerasrnn's own loop."
            )
        training = bool(training)
        reason = self.fused_blocker(sequences, mask, training)
        if reason is not None:
            self.path_record.add("loop", reason)
            return super().inner_loop(sequences, initial_state, mask, training=training)
        parts = batch_parts(sequences)
        outputs, *states = self.cell.fused_sequence(
            sequences, list(initial_state), training, go_backwards=self.go_backwards,
            sequences=self.return_sequences, parts=parts,
        )
        self.path_record.add("fused", parts=parts)
        last_output = states[0]
        if outputs is None:  # as Keras' loop without return_all_outputs
            outputs = last_output[:, None, :]
        return last_output, outputs, states

    def call(self, sequences, initial_state=None, mask=None, training=False):
        return super().call(sequences, mask=mask, training=training, initial_state=initial_state)

    def get_config(self):
        cell_config = self.cell.get_config()
        config = {"units": self.cell.units}
        config.update({name: cell_config[name] for name in self.cell_args if name in cell_config})
        config["activity_regularizer"] = regularizers.serialize(self.activity_regularizer)
        config["fused"] = self.fused
        if self.has_use_cudnn:
            config["use_cudnn"] = self.use_cudnn
        base_config = super().get_config()
        del base_config["cell"]
        return {**base_config, **config}

    @classmethod
    def from_config(cls, config):
        return cls(**config)


def recurrent_layers(model) -> list:
    """Every kerasrnn sequence layer inside `model`, nested ones (`Bidirectional`, sub-models) included."""
    return [layer for layer in model._flatten_layers() if isinstance(layer, RecurrentLayer)]


@contextlib.contextmanager
def keras_loop(model):
    """Within the block, every kerasrnn sequence layer in `model` runs Keras' own loop.

    For graphs meant to leave the process (SavedModel, TFLite): the fused loop is an
    XLA-compiled function, while Keras' loop is plain TensorFlow that every runtime and
    converter understands. Each layer's ``fused`` setting is restored on exit.

    >>> from kerasrnn.layers import LSTM                                  # doctest: +SKIP
    >>> model = keras.Sequential([keras.Input((5, 3)), LSTM(4)])          # doctest: +SKIP
    >>> with keras_loop(model):                                           # doctest: +SKIP
    ...     _ = model(np.zeros((1, 5, 3)))  # Keras' loop: model.layers[0].path_record.last == "loop"
    """
    layers = recurrent_layers(model)
    saved = [layer.fused for layer in layers]
    for layer in layers:
        layer.fused = False
    try:
        yield model
    finally:
        for layer, fused in zip(layers, saved):
            layer.fused = fused
