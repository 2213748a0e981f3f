"""Closed-form parameter counts of SimpleRNN, LSTM and GRU layers (Keras weight layout).

With input size ``d``, ``u`` units and ``g`` gates (SimpleRNN 1, GRU 3, LSTM 4),
one direction of a layer holds::

    kernel           d × g·u
    recurrent_kernel h × g·u        (h = u, or proj_size P for a projected LSTM)
    bias             g·u            (GRU reset_after=True: 2·g·u, separate input/recurrent bias)
    projection       u × P          (LSTM with proj_size P > 0 only)

so SimpleRNN ``u(d+u+1)``, LSTM ``4u(d+u+1)``, GRU ``3u(d+u+2)`` (reset_after) or
``3u(d+u+1)``. A bidirectional wrapper doubles the count (merge mode adds no
weights). The ratio RNN : GRU : LSTM is therefore close to 1 : 3 : 4 for any size.

>>> count_params("lstm", input_dim=10, units=20)
2480
>>> count_params("gru", 10, 20), count_params("gru", 10, 20, reset_after=False)
(1920, 1860)
"""

from __future__ import annotations

from kerasrnn import cells

#: Gate counts of the three compared recurrences (from `kerasrnn.cells`).
GATES = {cell: cells.gate_count(cell) for cell in cells.CANONICAL_CELLS}


def canonical_cell(cell: str) -> str:
    """The registry's canonical name for a cell name or alias (case-insensitive).

    >>> canonical_cell("RNN")
    'simple_rnn'
    """
    return cells.canonical_name(cell, argument="cell")


def count_params(cell: str, input_dim: int, units: int, *, use_bias: bool = True,
                 reset_after: bool = True, proj_size: int = 0,
                 bidirectional: bool = False) -> int:
    """Number of weights of one recurrent layer, by formula.

    Args:
        cell: ``"simple_rnn"`` (alias ``"rnn"``), ``"lstm"`` or ``"gru"``.
        input_dim: size of each input vector ``d``.
        units: hidden size ``u``.
        use_bias: default True.
        reset_after: GRU only (default True, the Keras default): two bias rows.
        proj_size: LSTM only (default 0 = no projection); the output/state size h.
        bidirectional: default False; True doubles the count.

    Returns:
        The count that ``layer.count_params()`` reports once built.

    >>> count_params("rnn", 3, 8), count_params("lstm", 3, 8, proj_size=4)
    (96, 288)
    """
    cell = canonical_cell(cell)
    g = cells.gate_count(cell)
    if proj_size and cell != "lstm":
        raise ValueError(f"proj_size is an LSTM option, got proj_size={proj_size} for {cell}")
    h = proj_size if proj_size else units
    n = input_dim * g * units + h * g * units
    if use_bias:
        n += g * units * (2 if cell == "gru" and reset_after else 1)
    if proj_size:
        n += units * proj_size
    return n * (2 if bidirectional else 1)


def param_ratios(input_dim: int, units: int) -> dict[str, float]:
    """Parameter counts relative to SimpleRNN at equal sizes (default options).

    >>> param_ratios(64, 64)["lstm"]
    4.0
    """
    base = count_params("simple_rnn", input_dim, units)
    return {c: round(count_params(c, input_dim, units) / base, 3) for c in GATES}


def flops_per_step(cell: str, input_dim: int, units: int) -> int:
    """Multiply-add FLOPs of one step for one sequence: ``2·g·u·(d+u)`` (matmuls only).

    >>> flops_per_step("lstm", 10, 20)
    4800
    """
    return 2 * cells.gate_count(cell) * units * (input_dim + units)


def activation_floats_per_step(cell: str, units: int) -> int:
    """Floats a cell stores per step per sequence for backprop (textbook analysis).

    SimpleRNN keeps h_t (1·u); GRU keeps z, r, candidate and h (4·u); LSTM keeps
    i, f, candidate, o, C and h (6·u). Frameworks may store more (e.g. pre-activations).

    >>> activation_floats_per_step("gru", 10)
    40
    """
    return {1: 1, 3: 4, 4: 6}[cells.gate_count(cell)] * units
