"""Layer options beyond Keras' and drop-in details: weight-drop, `implementation`/`use_cudnn`,
the `fused` switch and its per-call record, activations by identity, the private-import
compat module and the layers' import structure."""

import ast
import json
import pathlib

import keras
import numpy as np
import pytest
import tensorflow as tf

import kerasrnn.layers as krl
from kerasrnn.layers import compat

LAYERS = ("SimpleRNN", "LSTM", "GRU")
X = np.random.default_rng(0).normal(size=(3, 7, 5)).astype("float32")


def _pair(name, **kwargs):
    """(built-in, ours) with identical weights."""
    ref = getattr(keras.layers, name)(4, return_sequences=True, return_state=True, **kwargs)
    ours = getattr(krl, name)(4, return_sequences=True, return_state=True, **kwargs)
    ref(X), ours(X)
    ours.set_weights(ref.get_weights())
    return ref, ours


# -- weight-drop (AWD-LSTM DropConnect on U) -------------------------------------------


@pytest.mark.parametrize("name", LAYERS)
@pytest.mark.parametrize("fused", [False, True])
def test_weight_drop_is_one_mask_on_U_per_call_in_training_and_nothing_in_inference(name, fused, monkeypatch):
    keras.utils.set_random_seed(1)
    rate = 0.5
    ours = getattr(krl, name)(4, return_sequences=True, return_state=True, recurrent_weight_dropout=rate,
                              fused=fused, seed=3)
    ref = getattr(keras.layers, name)(4, return_sequences=True, return_state=True)
    ours(X), ref(X)
    ref.set_weights(ours.get_weights())
    # Inference: U as is, exactly the built-in.
    for a, b in zip(ours(X, training=False), ref(X, training=False)):
        np.testing.assert_allclose(a, b, atol=1e-6)
    assert ours.path_record.last == ("fused" if fused else "loop")

    # Training: keep the mask after the call to read it, then rebuild the result with U ⊙ M.
    monkeypatch.setattr(ours.cell, "reset_recurrent_dropout_mask", lambda: None)
    x = tf.constant(X)
    with tf.GradientTape() as tape:
        seq, *states = ours(x, training=True)
        loss = tf.reduce_sum(seq * seq)
    grad_u = tape.gradient(loss, ours.cell.recurrent_kernel)
    mask = np.asarray(ours.cell._recurrent_weight_mask)
    assert ours.path_record.last == ("fused" if fused else "loop")
    assert mask.shape == tuple(ours.cell.recurrent_kernel.shape)
    assert set(np.unique(mask)) <= {0.0, np.float32(1.0 / (1.0 - rate))}
    assert 0 < (mask == 0).mean() < 1
    kernel, recurrent, *rest = ours.get_weights()
    ref.set_weights([kernel, recurrent * mask, *rest])
    for a, b in zip([seq, *states], ref(X, training=False)):
        np.testing.assert_allclose(a, b, atol=1e-5)
    # No gradient reaches the dropped weights.
    assert np.all(np.asarray(grad_u)[mask == 0] == 0)
    assert np.any(np.asarray(grad_u)[mask != 0] != 0)


def test_weight_drop_draws_a_new_mask_each_call_and_round_trips_in_config():
    layer = krl.LSTM(4, recurrent_weight_dropout=0.4, seed=0)
    first, second = layer(X, training=True), layer(X, training=True)
    assert np.max(np.abs(np.asarray(first) - np.asarray(second))) > 1e-4
    config = layer.get_config()
    assert config["recurrent_weight_dropout"] == 0.4
    assert krl.LSTM.from_config(config).cell.recurrent_weight_dropout == 0.4
    with pytest.raises(ValueError, match="recurrent_weight_dropout=1.0"):
        krl.GRU(3, recurrent_weight_dropout=1.0)


def test_weight_drop_in_a_compiled_xla_training_step():
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((7, 5)), krl.LSTM(4, recurrent_weight_dropout=0.3), keras.layers.Dense(1)])
    model.compile("adam", "mse", jit_compile=True)
    assert np.isfinite(float(model.train_on_batch(X, np.zeros((3, 1), "float32"))))
    assert model.layers[0].path_record.last == "fused"


# -- implementation / use_cudnn ------------------------------------------------------------


@pytest.mark.parametrize("name", ["LSTM", "GRU"])
def test_builtin_config_with_legacy_arguments_loads_unchanged(name):
    builtin = getattr(keras.layers, name)(3, implementation=1, use_cudnn=False, dropout=0.2)
    config = builtin.get_config()
    config.update(implementation=1, use_cudnn=False)  # what older Keras versions saved
    ours = getattr(krl, name).from_config(config)
    assert ours.cell.implementation == 1 and ours.use_cudnn is False
    saved = ours.get_config()
    assert saved["implementation"] == 1 and saved["use_cudnn"] is False
    assert getattr(krl, name).from_config(saved).get_config() == saved


@pytest.mark.parametrize("name", ["LSTM", "GRU"])
def test_implementation_1_draws_per_gate_masks_like_keras(name):
    """Same seed, implementation=1, input dropout only: Keras and ours draw the same masks.

    (``use_cudnn=False``: Keras 3.15's own LSTM/GRU crash in training with implementation=1
    and dropout on its "auto" cuDNN branch, even on CPU; ours takes both settings.)"""
    ref, ours = _pair(name, implementation=1, dropout=0.3, seed=5, use_cudnn=False)
    for a, b in zip(ref(X, training=True), ours(X, training=True)):
        np.testing.assert_allclose(a, b, atol=1e-5)


def test_use_cudnn_true_is_refused_at_call_and_bad_values_at_construction():
    layer = krl.LSTM(3, use_cudnn=True)
    with pytest.raises(ValueError, match="use_cudnn='auto'"):
        layer(X)
    with pytest.raises(ValueError, match="use_cudnn='yes'"):
        krl.GRU(3, use_cudnn="yes")
    with pytest.raises(ValueError, match="use_cudnn"):  # as keras.layers.SimpleRNN: not an argument
        krl.SimpleRNN(3, use_cudnn="auto")


# -- fused: persisted, observable ------------------------------------------------------------


@pytest.mark.parametrize("fused", [True, False])
def test_fused_is_persisted_and_reaches_both_directions_of_bidirectional(tmp_path, fused):
    layer = krl.GRU(4, fused=fused, return_sequences=True)
    assert layer.get_config()["fused"] is fused
    assert all(getattr(krl, name)(4).get_config()["fused"] is None for name in LAYERS)  # as given
    defaults = {name: getattr(krl, name).fused_defaults for name in LAYERS}
    assert defaults == {"LSTM": (True, True), "GRU": (True, True), "SimpleRNN": (True, True)}
    model = keras.Sequential([keras.Input((7, 5)), keras.layers.Bidirectional(layer)])
    model(X, training=True)
    bidi = model.layers[0]
    path_name = "fused" if fused else "loop"
    assert bidi.forward_layer.path_record.last == bidi.backward_layer.path_record.last == path_name
    path = tmp_path / "m.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert loaded.layers[0].forward_layer.fused is fused and loaded.layers[0].backward_layer.fused is fused
    loaded(X, training=True)
    assert loaded.layers[0].forward_layer.path_record.last == path_name
    with pytest.raises(ValueError, match="fused='yes'"):
        krl.GRU(3, fused="yes")


@pytest.mark.parametrize(
    "kwargs, call_kwargs, reason",
    [
        ({"fused": False}, {"training": True}, "fused=False"),
        ({"fused": False}, {"training": False}, "fused=False"),
        ({"dropout": 0.2}, {"training": True}, "dropout"),
        ({"recurrent_activation": "hard_sigmoid"}, {"training": True}, "activation"),
        ({"unroll": True}, {"training": True}, "unroll"),
        ({"proj_size": 2}, {"training": True}, "proj_size"),
    ],
)
def test_path_record_names_why_the_loop_ran(kwargs, call_kwargs, reason):
    layer = krl.LSTM(4, **kwargs)
    layer(X, **call_kwargs)
    assert (layer.path_record.last, layer.path_record.reason) == ("loop", reason)


@pytest.mark.parametrize("name", LAYERS)
@pytest.mark.parametrize("training", [True, False])
def test_fused_path_runs_in_training_and_inference(name, training):
    fused = {} if name == "LSTM" else {"fused": True}  # LSTM's default in both modes
    layer = getattr(krl, name)(4, return_sequences=True, **fused)
    layer(X, training=training)
    assert (layer.path_record.last, layer.path_record.reason) == ("fused", None)
    # Dropout only matters in training: inference still takes the fused loop.
    dropped = getattr(krl, name)(4, dropout=0.3, recurrent_dropout=0.2, **fused)
    dropped(X, training=training)
    assert dropped.path_record.last == ("loop" if training else "fused")


@pytest.mark.parametrize("name", LAYERS)
@pytest.mark.parametrize("training", [True, False])
def test_fused_none_follows_the_measured_defaults_per_mode(name, training, monkeypatch):
    layer = getattr(krl, name)(4)
    layer(X, training=training)
    assert (layer.path_record.last, layer.path_record.reason) == ("fused", None)
    assert layer.fused is None and layer.wants_fused(training)
    # a class whose default for this mode is off names the default as the reason
    cls = type(layer)
    monkeypatch.setattr(cls, "fused_defaults", (not training, training))
    off = cls(4)
    off(X, training=training)
    mode = "training" if training else "inference"
    assert (off.path_record.last, off.path_record.reason) == ("loop", f"default ({mode})")


def test_path_record_with_a_mask_and_counts():
    layer = krl.LSTM(4)
    mask = np.ones((3, 7), bool)
    mask[0, 5:] = False
    layer(X, mask=mask, training=True)
    assert layer.path_record.reason == "mask"
    layer(X, training=True)
    assert layer.path_record.last == "fused" and layer.path_record.counts == {"fused": 1, "loop": 1}


# -- activations by identity ---------------------------------------------------------------


def test_a_user_function_named_tanh_is_not_taken_for_tanh():
    def tanh(x):  # a scaled tanh that happens to share the name
        return 2.0 * keras.ops.tanh(x)

    for name in ("SimpleRNN", "GRU", "LSTM"):
        ref, ours = _pair(name, activation=tanh)
        ours.fused = True
        for a, b in zip(ref(X, training=True), ours(X, training=True)):
            np.testing.assert_allclose(a, b, atol=1e-5)
        assert (ours.path_record.last, ours.path_record.reason) == ("loop", "activation"), name
    # Keras' own function, however obtained, is recognised.
    layer = krl.SimpleRNN(4, activation=keras.activations.get("relu"), fused=True)
    layer(X, training=True)
    assert layer.path_record.last == "fused"


# -- private Keras imports: one compat module ------------------------------------------------


def test_private_keras_imports_resolve_and_fail_loudly_when_moved(monkeypatch):
    assert compat.DropoutRNNCell is compat.load_private("DropoutRNNCell")
    assert issubclass(krl.LSTMCell, compat.DropoutRNNCell)
    monkeypatch.setitem(compat.PRIVATE_IMPORTS, "DropoutRNNCell", ("keras.src.moved_away", "DropoutRNNCell"))
    with pytest.raises(ImportError) as info:
        compat.load_private("DropoutRNNCell")
    message = str(info.value)
    assert "keras.src.moved_away.DropoutRNNCell" in message and keras.__version__ in message
    assert "kerasrnn/layers/compat.py" in message
    # A symbol that moved *within* an existing module fails the same way.
    monkeypatch.setitem(compat.PRIVATE_IMPORTS, "DropoutRNNCell", ("keras.src.layers", "NoSuchMixin"))
    with pytest.raises(ImportError, match="keras.src.layers.NoSuchMixin"):
        compat.load_private("DropoutRNNCell")


def _imports(path):
    """(top-level imports, function-level imports) of kerasrnn modules in one file."""
    tree = ast.parse(path.read_text())
    top, nested = set(), set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("kerasrnn"):
            (top if node in tree.body else nested).add(node.module)
        elif isinstance(node, ast.Import):
            names = {a.name for a in node.names if a.name.startswith("kerasrnn")}
            (top if node in tree.body else nested).update(names)
    return top, nested


def test_only_compat_imports_keras_src_and_layers_have_no_import_cycle():
    root = pathlib.Path(krl.__file__).parent
    graph = {}
    for path in sorted(root.glob("*.py")):
        text = path.read_text()
        if path.name != "compat.py":
            assert "keras.src" not in text.replace("`keras.src`", ""), path.name
        top, nested = _imports(path)
        assert not nested, f"{path.name} imports kerasrnn modules inside functions: {nested}"
        graph[f"kerasrnn.layers.{path.stem}"] = {m for m in top if m.startswith("kerasrnn.layers.")}
    graph.pop("kerasrnn.layers.__init__")

    def visit(node, trail):
        assert node not in trail, f"import cycle: {' -> '.join([*trail, node])}"
        for nxt in graph.get(node, ()):
            visit(nxt, [*trail, node])

    for module in graph:
        visit(module, [])
    # plain TensorFlow; its one private TensorFlow symbol comes through compat's guard
    assert graph["kerasrnn.layers.fused"] == {"kerasrnn.layers.compat"}


def test_keras_own_test_files_pass_with_our_layers_swapped_in():
    """The mechanism and the test that failed before (a legacy `implementation` in a config);
    `kerasrnn verify --keras-tests` runs all of Keras' lstm/gru/simple_rnn tests (20 pass)."""
    from kerasrnn.verify import run_keras_test_files

    result = run_keras_test_files(select="legacy_implementation", files=("gru_test.py",))
    assert result["failed"] == 0 and result["passed"] == 1, json.dumps(result)
