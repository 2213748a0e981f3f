"""The one cell registry: names, aliases, gate counts, layer classes, XLA setting.

It imports neither Keras nor TensorFlow (recipe schemas such as long_memory's
resolve cell names without TensorFlow); the layer class is looked up in
`kerasrnn.layers` on first use.

Every part of kerasrnn that accepts a cell name (recipes' ``model.cell``,
`RecurrentStack` modes, `interop.from_torch`, the claims and the benchmarks)
resolves it here, so a name means the same thing everywhere:

=============  ==========================  =====  ================  ============  ==========
canonical      aliases (case-insensitive)  gates  layer             PyTorch mode  XLA (train)
=============  ==========================  =====  ================  ============  ==========
``simple_rnn`` rnn, rnn_tanh, simplernn    1      `SimpleRNN`       RNN_TANH      off
``rnn_relu``   simple_rnn_relu             1      `ReluSimpleRNN`   RNN_RELU      off
``lstm``                                   4      `LSTM`            LSTM          on
``gru``                                    3      `GRU`             GRU           off
=============  ==========================  =====  ================  ============  ==========

``rnn_relu`` is a relu SimpleRNN wherever it is accepted: its layer class is
`ReluSimpleRNN`, a `SimpleRNN` whose default activation is relu (a class, not a
factory, so ``isinstance(layer, SimpleRNN)`` and serialization keep working).

The XLA column is the training-step ``jit_compile`` measured fastest on a 2-core
CPU with `kerasrnn bench layers` (b64/T100/128->256, medians of 10 interleaved
rounds, 2026-11-23): LSTM (fused BPTT) 65 ms with XLA vs 91 ms without; GRU 58 ms
without vs 65 ms with; SimpleRNN 22 ms without vs 38 ms with. Inference is a few
ms faster with XLA for every cell.

Unknown names raise ValueError naming the argument (this is a library API);
recipe code turns that into a message naming the recipe key.

>>> canonical_name("RNN"), gate_count("gru"), get_layer_class("rnn_relu").__name__
('simple_rnn', 3, 'ReluSimpleRNN')
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field

__all__ = [
    "CellSpec", "CELL_SPECS", "CELL_TYPES", "CANONICAL_CELLS", "canonical_name", "get_spec",
    "get_layer_class", "gate_count", "recommended_jit_compile",
]


@dataclass(frozen=True)
class CellSpec:
    """Everything kerasrnn knows about one cell type.

    Attributes:
        name: canonical name (``"simple_rnn"``, ``"rnn_relu"``, ``"lstm"``, ``"gru"``).
        layer_name: name of the sequence-layer class in `kerasrnn.layers`
            (`layer_class` is that class).
        gates: gate blocks in the kernels (SimpleRNN 1, GRU 3, LSTM 4).
        torch_mode: PyTorch's ``mode`` string of the matching ``nn.RNN/LSTM/GRU``.
        jit_compile: training-step XLA setting measured fastest on CPU.
        aliases: other accepted names (lower case).
        label: short display name for tables.
    """

    name: str
    layer_name: str
    gates: int
    torch_mode: str
    jit_compile: bool
    aliases: tuple[str, ...] = field(default=())
    label: str = ""

    @property
    def layer_class(self) -> type:
        """The `kerasrnn.layers` class (importing Keras on first use)."""
        # Lazy on purpose: kerasrnn.layers imports Keras/TensorFlow (seconds).
        return getattr(importlib.import_module("kerasrnn.layers"), self.layer_name)


CELL_SPECS: dict[str, CellSpec] = {
    spec.name: spec
    for spec in (
        CellSpec("simple_rnn", "SimpleRNN", 1, "RNN_TANH", False, ("rnn", "rnn_tanh", "simplernn"), "RNN"),
        CellSpec("rnn_relu", "ReluSimpleRNN", 1, "RNN_RELU", False, ("simple_rnn_relu",), "RNN (relu)"),
        CellSpec("lstm", "LSTM", 4, "LSTM", True, (), "LSTM"),
        CellSpec("gru", "GRU", 3, "GRU", False, (), "GRU"),
    )
}

#: The three recurrences compared by the claims and the benchmarks, in table order.
CANONICAL_CELLS = ("simple_rnn", "lstm", "gru")

_NAMES = {alias: spec.name for spec in CELL_SPECS.values() for alias in (spec.name, *spec.aliases)}

#: Every accepted name (canonical and alias) -> its canonical name.
CELL_TYPES = dict(_NAMES)


def canonical_name(cell_type: str, argument: str = "cell_type") -> str:
    """The canonical name of a cell type or alias (case-insensitive).

    Args:
        cell_type: a name from the table in the module docstring.
        argument: the argument name to quote in the error (default ``"cell_type"``).

    Raises:
        ValueError: unknown name; the message names `argument` and the valid names.

    >>> canonical_name("rnn_tanh"), canonical_name("LSTM")
    ('simple_rnn', 'lstm')
    """
    key = str(cell_type).strip().lower()
    if key not in _NAMES:
        raise ValueError(
            f"Unknown {argument}={cell_type!r}; expected one of {sorted(_NAMES)}."
        )
    return _NAMES[key]


def get_spec(cell_type: str, argument: str = "cell_type") -> CellSpec:
    """The `CellSpec` of a cell type or alias.

    >>> get_spec("rnn").torch_mode
    'RNN_TANH'
    """
    return CELL_SPECS[canonical_name(cell_type, argument)]


def get_layer_class(cell_type: str):
    """Return the sequence-layer class for a cell type name.

    Args:
        cell_type: ``"simple_rnn"`` (aliases ``"rnn"``, ``"rnn_tanh"``), ``"rnn_relu"``
            (a relu SimpleRNN), ``"lstm"`` or ``"gru"``; case-insensitive.

    >>> get_layer_class("lstm").__name__
    'LSTM'
    """
    return get_spec(cell_type).layer_class


def gate_count(cell_type: str) -> int:
    """Gate blocks of a cell type: SimpleRNN 1, GRU 3, LSTM 4.

    >>> gate_count("lstm")
    4
    """
    return get_spec(cell_type).gates


def recommended_jit_compile(cell_type: str) -> bool:
    """The `jit_compile` value for `model.compile` that trains this cell fastest on CPU.

    Keras' default ``jit_compile="auto"`` turns XLA off on CPU-only machines;
    pass this instead.

    >>> recommended_jit_compile("lstm"), recommended_jit_compile("rnn")
    (True, False)
    """
    return get_spec(cell_type).jit_compile
