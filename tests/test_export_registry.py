"""Adding a task to the export needs one export module and one table line (issue 13)."""

from __future__ import annotations

import json

import keras
import numpy as np
import pytest

import toy_export
from kerasrnn.export import exporter, runners


@pytest.fixture()
def toy_run(tmp_path, monkeypatch):
    monkeypatch.setitem(exporter.TASK_EXPORTS, "scoring", toy_export)  # the one registry line
    keras.utils.set_random_seed(0)
    inp = keras.Input((3,), name="features")
    model = keras.Model(inp, keras.layers.Dense(1, name="score")(keras.layers.Dense(4, activation="tanh")(inp)))
    run = tmp_path / "toy-run"
    run.mkdir()
    (run / "run.json").write_text(json.dumps({"task": "scoring", "name": "toy-run", "recipe": {}}))
    model.save(run / "model.keras")
    np.savez(run / "samples.npz", x=np.random.default_rng(0).normal(size=(16, 3)).astype("float32"))
    return run


@pytest.mark.parametrize("fmt,quantize", [("keras", "none"), ("savedmodel", "none"), ("tflite", "none"),
                                          ("tflite", "float16")])
def test_toy_task_exports_with_one_module_and_one_line(toy_run, fmt, quantize):
    path, manifest = exporter.export_run(toy_run, fmt, quantize, log=lambda *_: None)
    assert manifest["task"] == "scoring" and manifest["parity"]["passed"] and manifest["features"] == 3
    if fmt != "keras":
        runner = runners.open_artifact(path / "model.tflite" if fmt == "tflite" else path, expect_task="scoring")
        x = np.ones((5, 3), np.float32)
        want = np.asarray(keras.saving.load_model(toy_run / "model.keras")(x))
        np.testing.assert_allclose(runner.predict(x), want, atol=1e-2 if quantize == "float16" else 1e-5)


def test_unregistered_task_is_a_one_line_error(toy_run, monkeypatch):
    monkeypatch.delitem(exporter.TASK_EXPORTS, "scoring")
    with pytest.raises(exporter.UserError, match="cannot export a 'scoring' run; export supports generation"):
        exporter.export_run(toy_run, "keras", log=lambda *_: None)
