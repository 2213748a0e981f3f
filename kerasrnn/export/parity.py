"""Parity mechanics: compare an artifact's outputs with the Keras model's, and judge a gate.

Every export is compared with the trained Keras model on the run's
``samples.npz`` before it is written; a failed gate writes nothing. The
*metrics* and *gates* of each task live in its export module
(`kerasrnn.export.generation`, ``classification``, ``forecasting``); this
module holds what they share:

- `distribution_metrics`: for outputs that are distributions over classes
  (logits or probabilities): max/mean :math:`|\\Delta|`, argmax agreement, and,
  with labels, loss (mean negative log-likelihood in nats) and accuracy of both
  models with their deltas ``export - keras`` and the derived
  ``loss_increase = max(0, loss_delta)``, ``accuracy_drop = max(0, -accuracy_delta)``;
- `judge`: apply a gate ``{metric: (">=" | "<=", bound)}``.

**One-example slack.** Sample sets are small (a test run has a few dozen
sentences), so a fraction bound never fails on a single example: for a set of
``n`` examples an ``argmax_agreement >= b`` bound is applied as
``>= min(b, 1 - 1/n)`` and an ``accuracy_drop <= b`` bound as
``<= max(b, 1/n)``. With the real runs' samples (n = 256 sentences or 3,200
characters) the bounds apply essentially as written.

>>> judge({"max_abs_diff": 2e-5, "n": 10}, {"max_abs_diff": ("<=", 1e-4)})
(True, 'max_abs_diff 2e-05 <= 0.0001')
"""

from __future__ import annotations

import numpy as np

PER_EXAMPLE = ("argmax_agreement", "accuracy_drop")


def log_softmax(logits: np.ndarray) -> np.ndarray:
    """Numerically stable log-softmax over the last axis."""
    z = logits - logits.max(axis=-1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


def nll_from_logits(logits: np.ndarray, y: np.ndarray) -> float:
    """Mean negative log-likelihood (nats) of labels `y` (N,) under logits (N, V)."""
    return float(-log_softmax(logits)[np.arange(len(y)), y].mean())


def nll_from_probs(probs: np.ndarray, y: np.ndarray) -> float:
    """Mean negative log-likelihood (nats) of labels `y` (N,) under probabilities (N, C)."""
    p = np.clip(probs[np.arange(len(y)), y], 1e-7, 1.0)
    return float(-np.log(p).mean())


def distribution_metrics(ref: np.ndarray, out: np.ndarray, y=None, loss_fn=nll_from_logits,
                         space: str = "logits") -> dict:
    """Compare two (..., C) outputs over classes; `y` (...) labels add loss and accuracy.

    Args:
        ref: the Keras model's outputs.
        out: the artifact's outputs, same shape.
        y: integer labels of shape ``ref.shape[:-1]`` (optional).
        loss_fn: `nll_from_logits` (default) or `nll_from_probs`.
        space: what is compared, recorded as ``compared_on`` (default "logits").
    """
    ref = np.asarray(ref, np.float64)
    out = np.asarray(out, np.float64)
    diff = np.abs(ref - out)
    metrics = {
        "compared_on": space,
        "n": int(np.prod(ref.shape[:-1])),
        "max_abs_diff": float(diff.max()),
        "mean_abs_diff": float(diff.mean()),
        "argmax_agreement": float((ref.argmax(-1) == out.argmax(-1)).mean()),
    }
    if y is not None:
        yk = np.asarray(y).reshape(-1)
        rk, ok = ref.reshape(-1, ref.shape[-1]), out.reshape(-1, out.shape[-1])
        metrics.update(loss_keras=loss_fn(rk, yk), loss_export=loss_fn(ok, yk),
                       accuracy_keras=float((rk.argmax(-1) == yk).mean()),
                       accuracy_export=float((ok.argmax(-1) == yk).mean()))
        metrics["loss_delta"] = metrics["loss_export"] - metrics["loss_keras"]
        metrics["accuracy_delta"] = metrics["accuracy_export"] - metrics["accuracy_keras"]
        metrics["loss_increase"] = max(0.0, metrics["loss_delta"])
        metrics["accuracy_drop"] = max(0.0, -metrics["accuracy_delta"])
    return metrics


def precision_of(quantization_mode: str) -> str:
    """``"float32"``, ``"float16"`` or ``"int8"`` for a quantization mode string.

    >>> precision_of("int8-dynamic-range"), precision_of("float16-weights"), precision_of("float32")
    ('int8', 'float16', 'float32')
    """
    if quantization_mode.startswith("int8"):
        return "int8"
    if quantization_mode.startswith("float16"):
        return "float16"
    return "float32"


def _bound(metric: str, op: str, bound: float, n: int) -> float:
    if metric in PER_EXAMPLE and n:
        return min(bound, 1.0 - 1.0 / n) if op == ">=" else max(bound, 1.0 / n)
    return bound


def judge(metrics: dict, gate: dict) -> tuple[bool, str]:
    """Apply `gate` (``{metric: (">=" | "<=", bound)}``) to `metrics`; returns ``(passed, reason)``.

    The reason lists every gated metric with its bound, failing ones first.

    Raises:
        KeyError: a gated metric is missing (a bug in the task's parity function).
    """
    n = int(metrics.get("n") or 0)
    failed, passed = [], []
    for metric, (op, bound) in gate.items():
        value = float(metrics[metric])
        limit = _bound(metric, op, bound, n)
        ok = value >= limit if op == ">=" else value <= limit
        (passed if ok else failed).append(f"{metric} {value:.4g} {op if ok else ('<' if op == '>=' else '>')} "
                                          f"{limit:.4g}")
    return not failed, "; ".join(failed + passed)
