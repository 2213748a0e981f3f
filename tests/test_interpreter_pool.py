"""`InterpreterPool`: several LiteRT interpreters, batches run concurrently."""

from __future__ import annotations

import threading
import time

import keras
import numpy as np
import pytest
import tensorflow as tf

from kerasrnn import layers as krl
from kerasrnn.errors import UserError
from kerasrnn.export import classification, forecasting, tflite
from kerasrnn.export.interpreter_pool import InterpreterPool, default_workers
from kerasrnn.export.tokenizer import Tokenizer


@pytest.fixture(scope="module")
def forecaster_flatbuffer():
    """A dynamic-batch GRU forecaster (window 5, 2 features -> 3 values) as TFLite bytes."""
    keras.utils.set_random_seed(3)
    inp = keras.Input(shape=(5, 2), name="window")
    model = keras.Model(inp, keras.layers.Dense(3)(krl.GRU(6)(inp)))
    with tflite.while_loops(model):
        concrete = tflite.frozen_function(model, [tf.TensorSpec((None, 5, 2), tf.float32, name="window")],
                                          ["forecast"])
    return model, tflite.convert(concrete)


class _Watched:
    """A signature runner that records which threads used it and fails if two use it at once."""

    def __init__(self, runner, log):
        self.runner, self.log, self.busy = runner, log, threading.Lock()

    def __call__(self, **inputs):
        assert self.busy.acquire(blocking=False), "an interpreter was used by two threads at once"
        try:
            self.log.append((id(self), threading.get_ident()))
            time.sleep(0.002)  # long enough that a second thread would overlap if the pool let it
            return self.runner(**inputs)
        finally:
            self.busy.release()


def test_map_runs_on_every_interpreter_concurrently_in_order(forecaster_flatbuffer):
    model, content = forecaster_flatbuffer
    pool = InterpreterPool(content, workers=2)
    log = []
    pool.runners = [_Watched(r, log) for r in pool.runners]
    rng = np.random.default_rng(0)
    calls = [{"window": rng.normal(size=(int(n), 5, 2)).astype("float32")} for n in rng.integers(1, 9, size=24)]
    outs = pool.map(calls)
    assert len(outs) == len(calls)
    for call, out in zip(calls, outs):
        np.testing.assert_allclose(out["forecast"], model(call["window"]).numpy(), atol=1e-5)
    assert {runner for runner, _ in log} == {id(r) for r in pool.runners}  # both interpreters worked
    assert len({thread for _, thread in log}) == 2
    for runner in pool.runners:  # each interpreter stayed on one thread
        assert len({thread for r, thread in log if r == id(runner)}) == 1


def test_map_from_two_threads_never_shares_an_interpreter(forecaster_flatbuffer):
    _, content = forecaster_flatbuffer
    pool = InterpreterPool(content, workers=2)
    pool.runners = [_Watched(r, []) for r in pool.runners]
    calls = [{"window": np.full((3, 5, 2), i, np.float32)} for i in range(8)]
    results, errors = {}, []

    def work(k):
        try:
            results[k] = pool.map(calls)
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    for a, b in zip(results[0], results[1]):
        np.testing.assert_array_equal(a["forecast"], b["forecast"])


def test_one_worker_runs_in_the_calling_thread_and_bad_counts_fail(forecaster_flatbuffer):
    _, content = forecaster_flatbuffer
    pool = InterpreterPool(content, workers=1)
    log = []
    pool.runners = [_Watched(r, log) for r in pool.runners]
    pool.map([{"window": np.zeros((2, 5, 2), np.float32)}] * 3)
    assert {thread for _, thread in log} == {threading.get_ident()}
    for bad in (0, -2):
        with pytest.raises(UserError, match=f"workers must be at least 1, got {bad}"):
            InterpreterPool(content, workers=bad)
    assert 1 <= default_workers() <= 2


def test_a_worker_error_reaches_the_caller(forecaster_flatbuffer):
    _, content = forecaster_flatbuffer
    pool = InterpreterPool(content, workers=2)
    with pytest.raises(Exception):
        pool.map([{"window": np.zeros((2, 5, 2), np.float32)}, {"window": np.zeros((2, 4, 9), np.float32)}])
    out = pool.map([{"window": np.zeros((1, 5, 2), np.float32)}] * 2)  # the pool still works afterwards
    assert out[0]["forecast"].shape == (1, 3)


def test_forecaster_and_classifier_answers_do_not_depend_on_workers(forecaster_flatbuffer):
    model, content = forecaster_flatbuffer
    windows = np.random.default_rng(1).normal(size=(23, 5, 2)).astype("float32")
    by_workers = [forecasting.Forecaster("tflite", content, {}, batch_size=4, workers=w).predict(windows)
                  for w in (1, 2)]
    np.testing.assert_array_equal(by_workers[0], by_workers[1])
    np.testing.assert_allclose(by_workers[0], model(windows).numpy(), atol=1e-5)

    keras.utils.set_random_seed(4)
    ids = keras.Input(shape=(None,), dtype="int32", name="token_ids")
    h = keras.layers.Bidirectional(krl.LSTM(5))(keras.layers.Embedding(9, 4, mask_zero=True)(ids))
    clf_model = keras.Model(ids, keras.layers.Dense(3, activation="softmax")(h))
    with tflite.while_loops(clf_model):
        concrete = tflite.frozen_function(clf_model, [tf.TensorSpec((None, None), tf.int32, name="token_ids")],
                                          ["probs"])
    flat = tflite.convert(concrete)
    tok = Tokenizer(["", "[UNK]", "good", "bad", "film", "plot", "its", "fine", "dull"], max_len=6)
    texts = ["good film", "Bad plot, dull!", "it's fine", "", "good good good good good good good", "x"] * 4
    probs = [classification.Classifier("tflite", flat, ["a", "b", "c"], tok, batch_size=3, workers=w)
             .predict_proba(texts) for w in (1, 2)]
    np.testing.assert_array_equal(probs[0], probs[1])
    padded = tok.encode_array(texts)
    want = np.stack([clf_model(padded[i:i + 1, : max(1, int((padded[i] != 0).sum()))]).numpy()[0]
                     for i in range(len(texts))])
    np.testing.assert_allclose(probs[0], want, atol=1e-5)
    clf = classification.Classifier("tflite", flat, ["a", "b", "c"], tok)
    for empty in ([], np.zeros((0, 6), np.int32)):
        with pytest.raises(UserError, match="no texts to classify"):
            clf.predict_proba(empty) if isinstance(empty, list) else clf.predict_ids(empty)
    with pytest.raises(UserError, match="no windows to forecast"):
        forecasting.Forecaster("tflite", content, {}).predict(np.zeros((0, 5, 2), np.float32))
