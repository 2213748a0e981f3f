"""Export contract of forecasting runs: windows in, H forecasts out, batched TFLite, parity in RMSE.

Generic in the window length W, the number of input columns F (target first,
then exogenous columns) and the number of outputs H (1 for a next-value
model, ``eval.horizon`` for a direct multi-horizon head); all three are read
from the model's shapes. Artifacts:

- the run's ``scaler.json`` (if any), copied for reference. Runs whose scaler
  ``kind`` is ``"in_model"`` take and return **original units** (scaling is
  inside the model); older runs (``kind = "minmax"``) work in min-max scaled
  units and the SavedModel's ``forecast_raw`` applies the scaler.
- SavedModel: ``forecast(window: float32 (B, W, F)) -> {"forecast": (B, H)}``
  and ``forecast_raw`` (original units in and out; the same function for
  in-model scaling).
- TFLite: ``window (B, W, F) -> forecast (B, H)`` with a **dynamic batch**
  (`kerasrnn.export.tflite.while_loops`).

Parity: forecasts on the run's sample windows vs the Keras model, and the
RMSE of both against the true values. Deltas are expressed in the series'
scale :math:`s` (``scaler.json["output_scale"]`` for in-model scaling, 1 for
min-max scaled units):
``max_abs_diff_rel = max|Δ| / s`` and
``rmse_increase_rel = max(0, RMSE_export - RMSE_keras) / max(RMSE_keras, s)``.
`GATES`:

- float32: ``max_abs_diff_rel`` <= 1e-4;
- float16: ``rmse_increase_rel`` <= 0.005 and ``max_abs_diff_rel`` <= 0.02;
- int8: ``rmse_increase_rel`` <= 0.05.

>>> fc = open_runner("tflite", "export/tflite/model.tflite", manifest, "export/tflite")  # doctest: +SKIP
>>> fc.predict(windows).shape  # doctest: +SKIP
(8, 1)
"""

from __future__ import annotations

# TensorFlow, Keras and LiteRT are imported at the top: only the commands that export or run an
# artifact import this module (`kerasrnn --help` never does).

import json
from pathlib import Path

import numpy as np
import tensorflow as tf

from kerasrnn.errors import UserError
from kerasrnn.export import tflite as tflite_mod
from kerasrnn.export.interpreter_pool import InterpreterPool

BATCH_SIZE = 256
GATES = {
    "float32": {"max_abs_diff_rel": ("<=", 1e-4)},
    "float16": {"rmse_increase_rel": ("<=", 0.005), "max_abs_diff_rel": ("<=", 0.02)},
    "int8": {"rmse_increase_rel": ("<=", 0.05)},
}


def shapes(model) -> tuple[int, int, int]:
    """``(W, F, H)``: window length, input columns, outputs of a forecasting model."""
    _, window, features = model.inputs[0].shape
    return int(window), int(features), int(model.outputs[0].shape[-1])


def in_model_scaling(scaler: dict | None) -> bool:
    """True when the model takes and returns original units (scaler kind ``"in_model"``)."""
    return bool(scaler) and scaler.get("kind") == "in_model"


def scale_of(scaler: dict | None) -> float:
    """The series' scale used to express parity deltas (1 for min-max scaled units)."""
    if in_model_scaling(scaler):
        return float(scaler.get("output_scale") or 1.0)
    return 1.0


def side_files(run, samples, directory: Path) -> dict:
    """Copy ``scaler.json``; return the manifest's shapes, columns and units."""
    window, features, outputs = shapes(run.model)
    fields = {"window": window, "features": run.info.get("features") or [f"x{i}" for i in range(features)],
              "forecast_size": outputs, "head": run.info.get("head", "next" if outputs == 1 else "direct"),
              "dates": run.info.get("dates")}
    if run.scaler:
        scaler = dict(run.scaler)
        (directory / "scaler.json").write_text(json.dumps(scaler, indent=1) + "\n", encoding="utf-8")
        fields.update(scaler_file="scaler.json", scaler=scaler)
    if in_model_scaling(run.scaler):
        fields["units"] = "original units in and out (scaling is inside the model; scaler.json is informative)"
    else:
        fields["units"] = ("min-max scaled: scaled = (x - min) / (max - min) * (hi - lo) + lo with feature_range "
                           "[lo, hi]; forecast reads and predicts scaled values, forecast_raw original ones")
    return fields


def _metrics(run, predict, samples) -> dict:
    x = np.asarray(samples["x"], np.float32)
    if x.ndim == 2:
        x = x[..., None]
    y = np.asarray(samples["y"], np.float64).reshape(len(x), -1)
    ref = np.asarray(run.model(x, training=False), np.float64).reshape(len(x), -1)
    out = np.asarray(predict(x), np.float64).reshape(len(x), -1)
    y = y[:, : ref.shape[1]]
    ref_c, out_c = ref[:, : y.shape[1]], out[:, : y.shape[1]]
    diff = np.abs(ref - out)
    scale = scale_of(run.scaler)
    rmse_k = float(np.sqrt(((ref_c - y) ** 2).mean()))
    rmse_e = float(np.sqrt(((out_c - y) ** 2).mean()))
    return {"compared_on": "forecast (" + ("original units" if in_model_scaling(run.scaler) else "scaled units") + ")",
            "n": int(len(x)), "max_abs_diff": float(diff.max()), "mean_abs_diff": float(diff.mean()),
            "scale": scale, "max_abs_diff_rel": float(diff.max()) / scale,
            "rmse_keras": rmse_k, "rmse_export": rmse_e, "rmse_delta": rmse_e - rmse_k,
            "rmse_increase_rel": max(0.0, rmse_e - rmse_k) / max(rmse_k, scale)}


def keras_parity(run, loaded, samples) -> dict:
    """The reloaded ``.keras`` model's forecasts vs the run's model."""
    return _metrics(run, lambda x: loaded(x, training=False), samples)


def parity(run, runner, samples) -> dict:
    """The run's model vs `runner.predict` on the sample windows."""
    return _metrics(run, runner.predict, samples)


def savedmodel(run) -> tuple[list, list, dict]:
    """``forecast`` and ``forecast_raw`` endpoints, tracked objects, manifest notes."""
    model = run.model
    window, features, _ = shapes(model)

    def forecast(window):
        return {"forecast": model(window, training=False)}

    spec = [tf.TensorSpec((None, window, features), tf.float32, name="window")]
    if in_model_scaling(run.scaler) or not run.scaler:
        return [("forecast", forecast, spec), ("forecast_raw", forecast, spec)], [model], {}
    lo, hi = float(run.scaler["min"]), float(run.scaler["max"])
    a, b = (float(v) for v in run.scaler.get("feature_range", [-1, 1]))
    span = (hi - lo) or 1.0

    def forecast_raw(window):
        y = model((window - lo) / span * (b - a) + a, training=False)
        return {"forecast": (y - a) / (b - a) * span + lo}

    return [("forecast", forecast, spec), ("forecast_raw", forecast_raw, spec)], [model], {}


def tflite(run, samples) -> tuple:
    """``(concrete function, None, info)``: the dynamic-batch forecaster (no full-integer: it has a loop)."""
    window, features, _ = shapes(run.model)
    with tflite_mod.while_loops(run.model):
        concrete = tflite_mod.frozen_function(run.model, [tf.TensorSpec((None, window, features), tf.float32,
                                                                        name="window")], ["forecast"])
    return concrete, None, {"kind": "forecaster", "batch_size": "dynamic"}


class Forecaster:
    """``predict(windows (N, W, F)) -> (N, H)`` over an exported forecaster, in batches.

    Args:
        fmt: ``"tflite"`` or ``"savedmodel"``.
        model: ``.tflite`` path/bytes, or the loaded SavedModel.
        manifest: the export's manifest fields.
        batch_size: windows per call (default 256).
        workers: TFLite only: interpreters running batches concurrently
            (`kerasrnn.export.interpreter_pool`; default: the usable cores, at most 2).
    """

    def __init__(self, fmt: str, model, manifest: dict, batch_size: int = BATCH_SIZE, workers: int | None = None):
        self.fmt = fmt
        self.batch_size = int(batch_size)
        self.scaler = manifest.get("scaler")
        if fmt == "tflite":
            self.runner = InterpreterPool(model, workers)
        else:
            self.fn = model.signatures["forecast"]

    def predict(self, windows) -> np.ndarray:
        """Forecasts (N, H) for windows (N, W, F) (or (N, W) for one column)."""
        windows = np.asarray(windows, np.float32)
        if windows.ndim == 2:
            windows = windows[..., None]
        if not len(windows):
            raise UserError("no windows to forecast: give an array of shape (N >= 1, window, features)")
        chunks = [windows[i:i + self.batch_size] for i in range(0, len(windows), self.batch_size)]
        if self.fmt == "tflite":
            return np.concatenate([out["forecast"] for out in self.runner.map([{"window": c} for c in chunks])])

        return np.concatenate([self.fn(window=tf.constant(c))["forecast"].numpy() for c in chunks])


def open_runner(fmt: str, model, manifest: dict, directory: Path, batch_size: int = BATCH_SIZE,
                workers: int | None = None) -> Forecaster:
    """A `Forecaster` over the artifact (see there)."""
    return Forecaster(fmt, model, manifest, batch_size, workers)
