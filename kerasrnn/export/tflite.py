"""TFLite / LiteRT mechanics: freeze, convert builtins-only, quantise, open a flatbuffer.

What converts builtins-only, and how (TF 2.21, measured):

- Keras' recurrent loop is a TensorList loop: it lowers to a builtin ``WHILE``
  only with a batch fixed in the signature. `while_loops` swaps, for the time
  of a trace, every kerasrnn recurrent layer's loop for a `tf.while_loop`
  that reads step t with ``tf.gather`` and writes each step's output into a
  ``(T, B, units)`` buffer with ``tensor_scatter_nd_update`` (builtins
  ``WHILE`` + ``GATHER`` + ``SCATTER_ND``). That
  loop converts with a **dynamic batch** (and length), so the classifier and
  the forecaster are exported batched: ``(None, ...)`` inputs, resized per
  call by the interpreter. Masks (``Embedding(mask_zero=True)``) and
  ``go_backwards`` (`Bidirectional`) follow Keras' semantics: a masked step
  keeps the previous state and output (or a zero output when
  ``zero_output_for_mask``).
- `folded_embedding` (``kerasrnn export --fold-embedding``): the embedding and the
  first recurrent layer's input projection traced as one constant table per
  direction, read with ``GATHER``; no ``FULLY_CONNECTED`` over the embedded tokens.
- Weights are frozen to constants first (`convert_variables_to_constants_v2`):
  left as resource variables they become ``READ_VARIABLE`` ops inside the
  ``WHILE`` body that the interpreter cannot resolve.
- The converter only gets ``TFLITE_BUILTINS``, so anything else fails the
  conversion loudly; the flatbuffer is then checked op by op
  (`kerasrnn.export.builtins_check`).

Quantisation (`build`): ``"float16"`` (float16 weights), ``"int8"``:
full-integer (int8 weights and activations, float interface, calibrated on
representative inputs) when the task offers calibration data and no loop is
involved, else dynamic-range int8 weights — full-integer calibration of a
``WHILE`` loop crashes the TF 2.21 converter (segmentation fault, measured).

>>> content, info = build(concrete, "float16")  # doctest: +SKIP
>>> info["quantization"]["mode"], info["operators"][:2]  # doctest: +SKIP
('float16-weights', ['ADD', 'FULLY_CONNECTED'])
"""

from __future__ import annotations

import contextlib
import re
import warnings
from pathlib import Path

import numpy as np

from kerasrnn import native_logs
from kerasrnn.errors import UserError
from kerasrnn.export import QUANTIZE
from kerasrnn.export.builtins_check import check_builtins_only
from kerasrnn.export.savedmodel import quiet_table_warning

SIGNATURE = "serving_default"
LOOP_NO_FULL_INTEGER = ("not attempted: full-integer calibration of a recurrent WHILE loop crashes the TF 2.21 "
                        "converter (segmentation fault, measured); dynamic-range int8 weights instead")


def _tf():
    import tensorflow as tf  # lazy: heavy import

    tf.autograph.set_verbosity(0)
    return tf


# ------------------------------------------------------------------ loops


def _while_inner_loop(layer):
    """A builtins-only, dynamic-batch replacement for ``layer.inner_loop`` (inference only)."""
    tf = _tf()

    def inner_loop(sequences, initial_state, mask, training=False):
        cell = layer.cell
        x = tf.transpose(sequences, [1, 0, 2])  # (T, B, F)
        steps, batch = tf.shape(x)[0], tf.shape(x)[1]
        # (T, B, 1): step t's keep column comes from one GATHER, with no reshape in the loop body
        m = None if mask is None else tf.expand_dims(tf.transpose(tf.cast(mask, tf.bool), [1, 0]), -1)
        if layer.go_backwards:
            x = tf.reverse(x, [0])
            m = None if m is None else tf.reverse(m, [0])
        # The x part of every gate for all steps in one FULLY_CONNECTED before the loop, one large matmul
        # instead of T small ones; the body keeps only the recurrent half (measured +13-38% sentences/s on
        # the polarity BiGRU, README "Export"; tests/test_export.py reads the loop bodies' matmuls).
        x = tf.reshape(cell.input_projection(tf.reshape(x, [-1, x.shape[-1]])), tf.stack([steps, batch, -1]))
        states = list(initial_state) if isinstance(initial_state, (list, tuple)) else [initial_state]
        units = int(cell.output_size if getattr(cell, "output_size", None) else cell.units)
        buffer = tf.zeros(tf.stack([steps, batch, units]) if layer.return_sequences else [1, 1, 1], x.dtype)
        # The body holds nothing but the recurrence (README "The loop body, trimmed": 18 ops per GRU step
        # instead of 22, a cond of one LESS instead of three ops; batch 1 ~1.3x faster):
        # - every kerasrnn cell's output is its first state (h), so a masked step's output, the previous
        #   output, is the kept state: no output is carried beside the states, one SELECT_V2 per state;
        #   only `zero_output_for_mask` (a Bidirectional layer returning sequences) needs it apart;
        # - no `maximum_iterations`: `t < steps` already bounds the loop, and the counter it adds cost a
        #   LESS + LOGICAL_AND in the cond and an ADD in the body at every step.
        # Step t is read with GATHER, not x[t]: LiteRT's STRIDED_SLICE with a loop-dependent begin cost
        # ~3x more per step at batch 32 (measured: 36 vs 13 us in a bare loop); on the polarity BiGRU
        # classifier GATHER made LiteRT ~1.5x faster at batch 1 and at batch 32.
        carry_output = m is not None and bool(layer.zero_output_for_mask)

        def body(t, states, buffer, *_):
            out, new = cell.projected_step(tf.gather(x, t), list(states), states[0], cell.recurrent_weights(False))
            new = list(new) if isinstance(new, (list, tuple)) else [new]
            if out is not new[0]:  # pragma: no cover - every kerasrnn cell returns h as both
                raise RuntimeError(f"{cell.name}: the step's output is not its first state")
            if m is not None:  # masked step: keep the state (and the output, unless zero_output_for_mask)
                keep = tf.gather(m, t)
                new = [tf.where(keep, n, s) for n, s in zip(new, states)]
                out = tf.where(keep, out, tf.zeros_like(out)) if carry_output else new[0]
            if layer.return_sequences:
                buffer = tf.tensor_scatter_nd_update(buffer, tf.reshape(t, [1, 1]), tf.expand_dims(out, 0))
            return (t + 1, new, buffer) + ((out,) if carry_output else ())

        zero = (tf.zeros(tf.stack([batch, units]), x.dtype),) if carry_output else ()
        _, states, buffer, *last = tf.while_loop(lambda t, *_: t < steps, body, (tf.constant(0), states, buffer) + zero)
        last = last[0] if carry_output else states[0]
        outputs = tf.transpose(buffer, [1, 0, 2]) if layer.return_sequences else last[:, None]
        return last, outputs, states

    return inner_loop


@contextlib.contextmanager
def while_loops(model):
    """Within the block, `model`'s kerasrnn recurrent layers run the dynamic-batch while loop.

    Trace the TFLite function inside it (see the module docstring); the
    layers get their own loop back on exit.

    >>> with while_loops(model):  # doctest: +SKIP
    ...     concrete = frozen_function(model, [tf.TensorSpec((None, 40, 1), tf.float32, name="window")], ["y"])
    """
    from kerasrnn.layers.base import recurrent_layers  # lazy: imports Keras; this module stays light

    layers = recurrent_layers(model)
    for layer in layers:
        layer.inner_loop = _while_inner_loop(layer)
    try:
        yield model
    finally:
        for layer in layers:
            del layer.inner_loop


# ------------------------------------------------------------------ folded embedding

#: Layers that return their input unchanged at inference (``training=False``), so an embedding's
#: output passes them untouched on its way to the first recurrent layer.
_INFERENCE_IDENTITY = ("Dropout", "SpatialDropout1D", "GaussianNoise", "GaussianDropout", "AlphaDropout",
                       "PhiloxDropout", "TokenDropout")

#: Token ids travel as float32 between the patched embedding and the tables: exact below 2**24.
_MAX_FOLDED_VOCABULARY = 2 ** 24


def _ordered_layers(model):
    """`model`'s layers in call order, nested functional models expanded (not `Bidirectional`)."""
    import keras  # lazy: heavy import

    for layer in model.layers:
        if isinstance(layer, keras.Model):
            yield from _ordered_layers(layer)
        else:
            yield layer


def first_recurrent_layers(model, embedding) -> list:
    """The kerasrnn sequence layers that read `embedding`'s output: the first recurrent layer after it
    (both directions of a `Bidirectional`), past layers that are the identity at inference.

    Raises:
        UserError: `embedding` is not in `model`, or a layer that changes the embedded tokens (or
            none at all) comes between it and a recurrent layer.
    """
    from kerasrnn.layers.base import RecurrentLayer  # lazy: imports Keras; this module stays light

    layers = list(_ordered_layers(model))
    if embedding not in layers:
        raise UserError(f"fold_embedding: layer {embedding.name!r} is not part of model {model.name!r}")
    for layer in layers[layers.index(embedding) + 1:]:
        if type(layer).__name__ in _INFERENCE_IDENTITY:
            continue
        wrapped = [getattr(layer, "forward_layer", None), getattr(layer, "backward_layer", None)]
        found = [w for w in ([layer] + wrapped) if isinstance(w, RecurrentLayer)]
        if found:
            return found
        raise UserError(f"fold_embedding needs the embedding {embedding.name!r} to feed a kerasrnn recurrent layer "
                        f"directly, but layer {layer.name!r} ({type(layer).__name__}) comes first; export without "
                        "fold_embedding")
    raise UserError(f"fold_embedding: no kerasrnn recurrent layer follows the embedding {embedding.name!r}; "
                    "export without fold_embedding")


@contextlib.contextmanager
def folded_embedding(model, embedding):
    """Within the block, `embedding` and the input projection of the recurrent layer it feeds are one table.

    Each direction of that first recurrent layer gets a constant ``(vocabulary,
    gates)`` table, ``E·W + b`` (its cell's `input_projection` of every
    embedding row, computed here once in float32), read with one ``GATHER`` of
    the token ids instead of an embedding lookup followed by a
    ``FULLY_CONNECTED`` over every token. The embedding hands the ids on as
    ``(B, T, 1)`` floats (its mask still comes from the ids), and the patched
    cells turn them back into row indices. Enter it inside `while_loops`, then
    trace; everything is restored on exit.

    Measured on the polarity BiGRU 64 (10k words, embedding 128; LiteRT, one
    interpreter, 1,024 sentences sorted and trimmed as ``classify --tflite``
    runs them): batch 1 1.21x and batch 32 1.73x the sentences/s of the
    unfolded model, for a file 2.84x larger in float32 (15.1 vs 5.3 MiB; int8
    3.8 vs 1.4 MiB), since each direction's table holds 3·units values per word
    instead of the embedding's 128 shared by both.

    Raises:
        UserError: see `first_recurrent_layers`; a vocabulary of 2**24 words or more.
    """
    tf = _tf()
    folded = first_recurrent_layers(model, embedding)
    vocabulary = int(embedding.embeddings.shape[0])
    if vocabulary >= _MAX_FOLDED_VOCABULARY:
        raise UserError(f"fold_embedding supports vocabularies below {_MAX_FOLDED_VOCABULARY} words, got "
                        f"{vocabulary}; export without fold_embedding")
    reads = []

    def table_projection(cell):
        table = np.asarray(cell.input_projection(embedding.embeddings), np.float32)  # eager, before any trace

        def input_projection(ids):
            if ids.shape[-1] != 1:  # not the token ids: the layer was not fed by the embedding
                raise RuntimeError(f"fold_embedding: {cell.name} got inputs of width {ids.shape[-1]}, not token ids")
            reads.append(id(cell))
            return tf.gather(tf.constant(table), tf.cast(tf.reshape(ids, [-1]), tf.int32))

        return input_projection

    for layer in folded:
        layer.cell.input_projection = table_projection(layer.cell)
    embedding.call = lambda inputs: tf.expand_dims(tf.cast(inputs, tf.float32), -1)
    try:
        yield model
    finally:
        del embedding.call
        for layer in folded:
            del layer.cell.input_projection
    if len(set(reads)) != len(folded):  # pragma: no cover - guarded by first_recurrent_layers
        raise RuntimeError(f"fold_embedding: {len(folded)} recurrent layers were folded but {len(set(reads))} read "
                           "their table; trace the model inside the block")


# ------------------------------------------------------------------ conversion


def frozen_function(model, input_specs, output_names):
    """A `tf.function` of `model` with constant weights and named inputs/outputs.

    Args:
        model: a keras.Model (or callable) taking ``len(input_specs)`` inputs (a list if more than one).
        input_specs: `tf.TensorSpec`s with names (the signature's input names).
        output_names: names of the model's outputs, in order.

    Returns:
        A concrete function ``(**inputs) -> {name: tensor}`` without variables.
    """
    tf = _tf()
    from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2  # lazy: heavy import

    def call(*args):
        out = model(list(args) if len(args) > 1 else args[0], training=False)
        return out if isinstance(out, (list, tuple)) else [out]

    concrete = tf.function(call, input_signature=list(input_specs), autograph=False).get_concrete_function()
    with quiet_table_warning():  # freezing serializes the graph's collections too
        frozen = convert_variables_to_constants_v2(concrete)

    def serve(*args):
        return dict(zip(output_names, frozen(*args)))

    return tf.function(serve, input_signature=list(input_specs), autograph=False).get_concrete_function()


_ABS_PATH = re.compile(r"(?<![\w.])/(?:[\w.\-]+/)+([\w.\-]+)")


def _error_line(exc: Exception) -> str:
    """The first error line of a converter exception, absolute file paths cut to their file name.

    The line can end up in ``manifest.json`` (``quantization.full_integer``),
    which must not carry the exporting machine's file-system layout.

    >>> _error_line(ValueError('loc("/usr/lib/python3/site-packages/keras/ops.py":12): error: op x'))
    'loc("ops.py":12): error: op x'
    """
    text = [ln.strip() for ln in str(exc).splitlines()]
    lines = [ln for ln in text if "error:" in ln.lower()] or [ln for ln in text if "error" in ln.lower()]
    line = lines[0] if lines else str(exc).strip().splitlines()[0] if str(exc).strip() else repr(exc)
    return _ABS_PATH.sub(r"\1", line)[:300]


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
        raise UserError(f"quantize must be one of {', '.join(QUANTIZE)}, got {quantize!r}")
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
        with quiet_table_warning(), warnings.catch_warnings():
            # full-integer calibration runs the deprecated tf.lite.Interpreter inside the converter
            warnings.filterwarnings("ignore", message=".*tf.lite.Interpreter is deprecated", category=UserWarning)
            content = converter.convert()
    except Exception as e:  # ConverterError: MLIR diagnostics, many lines
        raise UserError(f"TFLite conversion with builtin ops only failed ({_error_line(e)}); nothing was "
                        "written; the model has an operation without a builtin TFLite kernel") from None
    check_builtins_only(content)
    return content


def build(concrete, quantize: str = "none", representative=None, full_integer: bool | None = None,
          no_full_integer_reason: str | None = LOOP_NO_FULL_INTEGER) -> tuple[bytes, dict]:
    """Convert `concrete` with the requested quantisation.

    Args:
        concrete: from `frozen_function`.
        quantize: ``"none"`` (default), ``"float16"`` or ``"int8"``.
        representative: calibration inputs for full-integer int8 (None: not possible).
        full_integer: with int8, force (True) or forbid (False) full-integer; None (default)
            tries it whenever `representative` is given.
        no_full_integer_reason: recorded when full-integer is not attempted.

    Returns:
        ``(flatbuffer bytes, info)``; info has ``"quantization"`` (what was done)
        and ``"operators"`` (every operator of the flatbuffer, all builtins).
    """
    info = {"quantization": {"requested": quantize}}
    if quantize == "int8":
        why_not = no_full_integer_reason
        if representative is not None and full_integer is not False:
            try:
                content = convert(concrete, "int8", representative, full_integer=True)
                info["quantization"].update(mode="int8-full-integer", note="int8 weights and activations, "
                                            "float32 inputs/outputs; calibrated on samples.npz")
                info["operators"] = check_builtins_only(content)
                return content, info
            except UserError as e:
                why_not = f"full-integer conversion failed: {e.message}"
        elif full_integer is False and representative is not None:
            why_not = None
        info["quantization"].update(mode="int8-dynamic-range", note="int8 weights, float32 activations",
                                    full_integer=why_not)
    elif quantize == "float16":
        info["quantization"].update(mode="float16-weights")
    else:
        info["quantization"].update(mode="float32")
    content = convert(concrete, quantize)
    info["operators"] = check_builtins_only(content)
    return content, info


# ------------------------------------------------------------------ running


def open_signature(source, signature: str = SIGNATURE):
    """A LiteRT signature runner for a ``.tflite`` path or flatbuffer bytes.

    A file that is not a valid flatbuffer (truncated, corrupt, not TFLite) is a
    one-line `UserError`, not an interpreter traceback. LiteRT's native
    "Created ... XNNPACK delegate" INFO line is kept off stderr when
    ``TF_CPP_MIN_LOG_LEVEL`` >= 1 (`kerasrnn.native_logs`; the CLI sets it).

    >>> runner = open_signature("export/tflite/model.tflite")  # doctest: +SKIP
    >>> runner(token_ids=ids)["probs"]  # doctest: +SKIP
    """
    from ai_edge_litert.interpreter import Interpreter  # lazy: heavy import

    what = "the TFLite model" if isinstance(source, (bytes, bytearray)) else str(source)
    # Making the interpreter and its first allocation (where LiteRT applies its default XNNPACK
    # delegate) print a native INFO line; keep it off stderr when the process filters INFO lines.
    quiet = native_logs.native_stderr_silenced() if native_logs.info_lines_unwanted() else contextlib.nullcontext()
    try:
        with quiet:
            if isinstance(source, (bytes, bytearray)):
                interpreter = Interpreter(model_content=bytes(source))
            else:
                interpreter = Interpreter(model_path=str(Path(source)))
            interpreter.allocate_tensors()
        return interpreter.get_signature_runner(signature)
    except (ValueError, RuntimeError) as e:
        reason = str(e).strip().splitlines()[0][:160] if str(e).strip() else type(e).__name__
        raise UserError(f"{what} is not a valid TFLite model ({reason}); it is corrupt or truncated: export "
                        "it again with `kerasrnn export RUN_DIR --format tflite`") from None


def signature_io(runner) -> dict:
    """``{"inputs": {name: {shape, dtype}}, "outputs": {...}}`` of a signature runner (-1 = dynamic)."""
    def spec(d):
        shape = d.get("shape_signature", d["shape"])
        return {"shape": [None if int(s) < 0 else int(s) for s in shape], "dtype": np.dtype(d["dtype"]).name}

    return {"inputs": {k: spec(v) for k, v in sorted(runner.get_input_details().items())},
            "outputs": {k: spec(v) for k, v in sorted(runner.get_output_details().items())}}
