"""kerasrnn.layers.RecurrentStack: shapes, state layout, dropout, masking, serialization, validation."""

import keras
import numpy as np
import pytest

from kerasrnn.layers import GRU, LSTM, RecurrentStack, SimpleRNN


def _x(batch=3, time=5, features=4, seed=0):
    return np.random.default_rng(seed).standard_normal((batch, time, features)).astype("float32")


# -- shapes and PyTorch state layout -------------------------------------------

@pytest.mark.parametrize(
    "mode,options,out_dim,h_shape,c_shape",
    [
        ("rnn_tanh", {}, 6, (1, 3, 6), None),
        ("rnn_relu", dict(num_layers=2, bidirectional=True), 12, (4, 3, 6), None),
        ("gru", dict(num_layers=3), 6, (3, 3, 6), None),
        ("lstm", dict(num_layers=2), 6, (2, 3, 6), (2, 3, 6)),
        ("lstm", dict(num_layers=2, bidirectional=True, proj_size=2), 4, (4, 3, 2), (4, 3, 6)),
    ],
)
def test_output_and_state_shapes(mode, options, out_dim, h_shape, c_shape):
    outputs, states = RecurrentStack(mode, 6, **options)(_x())
    assert tuple(outputs.shape) == (3, 5, out_dim)
    if mode == "lstm":
        h_n, c_n = states
        assert tuple(c_n.shape) == c_shape
    else:
        h_n = states
    assert tuple(h_n.shape) == h_shape


def test_state_order_is_layer_major_direction_minor():
    keras.utils.set_random_seed(0)
    stack = RecurrentStack("gru", 5, num_layers=2, bidirectional=True)
    x = _x()
    outputs, h_n = stack(x)
    # Forward layer's final state = its output at the last step; backward's = at step 0.
    top_fwd, top_bwd = outputs[:, -1, :5], outputs[:, 0, 5:]
    np.testing.assert_allclose(h_n[2], top_fwd, atol=1e-6)
    np.testing.assert_allclose(h_n[3], top_bwd, atol=1e-6)
    # Layer 0 alone, run separately, gives h_n[0] and h_n[1].
    _, h0_fwd = stack.rnns[0](x)[:2]
    _, h0_bwd = stack.rnns[1](x)[:2]
    np.testing.assert_allclose(h_n[0], h0_fwd, atol=1e-6)
    np.testing.assert_allclose(h_n[1], h0_bwd, atol=1e-6)
    assert [r.go_backwards for r in stack.rnns] == [False, True, False, True]


def test_single_layer_equals_the_sequence_layer():
    keras.utils.set_random_seed(1)
    stack = RecurrentStack("lstm", 4)
    x = _x()
    outputs, (h_n, c_n) = stack(x)
    layer = LSTM(4, return_sequences=True, return_state=True)
    layer.build(x.shape)
    layer.set_weights(stack.get_weights())
    out, h, c = layer(x)
    np.testing.assert_allclose(outputs, out, atol=1e-6)
    np.testing.assert_allclose(h_n[0], h, atol=1e-6)
    np.testing.assert_allclose(c_n[0], c, atol=1e-6)


def test_sub_layer_types_and_relu():
    assert isinstance(RecurrentStack("rnn_relu", 3).rnns[0], SimpleRNN)
    assert RecurrentStack("rnn_relu", 3).rnns[0].cell.activation is keras.activations.relu
    assert isinstance(RecurrentStack("gru", 3).rnns[0], GRU)
    x = _x()
    keras.utils.set_random_seed(2)
    out, _ = RecurrentStack("rnn_relu", 3, num_layers=2)(x)
    assert float(np.min(out)) >= 0.0


def test_initial_state_is_used_and_validated():
    keras.utils.set_random_seed(3)
    stack = RecurrentStack("lstm", 4, num_layers=2, bidirectional=True)
    x = _x()
    zeros = np.zeros((4, 3, 4), "float32")
    out_default, _ = stack(x)
    out_zero, _ = stack(x, initial_state=(zeros, zeros))
    np.testing.assert_allclose(out_default, out_zero, atol=1e-6)
    out_ones, _ = stack(x, initial_state=(zeros + 1, zeros + 1))
    assert np.max(np.abs(np.asarray(out_ones) - np.asarray(out_zero))) > 1e-3
    with pytest.raises(ValueError, match=r"\(h0, c0\)"):
        stack(x, initial_state=zeros)


def test_return_sequences_false_concatenates_final_h_of_each_direction():
    keras.utils.set_random_seed(4)
    stack = RecurrentStack("gru", 3, num_layers=2, bidirectional=True, return_sequences=False)
    out, h_n = stack(_x())
    assert tuple(out.shape) == (3, 6)
    np.testing.assert_allclose(out, np.concatenate([h_n[2], h_n[3]], axis=-1), atol=1e-7)


# -- dropout -------------------------------------------------------------------

def test_dropout_between_layers_only_in_training():
    keras.utils.set_random_seed(5)
    stack = RecurrentStack("lstm", 8, num_layers=2, dropout=0.5)
    x = _x()
    a, _ = stack(x, training=True)
    b, _ = stack(x, training=True)
    assert np.max(np.abs(np.asarray(a) - np.asarray(b))) > 1e-4
    c, _ = stack(x, training=False)
    d, _ = stack(x)
    np.testing.assert_array_equal(c, d)
    # Without dropout, training does not change anything; no dropout after the last layer.
    plain = RecurrentStack("lstm", 8, num_layers=2, dropout=0.0)
    np.testing.assert_array_equal(plain(x, training=True)[0], plain(x, training=False)[0])
    single = RecurrentStack("gru", 8, num_layers=1, dropout=0.5)
    # (GRU trains in Keras' loop and infers in the fused one by default: equal to round-off)
    np.testing.assert_allclose(single(x, training=True)[0], single(x, training=False)[0], atol=1e-6)
    assert len(stack.dropouts) == 1


# -- masking -------------------------------------------------------------------

def test_mask_from_embedding_skips_padding():
    keras.utils.set_random_seed(6)
    tokens = keras.Input(shape=(None,), dtype="int32")
    emb = keras.layers.Embedding(10, 4, mask_zero=True)(tokens)
    out, h_n = RecurrentStack("gru", 5, bidirectional=True)(emb)
    model = keras.Model(tokens, [out, h_n])
    ids = np.array([[3, 4, 5, 0, 0]], "int32")
    _, h_padded = model(ids)
    _, h_short = model(ids[:, :3])
    np.testing.assert_allclose(h_padded, h_short, atol=1e-6)


# -- serialization -------------------------------------------------------------

def test_get_config_from_config_symmetric():
    stack = RecurrentStack(
        "lstm", 6, num_layers=3, bidirectional=True, dropout=0.3, proj_size=2,
        use_bias=False, return_sequences=False, seed=7, kernel_initializer="he_normal",
        name="stack",
    )
    config = stack.get_config()
    for key in ("mode", "units", "num_layers", "bidirectional", "dropout", "proj_size",
                "use_bias", "return_sequences", "seed", "kernel_initializer",
                "recurrent_initializer", "bias_initializer"):
        assert key in config
    clone = RecurrentStack.from_config(config)
    assert clone.get_config() == config
    assert (clone.num_layers, clone.proj_size, clone.dropout, clone.name) == (3, 2, 0.3, "stack")


@pytest.mark.parametrize(
    "mode,options", [("lstm", dict(num_layers=2, bidirectional=True, proj_size=3, dropout=0.2)),
                     ("gru", dict(num_layers=2)), ("rnn_relu", dict(bidirectional=True))],
)
def test_keras_save_load_round_trip_safe_mode(tmp_path, mode, options):
    keras.utils.set_random_seed(8)
    inp = keras.Input(shape=(None, 4), name="x")
    out, states = RecurrentStack(mode, 5, name="stack", **options)(inp)
    h_n = states[0] if mode == "lstm" else states
    model = keras.Model(inp, [out, h_n])
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    x = _x()
    for a, b in zip(model(x), loaded(x)):
        np.testing.assert_array_equal(a, b)
    assert isinstance(loaded.get_layer("stack"), RecurrentStack)


def test_initial_state_inside_a_functional_model_saves(tmp_path):
    keras.utils.set_random_seed(9)
    inp = keras.Input(shape=(None, 4))
    h0 = keras.Input(batch_shape=(2, None, 3))  # (L*D, B, H) with a dynamic batch axis
    out, h_n = RecurrentStack("gru", 3, num_layers=2)(inp, initial_state=h0)
    model = keras.Model([inp, h0], [out, h_n])
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras", safe_mode=True)
    x, state = _x(), np.random.default_rng(1).standard_normal((2, 3, 3)).astype("float32")
    for a, b in zip(model([x, state]), loaded([x, state])):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(loaded([x, state])[1][0], model([x, state])[1][0])


def test_trains_in_a_model():
    keras.utils.set_random_seed(10)
    inp = keras.Input(shape=(5, 4))
    out, _ = RecurrentStack("lstm", 6, num_layers=2, bidirectional=True, dropout=0.1,
                            return_sequences=False)(inp)
    model = keras.Model(inp, keras.layers.Dense(1)(out))
    model.compile("adam", "mse")
    x, y = _x(16), np.ones((16, 1), "float32")
    before = model.evaluate(x, y, verbose=0)
    model.fit(x, y, epochs=3, batch_size=8, verbose=0)
    assert model.evaluate(x, y, verbose=0) < before


# -- validation ----------------------------------------------------------------

@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(mode="transformer", units=4), "transformer"),
        (dict(mode="gru", units=4, proj_size=2), "proj_size=2"),
        (dict(mode="lstm", units=4, proj_size=4), "proj_size=4"),
        (dict(mode="lstm", units=4, proj_size=-1), "proj_size=-1"),
        (dict(mode="lstm", units=4, dropout=1.0), "dropout=1.0"),
        (dict(mode="lstm", units=4, dropout=-0.1), "dropout=-0.1"),
        (dict(mode="lstm", units=4, num_layers=0), "num_layers=0"),
        (dict(mode="lstm", units=4, num_layers=1.5), "num_layers=1.5"),
        (dict(mode="lstm", units=0), "units=0"),
    ],
)
def test_argument_validation(kwargs, match):
    with pytest.raises(ValueError, match=match):
        RecurrentStack(**kwargs)
