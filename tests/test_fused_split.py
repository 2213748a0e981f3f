"""The fused loop runs a large batch as concurrent loops (`fused.batch_parts`): when, and that it is exact.

Batch rows never interact, so splitting must give the built-in layer's outputs,
states and gradients (input, initial states, every weight) in both modes;
`PathRecord.parts` shows the split happened, and the conditions under which it
must not (eagerly, inside an XLA program, small or odd batches, one core, an
inter-op pool of one thread) each keep a single loop.
"""

import keras
import numpy as np
import pytest
import tensorflow as tf

import kerasrnn.layers as krl
from kerasrnn import verify
from kerasrnn.layers import compat, fused

RNG = np.random.default_rng(0)


@pytest.fixture
def two_cores(monkeypatch):
    """The split needs two cores for this process; fix it so the tests do not depend on the machine."""
    monkeypatch.setattr(fused, "_usable_cores", lambda: 2)


def parts_in(fn, x):
    """`batch_parts(x)` as seen while tracing `fn` (a tf.function wrapper) or eagerly when `fn` is None."""
    seen = []

    def probe(x):
        seen.append(fused.batch_parts(x))
        return x

    (probe if fn is None else fn(probe))(x)
    return seen[0]


def test_in_xla_context_tells_a_jit_compiled_trace_from_a_plain_one():
    assert fused.in_xla_context() is False
    assert not tf.function(lambda: tf.constant(fused.in_xla_context()))().numpy()
    assert tf.function(lambda: tf.constant(fused.in_xla_context()), jit_compile=True)().numpy()
    inner = tf.function(lambda: tf.constant(fused.in_xla_context()))
    assert tf.function(lambda: inner(), jit_compile=True)().numpy()  # a plain function called from XLA


def test_a_moved_private_tensorflow_symbol_fails_loudly(monkeypatch):
    monkeypatch.setitem(compat.PRIVATE_IMPORTS, "GraphOrParentsInXlaContext",
                        ("tensorflow.python.ops.control_flow_util", "NoLongerHere"))
    with pytest.raises(ImportError, match=r"from TensorFlow, which TensorFlow .* tensorflow==2\.21\.0"):
        fused.in_xla_context()


def test_batch_parts_splits_only_where_the_parts_run_at_the_same_time(two_cores, monkeypatch):
    x32 = tf.zeros((32, 5, 3))
    assert parts_in(tf.function, x32) == fused.BATCH_PARTS == 2
    assert parts_in(None, x32) == 1                                          # eagerly: one after the other
    assert parts_in(lambda f: tf.function(f, jit_compile=True), x32) == 1    # one XLA program
    assert parts_in(tf.function, tf.zeros((8, 5, 3))) == 1                   # below MIN_SPLIT_BATCH
    assert parts_in(tf.function, tf.zeros((17, 5, 3))) == 1                  # odd batch
    dynamic = tf.function(lambda x: tf.constant(fused.batch_parts(x)),
                          input_signature=[tf.TensorSpec((None, 5, 3))])
    assert int(dynamic(x32)) == 1                                            # batch unknown while tracing
    monkeypatch.setattr(tf.config.threading, "get_inter_op_parallelism_threads", lambda: 1)
    assert parts_in(tf.function, x32) == 1
    monkeypatch.undo()
    monkeypatch.setattr(fused, "_usable_cores", lambda: 1)
    assert parts_in(tf.function, x32) == 1
    monkeypatch.setattr(fused, "_usable_cores", lambda: 2)
    monkeypatch.setattr(fused, "BATCH_PARTS", 1)
    assert parts_in(tf.function, x32) == 1


def test_the_verify_graph_scenarios_are_large_enough_to_split():
    assert verify.GRAPH_BATCH >= fused.MIN_SPLIT_BATCH and verify.GRAPH_BATCH % fused.BATCH_PARTS == 0


def _pair(name, kwargs, builtin_kwargs):
    ours = getattr(krl, name)(6, return_sequences=True, return_state=True, **kwargs)
    builtin = getattr(keras.layers, name)(6, return_sequences=True, return_state=True, **builtin_kwargs)
    return ours, builtin


CELLS = [
    ("LSTM", {}),
    ("GRU", {"reset_after": True}),
    ("GRU", {"reset_after": False, "use_bias": False}),
    ("SimpleRNN", {}),
    ("SimpleRNN", {"activation": "relu"}),
]


@pytest.mark.parametrize("name, options", CELLS, ids=lambda v: v if isinstance(v, str) else str(v))
@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("go_backwards", [False, True])
def test_split_batch_equals_the_builtin_with_every_gradient(two_cores, name, options, training, go_backwards):
    kwargs = dict(options, go_backwards=go_backwards)
    ours, builtin = _pair(name, kwargs, kwargs)
    x = tf.constant(RNG.normal(size=(16, 7, 5)).astype("float32"))
    n_states = 2 if name == "LSTM" else 1
    states = [tf.constant(RNG.normal(size=(16, 6)).astype("float32")) for _ in range(n_states)]
    for layer in (builtin, ours):
        layer(x, initial_state=states)
    for w in builtin.weights:
        w.assign(RNG.normal(scale=0.25, size=w.shape).astype("float32"))
    ours.set_weights(builtin.get_weights())
    loss_weights = [RNG.normal(size=(16, 7, 6)).astype("float32")] + [
        RNG.normal(size=(16, 6)).astype("float32") for _ in range(n_states + 1)]

    def run(layer):
        @tf.function  # a plain graph, as model.fit/predict with compile defaults
        def step(x, *states):
            with tf.GradientTape() as tape:
                tape.watch([x, *states])
                outputs = layer(x, initial_state=list(states), training=training)
                loss = tf.add_n([tf.reduce_sum(o * w) for o, w in zip(outputs, loss_weights)])
            return outputs, tape.gradient(loss, [x, *states, *layer.trainable_weights])

        outputs, grads = step(x, *states)
        return [o.numpy() for o in outputs], [g.numpy() for g in grads]

    (b_out, b_grad), (o_out, o_grad) = run(builtin), run(ours)
    assert (ours.path_record.last, ours.path_record.parts) == ("fused", 2)
    assert len(b_grad) == len(o_grad)
    for b, o in zip(b_out + b_grad, o_out + o_grad):
        np.testing.assert_allclose(o, b, atol=1e-5, rtol=0)


def test_split_bidirectional_in_fit_and_predict_matches_the_builtin(two_cores):
    x = RNG.normal(size=(32, 6, 4)).astype("float32")
    y = RNG.normal(size=(32, 1)).astype("float32")

    def model(layers):
        keras.utils.set_random_seed(3)
        return keras.Sequential([keras.Input((6, 4)), keras.layers.Bidirectional(layers.GRU(5)),
                                 keras.layers.Dense(1)])

    ours, builtin = model(krl), model(keras.layers)
    ours.set_weights(builtin.get_weights())
    for m in (ours, builtin):
        m.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
        m.fit(x, y, batch_size=16, epochs=2, shuffle=False, verbose=0)
    bidi = ours.layers[0]
    assert bidi.forward_layer.path_record.parts == bidi.backward_layer.path_record.parts == 2
    for a, b in zip(ours.get_weights(), builtin.get_weights()):
        np.testing.assert_allclose(a, b, atol=1e-5, rtol=0)
    np.testing.assert_allclose(ours.predict(x, batch_size=32, verbose=0),
                               builtin.predict(x, batch_size=32, verbose=0), atol=1e-5, rtol=0)


@pytest.mark.parametrize("training", [True, False])
def test_split_stateful_last_output_carries_state_across_calls_like_the_builtin(two_cores, training):
    x1, x2 = (tf.constant(RNG.normal(size=(16, 5, 3)).astype("float32")) for _ in range(2))
    ours, builtin = (mod.LSTM(4, stateful=True) for mod in (krl, keras.layers))  # last output only
    for layer in (builtin, ours):
        layer(x1)
        layer.reset_state()
    ours.set_weights(builtin.get_weights())
    results, steps = [], []
    for layer in (builtin, ours):
        steps.append(tf.function(lambda x, layer=layer: layer(x, training=training)))
        results.append([steps[-1](x1).numpy(), steps[-1](x2).numpy()])  # the 2nd starts from the 1st's state
    assert ours.path_record.parts == 2
    for b, o in zip(*results):
        np.testing.assert_allclose(o, b, atol=1e-6, rtol=0)
    ours.reset_state()
    assert np.abs(steps[1](x2).numpy() - results[1][1]).max() > 1e-3  # from zeros it differs: state was carried
