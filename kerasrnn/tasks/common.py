"""Pieces shared by the task modules: the recurrent stack, checks, printing."""

from __future__ import annotations

import json
import math

import keras
import numpy as np

from kerasrnn import cells
from kerasrnn.dropout import PhiloxDropout
from kerasrnn.errors import UserError


def canonical_cell(cell: str) -> str:
    """The canonical name from `kerasrnn.cells` (``"lstm"``, ``"gru"``,
    ``"simple_rnn"`` alias ``"rnn"``, ``"rnn_relu"``); else `UserError` naming ``model.cell``.

    >>> canonical_cell("RNN")
    'simple_rnn'
    """
    try:
        return cells.canonical_name(cell, argument="model.cell")
    except ValueError as exc:
        raise UserError(f"{exc} Set model.cell to one of them.") from None


def check_model_config(units: int, num_layers: int, dropout: float) -> None:
    """`UserError` for an impossible recurrent stack."""
    if units < 1:
        raise UserError(f"model.units must be at least 1, got {units}")
    if num_layers < 1:
        raise UserError(f"model.num_layers must be at least 1, got {num_layers}")
    if not 0 <= dropout < 1:
        raise UserError(f"model.dropout must be in [0, 1), got {dropout}")


def rnn_stack(x, cell: str, units: int, num_layers: int, dropout: float = 0.0,
              last_return_sequences: bool = True, bidirectional: bool = False, **layer_kwargs):
    """Apply ``num_layers`` kerasrnn recurrent layers named ``rnn_0``, ``rnn_1``...

    `layer_kwargs` go to every recurrent layer (e.g. ``recurrent_weight_dropout=0.3``).

    A dropout layer (``dropout_i``, `kerasrnn.dropout.PhiloxDropout`: Keras'
    Dropout with a mask that is cheap under XLA) follows each recurrent layer when
    ``dropout > 0``. With `bidirectional`, each layer is wrapped in
    ``keras.layers.Bidirectional`` and the wrapper carries the ``rnn_i`` name.
    """
    layer_class = cells.get_layer_class(canonical_cell(cell))
    for i in range(num_layers):
        return_sequences = last_return_sequences or i < num_layers - 1
        if bidirectional:
            layer = keras.layers.Bidirectional(layer_class(units, return_sequences=return_sequences, **layer_kwargs),
                                               name=f"rnn_{i}")
        else:
            layer = layer_class(units, return_sequences=return_sequences, name=f"rnn_{i}", **layer_kwargs)
        x = layer(x)
        if dropout > 0:
            x = PhiloxDropout(dropout, name=f"dropout_{i}")(x)
    return x


def round_floats(data, digits: int = 6):
    """Round floats in nested dicts/lists (for readable metrics.json); NaN -> None."""
    if isinstance(data, dict):
        return {k: round_floats(v, digits) for k, v in data.items()}
    if isinstance(data, (list, tuple)):
        return [round_floats(v, digits) for v in data]
    if isinstance(data, (float, np.floating)):
        value = float(data)
        return None if math.isnan(value) else round(value, digits)
    if isinstance(data, np.integer):
        return int(data)
    return data


def print_metrics(title: str, metrics: dict) -> None:
    """Print the scalar metrics of a run, one per line."""
    print(f"\n{title}")
    for key, value in metrics.items():
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            print(f"  {key}: {value:.4f}" if isinstance(value, float) else f"  {key}: {value}")


def dumps(data) -> str:
    """JSON with indentation, UTF-8 characters kept."""
    return json.dumps(data, indent=2, ensure_ascii=False)
