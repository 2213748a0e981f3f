"""RecurrentStack: the feature set of PyTorch's ``nn.RNN/LSTM/GRU`` as one Keras layer.

Stacking with dropout between layers, bidirectional layers and the LSTM
projection, built from `kerasrnn.layers` sequence layers, with PyTorch's final
state layout ``(num_layers * num_directions, batch, H)``. Input is always
batch-major ``(batch, time, features)`` (PyTorch's ``batch_first=True``).
"""

from __future__ import annotations

import keras
from keras import initializers, ops

from kerasrnn.cells import CELL_SPECS, get_spec
from kerasrnn.layers.base import check_rate, check_units

__all__ = ["RecurrentStack", "MODES"]

#: The stack's modes are PyTorch's (``rnn_tanh``, ``rnn_relu``, ``lstm``, ``gru``);
#: any name or alias of `kerasrnn.cells` is accepted and stored as one of them.
MODES = tuple(spec.torch_mode.lower() for spec in CELL_SPECS.values())


@keras.saving.register_keras_serializable(package="kerasrnn")
class RecurrentStack(keras.layers.Layer):
    """A multi-layer, optionally bidirectional RNN/LSTM/GRU with PyTorch's interface.

    The Keras counterpart of ``torch.nn.RNN`` / ``nn.LSTM`` / ``nn.GRU``.
    Layer ``k`` runs a `kerasrnn.layers` sequence layer (equations in
    `SimpleRNNCell`, `LSTMCell`, `GRUCell`; GRU uses ``reset_after=True``,
    which is PyTorch's GRU) over the output of layer ``k-1``; with
    ``bidirectional=True`` a second layer reads the sequence backwards and its
    outputs, put back in time order, are concatenated on the feature axis
    (forward first). Dropout is applied to the outputs of every layer except
    the last, in training only, as in PyTorch.

    ``call(inputs, initial_state=None, mask=None, training=None)``:

    - ``inputs``: ``(batch, time, features)``, always batch-major.
    - ``initial_state``: PyTorch layout, ``h0`` for rnn/gru and ``(h0, c0)``
      for lstm, with ``h0`` ``(num_layers * D, batch, proj_size or units)``
      and ``c0`` ``(num_layers * D, batch, units)``, ``D = 2 if bidirectional
      else 1``. Default zeros.
    - ``mask``: optional ``(batch, time)`` boolean mask (e.g. from
      ``Embedding(mask_zero=True)``); masked steps are skipped (state carried),
      so the final states equal PyTorch's for packed sequences.

    Returns ``(outputs, h_n)`` for rnn/gru and ``(outputs, (h_n, c_n))`` for
    lstm. ``outputs`` is ``(batch, time, D * H_out)`` with ``H_out =
    proj_size or units`` (``return_sequences=False``: ``(batch, D * H_out)``,
    the last layer's final ``h`` of each direction). ``h_n``/``c_n`` have the
    shapes of ``h0``/``c0``; index ``layer * D + direction`` (direction 1 is
    the backward one), exactly PyTorch's ordering.

    Args:
        mode: ``"rnn_tanh"``, ``"rnn_relu"``, ``"lstm"`` or ``"gru"`` (or any
            alias of `kerasrnn.cells`, e.g. ``"simple_rnn"``).
        units: Positive integer, hidden size ``H`` (PyTorch ``hidden_size``).
        num_layers: Number of stacked layers. Default 1.
        bidirectional: Default False.
        dropout: Dropout rate in [0, 1) on the outputs of each layer but the
            last, training only. Default 0.
        proj_size: LSTM only: size of the projected ``h``; ``0 < proj_size <
            units`` like PyTorch, or 0 (default) for none.
        use_bias: Default True (PyTorch ``bias``).
        return_sequences: Default True: ``outputs`` holds every step.
        seed: Random seed of the inter-layer dropout. Default None.
        kernel_initializer: Default ``"glorot_uniform"``.
        recurrent_initializer: Default ``"orthogonal"``.
        bias_initializer: Default ``"zeros"``.
        **kwargs: `keras.layers.Layer` arguments (``name``, ``dtype``...).

    >>> stack = RecurrentStack("lstm", 8, num_layers=2, bidirectional=True, proj_size=4)
    >>> outputs, (h_n, c_n) = stack(np.zeros((3, 5, 10), "float32"))
    >>> tuple(outputs.shape), tuple(h_n.shape), tuple(c_n.shape)
    ((3, 5, 8), (4, 3, 4), (4, 3, 8))
    """

    def __init__(
        self,
        mode,
        units,
        num_layers=1,
        bidirectional=False,
        dropout=0.0,
        proj_size=0,
        use_bias=True,
        return_sequences=True,
        seed=None,
        kernel_initializer="glorot_uniform",
        recurrent_initializer="orthogonal",
        bias_initializer="zeros",
        **kwargs,
    ):
        super().__init__(**kwargs)
        spec = get_spec(mode, argument="mode")
        key = spec.torch_mode.lower()
        self.mode = key
        self.units = check_units("units", units)
        if isinstance(num_layers, bool) or not isinstance(num_layers, int) or num_layers < 1:
            raise ValueError(f"`num_layers` must be an integer >= 1, got num_layers={num_layers!r}.")
        self.num_layers = num_layers
        self.bidirectional = bool(bidirectional)
        self.dropout = check_rate("dropout", dropout)
        if proj_size != 0:
            if key != "lstm":
                raise ValueError(
                    f"proj_size={proj_size!r} is only supported for mode='lstm', got mode={mode!r}; "
                    "use proj_size=0."
                )
            check_units("proj_size", proj_size)
            if proj_size >= units:
                raise ValueError(
                    f"proj_size={proj_size!r} must be smaller than units={units!r} (as in PyTorch)."
                )
        self.proj_size = int(proj_size)
        self.use_bias = bool(use_bias)
        self.return_sequences = bool(return_sequences)
        self.seed = seed
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.recurrent_initializer = initializers.get(recurrent_initializer)
        self.bias_initializer = initializers.get(bias_initializer)
        self.supports_masking = True
        self.input_spec = keras.layers.InputSpec(ndim=3)

        layer_class = spec.layer_class
        extra = {"proj_size": self.proj_size} if key == "lstm" else {}
        # Flat list, index layer * D + direction: PyTorch's state index.
        self.rnns = []
        for k in range(num_layers):
            for d in range(self.num_directions):
                self.rnns.append(
                    layer_class(
                        self.units,
                        use_bias=self.use_bias,
                        kernel_initializer=self.kernel_initializer,
                        recurrent_initializer=self.recurrent_initializer,
                        bias_initializer=self.bias_initializer,
                        return_sequences=True,
                        return_state=True,
                        go_backwards=d == 1,
                        dtype=self.dtype_policy,
                        name=f"{key}_l{k}" + ("_reverse" if d else ""),
                        **extra,
                    )
                )
        self.dropouts = [
            keras.layers.Dropout(
                self.dropout, seed=None if seed is None else seed + k, name=f"dropout_l{k}"
            )
            for k in range(num_layers - 1)
        ]

    # -- shapes ------------------------------------------------------------
    @property
    def num_directions(self) -> int:
        return 2 if self.bidirectional else 1

    @property
    def output_units(self) -> int:
        """Size of ``h`` per direction: ``proj_size or units``."""
        return self.proj_size or self.units

    def build(self, input_shape):
        batch, time, features = input_shape
        self._stack_input_shape = (batch, time, features)
        for k in range(self.num_layers):
            in_dim = features if k == 0 else self.num_directions * self.output_units
            for d in range(self.num_directions):
                rnn = self.rnns[k * self.num_directions + d]
                if not rnn.built:
                    rnn.build((batch, time, in_dim))
        self.built = True

    def get_build_config(self):
        if not self.built:
            return None
        return {"input_shape": list(self._stack_input_shape)}

    def build_from_config(self, config):
        if config and "input_shape" in config:
            self.build(tuple(config["input_shape"]))

    # -- forward -----------------------------------------------------------
    def _layer_initial_states(self, initial_state):
        """Split a PyTorch-layout initial state into one state list per sub-layer."""
        if initial_state is None:
            return [None] * len(self.rnns)
        if self.mode == "lstm":
            if not isinstance(initial_state, (list, tuple)) or len(initial_state) != 2:
                raise ValueError(
                    "mode='lstm' needs initial_state=(h0, c0), "
                    f"got {type(initial_state).__name__} of length "
                    f"{len(initial_state) if isinstance(initial_state, (list, tuple)) else 1}."
                )
            h0, c0 = initial_state
            return [[h0[i], c0[i]] for i in range(len(self.rnns))]
        if isinstance(initial_state, (list, tuple)):
            if len(initial_state) != 1:
                raise ValueError(
                    f"mode={self.mode!r} needs a single initial_state h0, got {len(initial_state)} tensors."
                )
            initial_state = initial_state[0]
        return [[initial_state[i]] for i in range(len(self.rnns))]

    def call(self, inputs, initial_state=None, mask=None, training=None):
        states0 = self._layer_initial_states(initial_state)
        x = inputs
        h_n, c_n = [], []
        for k in range(self.num_layers):
            if k > 0 and self.dropout > 0.0:
                x = self.dropouts[k - 1](x, training=training)
            outputs = []
            for d in range(self.num_directions):
                i = k * self.num_directions + d
                out, *states = self.rnns[i](
                    x, initial_state=states0[i], mask=mask, training=training
                )
                if d == 1:
                    out = ops.flip(out, axis=1)
                outputs.append(out)
                h_n.append(states[0])
                if self.mode == "lstm":
                    c_n.append(states[1])
            x = outputs[0] if len(outputs) == 1 else ops.concatenate(outputs, axis=-1)
        if not self.return_sequences:
            x = ops.concatenate(h_n[-self.num_directions:], axis=-1)
        h_n = ops.stack(h_n, axis=0)
        if self.mode == "lstm":
            return x, (h_n, ops.stack(c_n, axis=0))
        return x, h_n

    def compute_mask(self, inputs, mask=None):
        output_mask = mask if self.return_sequences else None
        return [output_mask, None] if self.mode != "lstm" else [output_mask, None, None]

    # -- serialization -----------------------------------------------------
    def get_config(self):
        config = {
            "mode": self.mode,
            "units": self.units,
            "num_layers": self.num_layers,
            "bidirectional": self.bidirectional,
            "dropout": self.dropout,
            "proj_size": self.proj_size,
            "use_bias": self.use_bias,
            "return_sequences": self.return_sequences,
            "seed": self.seed,
            "kernel_initializer": initializers.serialize(self.kernel_initializer),
            "recurrent_initializer": initializers.serialize(self.recurrent_initializer),
            "bias_initializer": initializers.serialize(self.bias_initializer),
        }
        return {**super().get_config(), **config}

    @classmethod
    def from_config(cls, config):
        return cls(**config)
