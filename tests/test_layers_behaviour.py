"""Focused behaviour tests of kerasrnn.layers: golden values, masks, state,
dropout, configs, serialization, weight layout and argument checks."""

import json
import math
import pathlib
import re
import subprocess
import sys

import keras
import numpy as np
import pytest

from kerasrnn import layers as ours

TOL = 1e-5
LAYERS = ("SimpleRNN", "LSTM", "GRU")
CELLS = ("SimpleRNNCell", "LSTMCell", "GRUCell")


def det(shape, offset=0.0, scale=0.5):
    """A small deterministic array (no RNG): scale * sin(0.37 k + offset)."""
    n = int(np.prod(shape))
    return (scale * np.sin(0.37 * np.arange(n) + offset)).reshape(shape).astype("float32")


def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def hard_sigmoid(z):  # Keras 3: relu6(x + 3) / 6
    return np.clip(z / 6.0 + 0.5, 0.0, 1.0)


def split_gates(kernel, recurrent_kernel, gates):
    """Seeds' notation: W_g acts on [h_{t-1}, x_t], i.e. stack recurrent over input rows."""
    u = recurrent_kernel.shape[1] // gates
    return [np.concatenate([recurrent_kernel[:, g * u:(g + 1) * u], kernel[:, g * u:(g + 1) * u]], 0)
            for g in range(gates)]


# -- independent numpy references of the seeds' equations ----------------------

def ref_simple_rnn(x, weights, act=np.tanh):
    kernel, rec, bias = (weights + [None])[:3]
    (w,) = split_gates(kernel, rec, 1)
    h = np.zeros((x.shape[0], rec.shape[0]))
    outs = []
    for t in range(x.shape[1]):
        hx = np.concatenate([h, x[:, t]], -1)
        h = act(hx @ w + (0 if bias is None else bias))  # h_t = tanh(W_xh x + W_hh h + b)
        outs.append(h)
    return np.stack(outs, 1), [h]


def ref_lstm(x, weights, rec_act=sigmoid, proj=None):
    kernel, rec, bias = weights[:3]
    w_i, w_f, w_c, w_o = split_gates(kernel, rec, 4)
    b_i, b_f, b_c, b_o = np.split(bias, 4)
    units = kernel.shape[1] // 4
    h = np.zeros((x.shape[0], rec.shape[0]))
    c = np.zeros((x.shape[0], units))
    outs = []
    for t in range(x.shape[1]):
        hx = np.concatenate([h, x[:, t]], -1)
        i = rec_act(hx @ w_i + b_i)                  # input gate
        f = rec_act(hx @ w_f + b_f)                  # forget gate
        c_tilde = np.tanh(hx @ w_c + b_c)            # candidate
        c = f * c + i * c_tilde                      # C_t = f ⊙ C_{t-1} + i ⊙ C̃_t
        o = rec_act(hx @ w_o + b_o)                  # output gate
        h = o * np.tanh(c)                           # h_t = o ⊙ tanh(C_t)
        if proj is not None:
            h = h @ proj
        outs.append(h)
    return np.stack(outs, 1), [h, c]


def ref_gru(x, weights, reset_after):
    kernel, rec, bias = weights
    u = rec.shape[0]
    w_z, w_r, w_h = split_gates(kernel, rec, 3)
    b_in, b_rec = (bias[0], bias[1]) if reset_after else (bias, np.zeros_like(bias))
    h = np.zeros((x.shape[0], u))
    outs = []
    for t in range(x.shape[1]):
        xt = x[:, t]
        hx = np.concatenate([h, xt], -1)
        z = sigmoid(hx @ w_z + b_in[:u] + b_rec[:u])             # update gate
        r = sigmoid(hx @ w_r + b_in[u:2 * u] + b_rec[u:2 * u])   # reset gate
        if reset_after:   # h̃ = tanh(W_x x + b_x + r ⊙ (W_h h + b_h))
            cand = np.tanh(xt @ w_h[u:] + b_in[2 * u:] + r * (h @ w_h[:u] + b_rec[2 * u:]))
        else:             # h̃ = tanh(W·[r ⊙ h, x] + b)
            cand = np.tanh(np.concatenate([r * h, xt], -1) @ w_h + b_in[2 * u:])
        h = z * h + (1 - z) * cand   # Keras/PyTorch convention (seeds: z ↔ 1−z)
        outs.append(h)
    return np.stack(outs, 1), [h]


X = det((2, 3, 5), offset=1.0, scale=1.0)


def _golden_layer(cls_name, **kwargs):
    layer = getattr(ours, cls_name)(4, return_sequences=True, return_state=True, **kwargs)
    layer(X)
    weights = [det(w.shape, offset=k) for k, w in enumerate(layer.get_weights())]
    layer.set_weights(weights)
    out = [keras.ops.convert_to_numpy(o) for o in layer(X)]
    return out[0], out[1:], weights


@pytest.mark.parametrize("kwargs, act", [({}, np.tanh), ({"activation": "relu"}, lambda z: np.maximum(z, 0)),
                                         ({"use_bias": False}, np.tanh)])
def test_golden_simple_rnn(kwargs, act):
    out, states, weights = _golden_layer("SimpleRNN", **kwargs)
    ref_out, ref_states = ref_simple_rnn(X, weights, act)
    np.testing.assert_allclose(out, ref_out, atol=TOL)
    np.testing.assert_allclose(states[0], ref_states[0], atol=TOL)


@pytest.mark.parametrize("kwargs, rec_act", [({}, sigmoid),
                                             ({"recurrent_activation": "hard_sigmoid"}, hard_sigmoid)])
def test_golden_lstm(kwargs, rec_act):
    out, states, weights = _golden_layer("LSTM", **kwargs)
    ref_out, ref_states = ref_lstm(X, weights, rec_act)
    np.testing.assert_allclose(out, ref_out, atol=TOL)
    for got, want in zip(states, ref_states):
        np.testing.assert_allclose(got, want, atol=TOL)


def test_golden_lstm_projection():
    out, states, weights = _golden_layer("LSTM", proj_size=3)
    assert [w.shape for w in weights] == [(5, 16), (3, 16), (16,), (4, 3)]
    ref_out, ref_states = ref_lstm(X, weights, proj=weights[3])
    assert out.shape == (2, 3, 3) and states[0].shape == (2, 3) and states[1].shape == (2, 4)
    np.testing.assert_allclose(out, ref_out, atol=TOL)
    for got, want in zip(states, ref_states):
        np.testing.assert_allclose(got, want, atol=TOL)


@pytest.mark.parametrize("reset_after", [True, False])
def test_golden_gru(reset_after):
    out, states, weights = _golden_layer("GRU", reset_after=reset_after)
    ref_out, ref_states = ref_gru(X, weights, reset_after)
    np.testing.assert_allclose(out, ref_out, atol=TOL)
    np.testing.assert_allclose(states[0], ref_states[0], atol=TOL)


def test_gru_seed_convention_is_z_renamed():
    """Seeds: h = (1−z)h + z h̃. Negating the z weights (σ(−a) = 1−σ(a)) gives Keras' GRU."""
    _, _, weights = _golden_layer("GRU", reset_after=False)
    kernel, rec, bias = weights
    u = 4
    seed_w = [kernel.copy(), rec.copy(), bias.copy()]
    for w in seed_w:
        w[..., :u] *= -1
    x = X.astype("float64")
    w_z, w_r, w_h = split_gates(*seed_w[:2], 3)
    h = np.zeros((2, u))
    for t in range(3):
        hx = np.concatenate([h, x[:, t]], -1)
        z = sigmoid(hx @ w_z + seed_w[2][:u])
        r = sigmoid(hx @ w_r + seed_w[2][u:2 * u])
        cand = np.tanh(np.concatenate([r * h, x[:, t]], -1) @ w_h + seed_w[2][2 * u:])
        h = (1 - z) * h + z * cand
    np.testing.assert_allclose(h, ref_gru(X, weights, False)[1][0], atol=TOL)


def test_golden_cells_one_step():
    """Each cell alone, one step, against the numpy step."""
    x = X[:, 0]
    for name, ref, state_n in [("SimpleRNNCell", ref_simple_rnn, 1), ("LSTMCell", ref_lstm, 2),
                               ("GRUCell", lambda x, w: ref_gru(x, w, True), 1)]:
        cell = getattr(ours, name)(4)
        cell.build((2, 5))
        weights = [det(w.shape, offset=k) for k, w in enumerate(cell.get_weights())]
        cell.set_weights(weights)
        states = [np.zeros((2, 4), "float32") for _ in range(state_n)]
        y, new_states = cell(x, states)
        ref_out, ref_states = ref(x[:, None], weights)
        np.testing.assert_allclose(keras.ops.convert_to_numpy(y), ref_out[:, 0], atol=TOL)
        for got, want in zip(new_states, ref_states):
            np.testing.assert_allclose(keras.ops.convert_to_numpy(got), want, atol=TOL)


def test_golden_constant_initializers():
    """Hand-computed values for Constant initialisers on an all-ones input (in=5)."""
    const = keras.initializers.Constant
    ones = np.ones((1, 2, 5), "float32")
    init = dict(kernel_initializer=const(0.1), recurrent_initializer=const(0.1))
    # SimpleRNN(3): h1 = tanh(5*0.1), h2 = tanh(0.5 + 3*0.1*h1)
    out = ours.SimpleRNN(3, return_sequences=True, **init)(ones).numpy()
    h1 = math.tanh(0.5)
    np.testing.assert_allclose(out[0, :, 0], [h1, math.tanh(0.5 + 0.3 * h1)], atol=TOL)
    # LSTM(2), unit_forget_bias: forget bias 1, others 0 -> step 1 pre-activations 0.5 (f: 1.5)
    lstm = ours.LSTM(2, return_state=True, bias_initializer=const(0.0), **init)
    _, h, c = [t.numpy() for t in lstm(ones[:, :1])]
    s = lambda v: 1 / (1 + math.exp(-v))  # noqa: E731
    np.testing.assert_array_equal(lstm.get_weights()[2], [0, 0, 1, 1, 0, 0, 0, 0])
    c1 = s(0.5) * math.tanh(0.5)
    np.testing.assert_allclose(c[0], [c1, c1], atol=TOL)
    np.testing.assert_allclose(h[0], [s(0.5) * math.tanh(c1)] * 2, atol=TOL)
    # GRU(2) reset_after, zero bias: h1 = (1 - σ(0.5)) * tanh(0.5)
    gru = ours.GRU(2, bias_initializer="zeros", **init)
    np.testing.assert_allclose(gru(ones[:, :1]).numpy()[0], [(1 - s(0.5)) * math.tanh(0.5)] * 2, atol=TOL)


def test_unit_forget_bias_layout_matches_builtin():
    keras.utils.set_random_seed(0)
    const = keras.initializers.Constant(0.25)
    x = np.zeros((1, 2, 3), "float32")
    for ufb in (True, False):
        a = ours.LSTM(3, bias_initializer=const, unit_forget_bias=ufb)
        b = keras.layers.LSTM(3, bias_initializer=const, unit_forget_bias=ufb)
        a(x), b(x)
        np.testing.assert_array_equal(a.get_weights()[2], b.get_weights()[2])


# -- masks ----------------------------------------------------------------------

@pytest.mark.parametrize("name", LAYERS)
def test_mask_carries_state_through_padding(name):
    """Embedding(mask_zero=True) in a model: padded steps repeat the previous
    output and state, so the final state equals the unpadded sequence's."""
    keras.utils.set_random_seed(1)
    tokens = keras.Input((None,), dtype="int32")
    emb = keras.layers.Embedding(9, 5, mask_zero=True)
    layer = getattr(ours, name)(4, return_sequences=True, return_state=True)
    model = keras.Model(tokens, layer(emb(tokens)))
    padded = np.array([[0, 3, 0, 5, 0, 0, 7, 0]], "int32")
    compact = np.array([[3, 5, 7]], "int32")
    out_p = [t.numpy() for t in model(padded)]
    out_c = [t.numpy() for t in model(compact)]
    for got, want in zip(out_p[1:], out_c[1:]):
        np.testing.assert_allclose(got, want, atol=TOL)
    seq = out_p[0][0]
    np.testing.assert_array_equal(seq[0], np.zeros(4))          # before any token: h0 = 0
    np.testing.assert_allclose(seq[[1, 3, 6]], out_c[0][0], atol=TOL)
    np.testing.assert_array_equal(seq[2], seq[1])                # masked: carried
    np.testing.assert_array_equal(seq[4], seq[3])
    np.testing.assert_array_equal(seq[7], seq[6])
    assert model.layers[-1].compute_mask(np.zeros((1, 8, 5)), np.ones((1, 8), bool)) is not None


@pytest.mark.parametrize("name", LAYERS)
def test_mask_in_functional_model_matches_builtin(name):
    keras.utils.set_random_seed(2)
    ids = np.array([[1, 2, 0, 3, 0, 4], [0, 0, 5, 6, 7, 8], [5, 6, 7, 0, 0, 0]], "int32")
    outputs = []
    for lib in (keras.layers, ours):
        tokens = keras.Input((None,), dtype="int32")
        x = keras.layers.Embedding(9, 5, mask_zero=True, name="embedding")(tokens)
        x = keras.layers.Bidirectional(getattr(lib, name)(4, return_sequences=True))(x)
        x = getattr(lib, name)(3)(x)
        outputs.append(keras.Model(tokens, x))
    outputs[1].set_weights(outputs[0].get_weights())
    np.testing.assert_allclose(outputs[1](ids).numpy(), outputs[0](ids).numpy(), atol=TOL)


# -- state ----------------------------------------------------------------------

@pytest.mark.parametrize("name", LAYERS)
def test_stateful_carries_state_and_reset(name):
    keras.utils.set_random_seed(3)
    rng = np.random.default_rng(3)
    x1, x2 = (rng.normal(size=(3, 6, 5)).astype("float32") for _ in range(2))
    layer = getattr(ours, name)(4, stateful=True, return_state=True)
    plain = getattr(ours, name)(4, return_state=True)
    layer(x1), plain(x1)
    plain.set_weights(layer.get_weights())
    layer.reset_state()
    first = [t.numpy() for t in layer(x1)]
    second = layer(x2)[0].numpy()
    np.testing.assert_allclose(second, plain(x2, initial_state=first[1:])[0].numpy(), atol=TOL)
    assert np.max(np.abs(second - plain(x2)[0].numpy())) > 1e-3  # state really carried
    layer.reset_state()
    np.testing.assert_allclose(layer(x2)[0].numpy(), plain(x2)[0].numpy(), atol=TOL)


@pytest.mark.parametrize("name", LAYERS)
def test_bidirectional_uses_our_class_both_ways(name):
    bi = keras.layers.Bidirectional(getattr(ours, name)(4, return_sequences=True))
    out = bi(np.zeros((2, 6, 5), "float32"))
    assert tuple(out.shape) == (2, 6, 8)
    assert type(bi.forward_layer) is type(bi.backward_layer) is getattr(ours, name)
    assert bi.backward_layer.go_backwards and not bi.forward_layer.go_backwards


# -- dropout --------------------------------------------------------------------

@pytest.mark.parametrize("name", LAYERS)
def test_dropout_training_changes_outputs_and_is_seeded(name):
    x = np.random.default_rng(4).normal(size=(3, 6, 5)).astype("float32")
    a = getattr(ours, name)(4, dropout=0.4, recurrent_dropout=0.4, seed=11, return_sequences=True)
    b = getattr(ours, name)(4, dropout=0.4, recurrent_dropout=0.4, seed=11, return_sequences=True)
    a(x), b(x)
    b.set_weights(a.get_weights())
    # (Keras draws the masks on every call, so call both layers identically.)
    train_a = a(x, training=True).numpy()
    train_b = b(x, training=True).numpy()
    inference = a(x, training=False).numpy()
    np.testing.assert_array_equal(inference, a(x).numpy())      # default: no dropout
    assert np.max(np.abs(train_a - inference)) > 1e-3            # dropout is applied
    np.testing.assert_array_equal(train_a, train_b)              # same seed, same masks
    assert np.max(np.abs(a(x, training=True).numpy() - train_a)) > 1e-3  # fresh masks next batch


@pytest.mark.parametrize("name", LAYERS)
def test_regularizer_losses_match_builtin(name):
    x = np.random.default_rng(6).normal(size=(3, 6, 5)).astype("float32")
    kwargs = dict(kernel_regularizer="l2", recurrent_regularizer=keras.regularizers.L1(0.02),
                  bias_regularizer="l2", bias_initializer="ones", return_sequences=True)
    if name != "SimpleRNN":  # keras.layers.SimpleRNN silently ignores activity_regularizer
        kwargs["activity_regularizer"] = keras.regularizers.L2(0.1)
    a, b = getattr(keras.layers, name)(4, **kwargs), getattr(ours, name)(4, **kwargs)
    a(x), b(x)
    b.set_weights(a.get_weights())
    a(x), b(x)
    want = sorted(float(v) for v in a.losses)
    assert len(want) == len(kwargs) - 2 and min(want) > 0
    np.testing.assert_allclose(sorted(float(v) for v in b.losses), want, rtol=1e-6)


def test_fit_with_dropout_matches_builtin():
    """Two epochs of Adam with seeded dropout/recurrent dropout: same weights as the built-ins."""
    rng = np.random.default_rng(7)
    x = rng.normal(size=(8, 6, 5)).astype("float32")
    y = rng.normal(size=(8, 1)).astype("float32")

    def build(lib):
        keras.utils.set_random_seed(0)
        model = keras.Sequential([
            keras.Input((6, 5)),
            lib.GRU(4, return_sequences=True, dropout=0.2, recurrent_dropout=0.2, seed=3),
            lib.LSTM(4, return_sequences=True, recurrent_dropout=0.1, seed=4),
            lib.SimpleRNN(3, dropout=0.1, seed=5),
            keras.layers.Dense(1),
        ])
        model.compile(keras.optimizers.Adam(0.01), "mse")
        return model

    builtin, mine = build(keras.layers), build(ours)
    mine.set_weights(builtin.get_weights())
    before = [w.copy() for w in mine.get_weights()]
    for model in (builtin, mine):
        model.fit(x, y, batch_size=4, epochs=2, shuffle=False, verbose=0)
    assert max(np.abs(p - q).max() for p, q in zip(mine.get_weights(), before)) > 1e-3
    for p, q in zip(mine.get_weights(), builtin.get_weights()):
        np.testing.assert_allclose(p, q, atol=TOL)


# -- configuration, serialization, weight layout ---------------------------------

NON_DEFAULT = {
    "SimpleRNN": dict(activation="relu", use_bias=False, dropout=0.1, recurrent_dropout=0.2, seed=5,
                      kernel_regularizer="l2", recurrent_constraint="non_neg", go_backwards=True),
    "LSTM": dict(recurrent_activation="hard_sigmoid", unit_forget_bias=False, proj_size=2,
                 bias_regularizer=keras.regularizers.L1(0.01), kernel_constraint="max_norm",
                 stateful=True, unroll=True, return_state=True),
    "GRU": dict(reset_after=False, recurrent_initializer="glorot_normal", dropout=0.3, seed=2,
                return_sequences=True, activity_regularizer="l1"),
}


@pytest.mark.parametrize("name", LAYERS)
@pytest.mark.parametrize("non_default", [False, True])
def test_layer_config_round_trip(name, non_default):
    cls = getattr(ours, name)
    layer = cls(4, **(NON_DEFAULT[name] if non_default else {}))
    config = layer.get_config()
    json.dumps(config)
    clone = cls.from_config(config)
    assert clone.get_config() == config
    assert type(clone.cell) is type(layer.cell)
    if non_default:
        for key, value in NON_DEFAULT[name].items():
            if isinstance(value, (bool, int, float)) or value is None:
                assert config[key] == value, key


@pytest.mark.parametrize("name", CELLS)
def test_cell_config_round_trip(name):
    cls = getattr(ours, name)
    extra = {"LSTMCell": {"proj_size": 3}, "GRUCell": {"reset_after": False}}.get(name, {})
    cell = cls(5, activation="relu", dropout=0.2, seed=1, bias_constraint="non_neg", **extra)
    config = cell.get_config()
    assert cls.from_config(config).get_config() == config
    for key, value in extra.items():
        assert config[key] == value


@pytest.mark.parametrize("name", LAYERS)
def test_accepts_builtin_config(name):
    """Same constructor arguments: a built-in layer's config builds ours with the same values."""
    builtin = getattr(keras.layers, name)(6, return_sequences=True, dropout=0.25, seed=3,
                                          kernel_regularizer="l2", go_backwards=True)
    config = builtin.get_config()
    config.pop("use_cudnn", None)
    mine = getattr(ours, name).from_config(config)
    mine_config = mine.get_config()
    for key, value in config.items():
        assert mine_config[key] == value, key


@pytest.mark.parametrize("name, kwargs", [("SimpleRNN", {}), ("LSTM", {}), ("LSTM", {"use_bias": False}),
                                          ("GRU", {}), ("GRU", {"reset_after": False})])
def test_weight_names_and_shapes_match_builtin(name, kwargs):
    x = np.zeros((2, 6, 5), "float32")
    a = getattr(ours, name)(4, **kwargs, name="a")
    b = getattr(keras.layers, name)(4, **kwargs, name="b")
    wa, wb = keras.layers.Bidirectional(a), keras.layers.Bidirectional(b)
    for layer in (a, b, wa, wb):
        layer(x)

    def layout(layer, prefix):
        return [(w.path.replace(prefix, "", 1), tuple(w.shape)) for w in layer.weights]

    assert layout(a, "a/") == layout(b, "b/")
    assert [w.path.split("/", 1)[1] for w in a.weights] == [
        f"{a.cell.name}/{n}" for n in ["kernel", "recurrent_kernel", "bias"][: 3 if a.cell.use_bias else 2]]
    assert [tuple(w.shape) for w in wa.weights] == [tuple(w.shape) for w in wb.weights]
    # and RNN(cell) wrappers
    ca = keras.layers.RNN(getattr(ours, name + "Cell")(4, **kwargs))
    cb = keras.layers.RNN(getattr(keras.layers, name + "Cell")(4, **kwargs))
    ca(x), cb(x)
    assert [(w.name, tuple(w.shape)) for w in ca.weights] == [(w.name, tuple(w.shape)) for w in cb.weights]


def test_keras_save_load_safe_mode_fresh_process(tmp_path):
    keras.utils.set_random_seed(5)
    tokens = keras.Input((None,), dtype="int32", name="tokens")
    x = keras.layers.Embedding(12, 5, mask_zero=True, name="embedding")(tokens)
    x = keras.layers.Bidirectional(ours.LSTM(4, return_sequences=True), name="rnn_0")(x)
    x = ours.GRU(4, reset_after=False, return_sequences=True, name="rnn_1")(x)
    x = ours.LSTM(4, proj_size=3, dropout=0.2, seed=1, return_sequences=True, name="rnn_2")(x)
    x = keras.layers.RNN(ours.GRUCell(3), return_sequences=True, name="rnn_3")(x)
    x = ours.SimpleRNN(3, activation="relu", name="rnn_4")(x)
    model = keras.Model(tokens, keras.layers.Dense(2, name="out")(x))
    ids = np.array([[1, 2, 0, 3, 4, 0], [5, 6, 7, 8, 9, 10], [0, 0, 1, 2, 0, 0]], "int32")
    path = tmp_path / "m.keras"
    model.save(path)
    np.save(tmp_path / "ids.npy", ids)
    np.save(tmp_path / "expected.npy", model(ids).numpy())
    script = f"""
import os
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"
import numpy as np, keras
import kerasrnn.layers as L
m = keras.saving.load_model({str(path)!r}, safe_mode=True)
got = m(np.load({str(tmp_path / "ids.npy")!r})).numpy()
want = np.load({str(tmp_path / "expected.npy")!r})
kinds = [type(m.get_layer(n)).__name__ for n in ("rnn_1", "rnn_2", "rnn_4")]
assert kinds == ["GRU", "LSTM", "SimpleRNN"], kinds
assert type(m.get_layer("rnn_0").forward_layer) is L.LSTM
assert type(m.get_layer("rnn_3").cell) is L.GRUCell
assert m.get_layer("rnn_2").cell.proj_size == 3
print("MAXDIFF", float(np.max(np.abs(got - want))))
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "MAXDIFF 0.0" in result.stdout


# -- argument checks, backend independence ----------------------------------------

@pytest.mark.parametrize("name", LAYERS + CELLS)
@pytest.mark.parametrize("kwargs, echo", [({"units": 0}, "units=0"), ({"units": -3}, "units=-3"),
                                          ({"units": 4, "dropout": 1.5}, "dropout=1.5"),
                                          ({"units": 4, "recurrent_dropout": -0.1}, "recurrent_dropout=-0.1")])
def test_bad_arguments_echo_the_value(name, kwargs, echo):
    with pytest.raises(ValueError, match=re.escape(echo)):
        getattr(ours, name)(**kwargs)


def test_bad_proj_size_echoes_the_value():
    with pytest.raises(ValueError, match="proj_size=-2"):
        ours.LSTM(4, proj_size=-2)


def test_no_tensorflow_import_under_layers_but_the_fused_loops():
    """Cells and layers are keras.ops only; `fused.py` (the TF-backend fast path) is the one
    exception, and it imports TensorFlow only on the TensorFlow backend."""
    root = pathlib.Path(ours.__file__).parent
    files = sorted(root.rglob("*.py"))
    assert len(files) >= 5
    pattern = re.compile(r"^\s*(import\s+tensorflow|from\s+tensorflow)\b|\btf\.", re.M)
    offenders = [f.name for f in files if pattern.search(f.read_text())]
    assert offenders == ["fused.py"]
    text = (root / "fused.py").read_text()
    assert 'if keras.backend.backend() == "tensorflow":\n    import tensorflow as tf\nelse:' in text
