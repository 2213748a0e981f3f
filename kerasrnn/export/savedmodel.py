"""SavedModel export with named serving signatures, loadable by plain `tf.saved_model.load`.

Signatures (``serving_default`` is an alias of the first one of each task):

- classification: ``classify(text: string (B,)) -> {"probs": (B, C)}`` — raw
  strings in; the model's own TextVectorization runs inside the graph.
- generation: ``step(token: int32 (B,), rnn_0_h, [rnn_0_c], ...) ->
  {"logits": (B, V), "next_rnn_0_h", ...}`` (streaming, O(1) per character) and
  ``generate(seed: string (), length: int32 (), temperature: float32 ()) ->
  {"text": string ()}`` (seed characters missing from the vocabulary are
  skipped; ``temperature <= 0`` is greedy).
- forecasting: ``forecast(window: float32 (B, W, 1)) -> {"forecast": (B, 1)}``
  in the scaled units the model was trained on, and ``forecast_raw`` (same,
  in original units: the min-max scaler of ``scaler.json`` is applied inside).

>>> loaded = tf.saved_model.load("saved_models/run/export/savedmodel")  # doctest: +SKIP
>>> loaded.signatures["classify"](text=tf.constant(["a fine film"]))["probs"]  # doctest: +SKIP
"""

from __future__ import annotations

from pathlib import Path

from kerasrnn.errors import UserError


def _archive():
    import keras

    return keras.export.ExportArchive()


def _classifier(archive, run):
    import tensorflow as tf

    model = run.model
    archive.track(model)

    def classify(text):
        return {"probs": model(text, training=False)}

    return [("classify", classify, [tf.TensorSpec((None,), tf.string, name="text")])]


def _generator(archive, run):
    import tensorflow as tf

    from kerasrnn.export.tflite import step_model, step_names, step_specs

    step = step_model(run.model, batch_size=None)
    archive.track(run.model)
    archive.track(step)
    names, outputs = step_names(step)

    def step_fn(*args):
        return dict(zip(outputs, step(list(args), training=False)))


    chars = list(run.vocab["chars"])
    sizes = [int(t.shape[-1]) for t in step.inputs[1:]]

    def generate(seed, length, temperature):
        vocab = tf.constant(chars)
        pieces = tf.strings.unicode_split(seed, "UTF-8")
        hits = tf.equal(pieces[:, None], vocab[None, :])
        known = tf.reduce_any(hits, axis=1)
        ids = tf.boolean_mask(tf.argmax(tf.cast(hits, tf.int32), axis=1, output_type=tf.int32), known)
        tf.debugging.assert_positive(tf.size(ids), message="seed has no character of the vocabulary")
        states = [tf.zeros((1, s)) for s in sizes]

        def call(token, states):
            out = step([tf.reshape(token, [1]), *states], training=False)
            return out[0], list(out[1:])

        def feed(i, states):
            return i + 1, call(ids[i], states)[1]

        _, states = tf.while_loop(lambda i, s: i < tf.size(ids) - 1, feed, (tf.constant(0), states))
        greedy = temperature <= 0.0

        def body(i, token, states, out):
            logits, states = call(token, states)
            drawn = tf.random.categorical(logits / tf.maximum(temperature, 1e-6), 1, dtype=tf.int32)[0, 0]
            nxt = tf.where(greedy, tf.argmax(logits[0], output_type=tf.int32), drawn)
            return i + 1, nxt, states, out.write(i, nxt)

        out = tf.TensorArray(tf.int32, size=tf.maximum(length, 0))
        _, _, _, out = tf.while_loop(lambda i, *_: i < length, body,
                                     (tf.constant(0), ids[-1], states, out))
        kept = tf.strings.reduce_join(tf.gather(vocab, ids))
        return {"text": kept + tf.strings.reduce_join(tf.gather(vocab, out.stack()))}

    return [("step", step_fn, step_specs(step, None)),
            ("generate", generate, [tf.TensorSpec((), tf.string, name="seed"),
                                    tf.TensorSpec((), tf.int32, name="length"),
                                    tf.TensorSpec((), tf.float32, name="temperature")])]


def _forecaster(archive, run):
    import tensorflow as tf

    model = run.model
    archive.track(model)
    window = int(run.info["window"])
    lo, hi = float(run.scaler["min"]), float(run.scaler["max"])
    a, b = (float(v) for v in run.scaler.get("feature_range", [-1, 1]))
    span = (hi - lo) or 1.0

    def forecast(window):
        return {"forecast": model(window, training=False)}

    def forecast_raw(window):
        scaled = (window - lo) / span * (b - a) + a
        y = model(scaled, training=False)
        return {"forecast": (y - a) / (b - a) * span + lo}

    spec = [tf.TensorSpec((None, window, 1), tf.float32, name="window")]
    return [("forecast", forecast, spec), ("forecast_raw", forecast_raw, spec)]


BUILDERS = {"classification": _classifier, "generation": _generator, "forecasting": _forecaster}


def write(run, directory: Path) -> list[str]:
    """Write the SavedModel of `run` into `directory` (which must be empty or absent).

    Returns:
        The signature names (``serving_default`` aliases the first).
    """
    task = run.info["task"]
    if task not in BUILDERS:
        raise UserError(f"cannot export a {task!r} run as a SavedModel; export a generation, classification "
                        "or forecasting run")
    archive = _archive()
    endpoints = BUILDERS[task](archive, run)
    for name, fn, spec in endpoints:
        archive.add_endpoint(name, fn, input_signature=spec)
    _, fn, spec = endpoints[0]
    archive.add_endpoint("serving_default", fn, input_signature=spec)
    archive.write_out(str(directory), verbose=False)
    return ["serving_default", *(name for name, _, _ in endpoints)]


def describe(directory: Path) -> dict:
    """Inputs/outputs (shape, dtype) of every signature of a SavedModel."""
    import tensorflow as tf

    loaded = tf.saved_model.load(str(directory))
    out = {}
    for name, fn in loaded.signatures.items():
        _, inputs = fn.structured_input_signature
        out[name] = {
            "inputs": {k: _spec(v) for k, v in sorted(inputs.items())},
            "outputs": {k: _spec(v) for k, v in sorted(fn.structured_outputs.items())},
        }
    return out


def _spec(spec) -> dict:
    return {"shape": [None if d is None else int(d) for d in spec.shape], "dtype": spec.dtype.name}
