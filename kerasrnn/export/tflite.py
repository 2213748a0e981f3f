"""Convert a run's model to a TFLite / LiteRT flatbuffer that uses builtin operators only.

What converts builtins-only, and how (TF 2.21, measured):

- The recurrent loop of every cell (SimpleRNN, LSTM, GRU with
  ``reset_after`` True/False) and of `Bidirectional` wrappers is a TensorList
  loop; it lowers to a builtin ``WHILE`` only when the batch is fixed in the
  signature. Classifier and forecaster are therefore exported with batch 1:
  classifier ``token_ids (1, max_len) int32`` (0 = padding, masked),
  forecaster ``window (1, window, 1) float32``.
- The generator is exported as a streaming step model
  (`kerasrnn.streaming.build_step_model`, batch 1): no loop at all,
  ``(token (1,), *states) -> (logits, *new_states)``.
- Weights are frozen to constants first (`convert_variables_to_constants_v2`):
  left as resource variables they become ``READ_VARIABLE`` ops inside the
  ``WHILE`` body that the interpreter cannot resolve.
- The converter only gets ``TFLITE_BUILTINS``, so anything else fails the
  conversion loudly; the flatbuffer is then checked op by op
  (`kerasrnn.export.builtins_check`).

Quantisation (``quantize``): ``"float16"`` (float16 weights),
``"int8"``: full-integer (int8 weights and activations, float interface,
calibrated on the run's ``samples.npz``) for the loop-free step model;
dynamic-range int8 weights for models with a ``WHILE`` loop, because
full-integer calibration of a ``WHILE`` loop crashes the TF 2.21 converter
(segmentation fault, measured), so it is not attempted there.
"""

from __future__ import annotations

import numpy as np

from kerasrnn.errors import UserError
from kerasrnn.export.builtins_check import check_builtins_only

QUANTIZE = ("none", "float16", "int8")
SIGNATURE = "serving_default"


def _tf():
    import tensorflow as tf

    tf.autograph.set_verbosity(0)
    return tf


def frozen_function(model, input_specs, output_names):
    """A `tf.function` of `model` with constant weights and named inputs/outputs.

    Args:
        model: a keras.Model taking ``len(input_specs)`` inputs (a list if more than one).
        input_specs: `tf.TensorSpec`s with names (the signature's input names).
        output_names: names of the model's outputs, in order.

    Returns:
        A concrete function ``(**inputs) -> {name: tensor}`` without variables.
    """
    tf = _tf()
    from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

    def call(*args):
        out = model(list(args) if len(args) > 1 else args[0], training=False)
        return out if isinstance(out, (list, tuple)) else [out]

    concrete = tf.function(call, input_signature=list(input_specs), autograph=False).get_concrete_function()
    frozen = convert_variables_to_constants_v2(concrete)

    def serve(*args):
        return dict(zip(output_names, frozen(*args)))

    return tf.function(serve, input_signature=list(input_specs), autograph=False).get_concrete_function()


def _error_line(exc: Exception) -> str:
    lines = [ln.strip() for ln in str(exc).splitlines() if "error" in ln.lower()]
    return (lines[0] if lines else str(exc).strip().splitlines()[0] if str(exc).strip() else repr(exc))[:300]


def convert(concrete, quantize: str = "none", representative=None, full_integer: bool = False) -> bytes:
    """Convert a frozen concrete function to a builtins-only flatbuffer.

    Args:
        concrete: from `frozen_function`.
        quantize: ``"none"`` (default), ``"float16"`` or ``"int8"``.
        representative: for full-integer int8, a callable yielding ``{input_name: array}`` dicts.
        full_integer: with ``quantize="int8"``, calibrate activations too (needs `representative`).

    Raises:
        UserError: the conversion needs non-builtin ops, or the result contains any.
    """
    tf = _tf()
    if quantize not in QUANTIZE:
        raise UserError(f"--quantize must be one of {', '.join(QUANTIZE)}, got {quantize!r}")
    converter = tf.lite.TFLiteConverter.from_concrete_functions([concrete], tf.Module())
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    if quantize != "none":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if quantize == "float16":
        converter.target_spec.supported_types = [tf.float16]
    if quantize == "int8" and full_integer:
        converter.representative_dataset = representative
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    try:
        content = converter.convert()
    except Exception as e:  # ConverterError: MLIR diagnostics, many lines
        raise UserError(f"TFLite conversion with builtin ops only failed ({_error_line(e)}); nothing was "
                        "written; the model needs a fixed batch of 1 and no TensorFlow-only ops") from None
    check_builtins_only(content)
    return content


# ---------------------------------------------------------------- per task


def classifier_ids_model(model, max_len: int, batch_size: int | None = 1):
    """The classifier from its Embedding onward: ``token_ids (B, max_len) int32 -> probs``.

    Reuses the trained layers (shared weights); id 0 is padding and is masked by
    the Embedding (``mask_zero=True``), exactly as after the TextVectorization.
    """
    import keras

    names = [layer.name for layer in model.layers]
    if "embedding" not in names:
        raise UserError(f"classifier model {model.name!r} has no layer named 'embedding'; "
                        "re-train it with a kerasrnn classification recipe")
    ids = keras.Input(batch_shape=(batch_size, max_len), dtype="int32", name="token_ids")
    x = ids
    for layer in model.layers[names.index("embedding"):]:
        x = layer(x)
    return keras.Model(ids, x, name="classifier_ids")


def step_model(model, batch_size: int | None = 1):
    """The generator's streaming step model (`kerasrnn.streaming.build_step_model`)."""
    from kerasrnn.streaming import build_step_model

    return build_step_model(model, batch_size=batch_size)


def step_names(step) -> tuple[list[str], list[str]]:
    """Input and output names of a step model: ``token, rnn_0_h...`` and ``logits, next_rnn_0_h...``."""
    inputs = ["token"] + [t.name for t in step.inputs[1:]]
    outputs = ["logits"] + ["next_" + n for n in inputs[1:]]
    return inputs, outputs


def step_specs(step, batch_size: int | None = 1):
    """`tf.TensorSpec`s for a step model's inputs (token int32, then float32 states)."""
    tf = _tf()
    names, _ = step_names(step)
    specs = [tf.TensorSpec((batch_size,), tf.int32, name=names[0])]
    for name, t in zip(names[1:], step.inputs[1:]):
        specs.append(tf.TensorSpec((batch_size, int(t.shape[-1])), tf.float32, name=name))
    return specs


def step_trajectories(step, x: np.ndarray, max_examples: int = 256) -> list[dict]:
    """Step-model inputs seen while feeding sample sequences `x` (N, T): calibration data."""
    from kerasrnn.streaming import initial_states

    names, _ = step_names(step)
    out = []
    rows = x[: max(1, min(len(x), 16))]
    states = initial_states(step, len(rows))
    for t in range(rows.shape[1]):
        token = rows[:, t].astype(np.int32)
        for b in range(len(rows)):
            out.append({names[0]: token[b:b + 1], **{n: s[b:b + 1] for n, s in zip(names[1:], states)}})
        result = step([token, *states], training=False)
        states = [np.asarray(s) for s in result[1:]]
    stride = max(1, len(out) // max_examples)
    return out[::stride][:max_examples]


def build(run, quantize: str = "none", full_integer: bool | None = None) -> tuple[bytes, dict]:
    """Convert `run` (a `kerasrnn.rundir.Run`) for its task.

    Returns:
        ``(flatbuffer bytes, info)``; info has ``"kind"`` (step/classifier/forecaster),
        ``"quantization"`` (what was done) and ``"operators"``.
    """
    tf = _tf()
    task = run.info["task"]
    model = run.model
    samples = np.load(run.path / "samples.npz")
    info = {"quantization": {"requested": quantize}}
    representative = None
    if task == "generation":
        step = step_model(model, 1)
        specs = step_specs(step, 1)
        names, outputs = step_names(step)
        concrete = frozen_function(step, specs, outputs)
        info["kind"] = "step"
        examples = step_trajectories(step, samples["x"]) if quantize == "int8" else []

        def representative():
            for ex in examples:
                yield {k: v for k, v in ex.items()}

        can_full = True
        why_not = None
    elif task == "classification":
        max_len = int(run.info["max_len"])
        sub = classifier_ids_model(model, max_len, 1)
        concrete = frozen_function(sub, [tf.TensorSpec((1, max_len), tf.int32, name="token_ids")], ["probs"])
        info["kind"] = "classifier"
        can_full, why_not = False, _LOOP_NO_FULL_INT
    elif task == "forecasting":
        window = int(run.info["window"])
        concrete = frozen_function(model, [tf.TensorSpec((1, window, 1), tf.float32, name="window")], ["forecast"])
        info["kind"] = "forecaster"
        can_full, why_not = False, _LOOP_NO_FULL_INT
    else:
        raise UserError(f"cannot export a {task!r} run to TFLite; export a generation, classification or "
                        "forecasting run")
    if quantize == "int8":
        want_full = can_full if full_integer is None else (full_integer and can_full)
        if want_full:
            try:
                content = convert(concrete, "int8", representative, full_integer=True)
                info["quantization"].update(mode="int8-full-integer", note="int8 weights and activations, "
                                            "float32 inputs/outputs; calibrated on samples.npz")
                info["operators"] = check_builtins_only(content)
                return content, info
            except UserError as e:
                why_not = f"full-integer conversion failed: {e.message}"
        info["quantization"].update(mode="int8-dynamic-range", note="int8 weights, float32 activations",
                                    full_integer=why_not)
    elif quantize == "float16":
        info["quantization"].update(mode="float16-weights")
    else:
        info["quantization"].update(mode="float32")
    content = convert(concrete, quantize)
    info["operators"] = check_builtins_only(content)
    return content, info


_LOOP_NO_FULL_INT = ("not attempted: full-integer calibration of a recurrent WHILE loop crashes the TF 2.21 "
                     "converter (segmentation fault, measured); dynamic-range int8 weights instead")
