"""A toy fourth task's export module, for `tests/test_export_registry.py`.

The toy task ("scoring") maps feature vectors (B, 3) to one score (B, 1). This
file is everything the export needs to know about it; registering it is one
line: ``TASK_EXPORTS["scoring"] = toy_export``.
"""

from __future__ import annotations

import numpy as np

from kerasrnn.export import tflite as tflite_mod

GATES = {"float32": {"max_abs_diff": ("<=", 1e-4)}, "float16": {"max_abs_diff": ("<=", 1e-2)},
         "int8": {"max_abs_diff": ("<=", 0.1)}}


def side_files(run, samples, directory):
    return {"features": int(run.model.inputs[0].shape[-1])}


def _metrics(run, predict, samples):
    x = np.asarray(samples["x"], np.float32)
    diff = np.abs(np.asarray(run.model(x)) - np.asarray(predict(x)))
    return {"n": len(x), "max_abs_diff": float(diff.max())}


def keras_parity(run, loaded, samples):
    return _metrics(run, loaded, samples)


def parity(run, runner, samples):
    return _metrics(run, runner.predict, samples)


def _spec(run):
    import tensorflow as tf

    return [tf.TensorSpec((None, int(run.model.inputs[0].shape[-1])), tf.float32, name="features")]


def savedmodel(run):
    model = run.model
    return [("score", lambda features: {"score": model(features)}, _spec(run))], [model], {}


def tflite(run, samples):
    return tflite_mod.frozen_function(run.model, _spec(run), ["score"]), None, {"kind": "scorer"}


class Scorer:
    def __init__(self, fmt, model):
        self.call = (tflite_mod.open_signature(model) if fmt == "tflite" else model.signatures["score"])

    def predict(self, x):
        return np.asarray(self.call(features=np.asarray(x, np.float32))["score"])


def open_runner(fmt, model, manifest, directory):
    return Scorer(fmt, model)
