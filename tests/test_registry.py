"""The one cell registry (`kerasrnn.cells`): every consumer resolves names through it."""

import subprocess
import sys

import keras
import pytest

import kerasrnn.layers as krl
from kerasrnn import cells
from kerasrnn.bench.layers import parse_cells
from kerasrnn.claims import params
from kerasrnn.errors import UserError
from kerasrnn.interop import _TORCH_MODES
from kerasrnn.tasks.common import canonical_cell


def test_rnn_relu_is_relu_wherever_it_is_accepted():
    layer_class = cells.get_layer_class("rnn_relu")
    assert issubclass(layer_class, krl.SimpleRNN)
    assert layer_class(3).cell.activation is keras.activations.relu
    assert krl.get_layer_class("RNN_RELU") is layer_class
    assert krl.RecurrentStack("rnn_relu", 3).rnns[0].cell.activation is keras.activations.relu
    assert canonical_cell("rnn_relu") == "rnn_relu"
    assert params.canonical_cell("rnn_relu") == "rnn_relu"
    assert _TORCH_MODES["RNN_RELU"] == "rnn_relu"
    # and the tanh names stay tanh
    for name in ("rnn", "rnn_tanh", "simple_rnn", "SimpleRNN"):
        assert cells.get_layer_class(name)(3).cell.activation is keras.activations.tanh


def test_one_table_gives_names_gates_classes_and_xla():
    assert cells.CANONICAL_CELLS == ("simple_rnn", "lstm", "gru")
    assert {n: cells.gate_count(n) for n in cells.CELL_SPECS} == {"simple_rnn": 1, "rnn_relu": 1, "lstm": 4, "gru": 3}
    assert params.GATES == {"simple_rnn": 1, "lstm": 4, "gru": 3}
    assert {n: cells.recommended_jit_compile(n) for n in cells.CELL_SPECS} == {
        "simple_rnn": False, "rnn_relu": False, "lstm": True, "gru": False}
    assert cells.get_layer_class("lstm") is krl.LSTM and cells.get_layer_class("gru") is krl.GRU
    assert parse_cells("LSTM,rnn,simplernn") == ("lstm", "simple_rnn")
    assert krl.RecurrentStack("simple_rnn", 2).mode == "rnn_tanh"  # stored with PyTorch's name


def test_unknown_names_are_value_errors_naming_the_argument_and_user_errors_in_recipes():
    with pytest.raises(ValueError, match=r"Unknown cell_type='transformer'; expected one of \["):
        cells.get_layer_class("transformer")
    with pytest.raises(ValueError, match="Unknown mode='lstmm'"):
        krl.RecurrentStack("lstmm", 3)
    with pytest.raises(UserError, match="model.cell='transformer'.*Set model.cell"):
        canonical_cell("transformer")


def test_the_registry_imports_without_keras():
    code = ("import sys, kerasrnn.cells as c; c.canonical_name('gru'); "
            "print('keras' in sys.modules, 'tensorflow' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]
