"""Parity of an exported artifact with the Keras model, on the run's ``samples.npz``.

Every export is compared with the trained Keras model before it is written;
a failed check writes nothing. Metrics per task (`generation`, `classification`,
`forecasting`; `whole_sequence` for the reloaded `.keras`):

- generation: logits of the artifact (the step model fed the sample sequences
  one token at a time) vs the Keras model on whole sequences;
- classification: class probabilities (the TFLite path tokenises with the
  exported vocabulary in plain Python, so the whole app pipeline is checked);
- forecasting: the next value (scaled units).

Tolerances (`TOLERANCES`, set from measurements on real runs: a 256-unit char
LSTM float16 max logit diff 6e-4, dynamic-range int8 0.035 (argmax 99.6%),
full-integer int8 step model 3.1 (argmax 96.7%, loss +0.003 nats); a BiGRU
polarity classifier float16 7e-5, int8 0.003 in probability):

- float32 (``.keras``, SavedModel, TFLite): max abs difference <= 1e-4;
- float16 weights: max abs difference <= 1e-2;
- int8: the outputs move more (int8 weights, and activations for the
  full-integer step model); gate = argmax agreement >= 95%, accuracy drop
  <= 0.02 and loss increase <= 0.02 nats (generation, classification), or
  max abs <= 0.05 in the scaled
  [-1, 1] units (forecasting). The max abs difference and loss/accuracy
  deltas are always reported.
"""

from __future__ import annotations

import numpy as np

TOLERANCES = {
    "float32": {"max_abs_diff": 1e-4},
    "float16": {"max_abs_diff": 1e-2},
    "int8": {"argmax_agreement_min": 0.95, "accuracy_drop_max": 0.02, "loss_increase_max": 0.02,
             "forecast_max_abs_diff": 0.05},
}

GENERATION_SAMPLES = 32


def _log_softmax(logits):
    z = logits - logits.max(axis=-1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


def _ce_from_logits(logits, y):
    return float(-_log_softmax(logits)[np.arange(len(y)), y].mean())


def _ce_from_probs(probs, y):
    p = np.clip(probs[np.arange(len(y)), y], 1e-7, 1.0)
    return float(-np.log(p).mean())


def _classification_like(ref, out, y, loss_fn, space: str) -> dict:
    diff = np.abs(ref - out)
    metrics = {
        "compared_on": space,
        "n": int(np.prod(ref.shape[:-1])),
        "max_abs_diff": float(diff.max()),
        "mean_abs_diff": float(diff.mean()),
        "argmax_agreement": float((ref.argmax(-1) == out.argmax(-1)).mean()),
    }
    if y is not None:
        yk = y.reshape(-1)
        rk, ok = ref.reshape(-1, ref.shape[-1]), out.reshape(-1, out.shape[-1])
        metrics.update(
            loss_keras=loss_fn(rk, yk), loss_export=loss_fn(ok, yk),
            accuracy_keras=float((rk.argmax(-1) == yk).mean()), accuracy_export=float((ok.argmax(-1) == yk).mean()),
        )
        metrics["loss_delta"] = metrics["loss_export"] - metrics["loss_keras"]
        metrics["accuracy_delta"] = metrics["accuracy_export"] - metrics["accuracy_keras"]
    return metrics


def generation(model, step, samples) -> dict:
    """Keras whole-sequence logits vs `step` (a runners step) fed token by token."""
    from kerasrnn.export.runners import step_logits

    x = np.asarray(samples["x"][:GENERATION_SAMPLES], np.int32)
    y = np.asarray(samples["y"][:GENERATION_SAMPLES], np.int32)
    ref = np.asarray(model(x, training=False))
    out = step_logits(step, x)
    return _classification_like(ref, out, y, _ce_from_logits, "logits")


def whole_sequence(model, other, samples) -> dict:
    """Keras whole-sequence logits vs another Keras model's (e.g. the reloaded ``.keras``)."""
    x = np.asarray(samples["x"][:GENERATION_SAMPLES], np.int32)
    y = np.asarray(samples["y"][:GENERATION_SAMPLES], np.int32)
    ref, out = np.asarray(model(x, training=False)), np.asarray(other(x, training=False))
    return _classification_like(ref, out, y, _ce_from_logits, "logits")


def classification(model, predict_proba, samples) -> dict:
    """Keras probabilities on raw sample strings vs `predict_proba(texts)`."""
    text = np.asarray(samples["text"])
    y = np.asarray(samples["y"], np.int32)
    import tensorflow as tf

    ref = np.asarray(model(tf.constant(text.astype(str).tolist()), training=False))
    out = np.asarray(predict_proba(text.astype(str).tolist()))
    return _classification_like(ref, out, y, _ce_from_probs, "probabilities")


def forecasting(model, predict, samples) -> dict:
    """Keras next value vs `predict(windows)` (scaled units)."""
    x = np.asarray(samples["x"], np.float32)
    y = np.asarray(samples["y"], np.float32).reshape(len(x), -1)
    ref = np.asarray(model(x, training=False)).reshape(len(x), -1)
    out = np.asarray(predict(x)).reshape(len(x), -1)
    diff = np.abs(ref - out)
    mse_k, mse_e = float(((ref - y) ** 2).mean()), float(((out - y) ** 2).mean())
    return {"compared_on": "forecast (scaled units)", "n": int(len(x)), "max_abs_diff": float(diff.max()),
            "mean_abs_diff": float(diff.mean()), "mse_keras": mse_k, "mse_export": mse_e,
            "mse_delta": mse_e - mse_k}


def precision_of(quantization_mode: str) -> str:
    """``"float32"``, ``"float16"`` or ``"int8"`` for a quantization mode string."""
    if quantization_mode.startswith("int8"):
        return "int8"
    if quantization_mode.startswith("float16"):
        return "float16"
    return "float32"


def judge(metrics: dict, precision: str) -> tuple[bool, str, dict]:
    """Apply `TOLERANCES`; returns ``(passed, reason, tolerance used)``."""
    tol = TOLERANCES[precision]
    if precision in ("float32", "float16"):
        ok = metrics["max_abs_diff"] <= tol["max_abs_diff"]
        return ok, f"max abs diff {metrics['max_abs_diff']:.3g} vs tolerance {tol['max_abs_diff']:g}", tol
    if "argmax_agreement" in metrics:
        drop = -metrics.get("accuracy_delta", 0.0)
        rise = metrics.get("loss_delta", 0.0)
        ok = (metrics["argmax_agreement"] >= tol["argmax_agreement_min"] and drop <= tol["accuracy_drop_max"]
              and rise <= tol["loss_increase_max"])
        return ok, (f"argmax agreement {metrics['argmax_agreement']:.3f} (min {tol['argmax_agreement_min']}), "
                    f"accuracy drop {drop:.3f} (max {tol['accuracy_drop_max']}), "
                    f"loss increase {rise:.3g} (max {tol['loss_increase_max']})"), tol
    ok = metrics["max_abs_diff"] <= tol["forecast_max_abs_diff"]
    return ok, f"max abs diff {metrics['max_abs_diff']:.3g} vs tolerance {tol['forecast_max_abs_diff']:g}", tol
