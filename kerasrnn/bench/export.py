"""`kerasrnn bench export RUN_DIR`: what the exported artifacts cost on this machine.

Measures, for the run's task:

- the sizes of the float32 / float16 / int8 TFLite files (converted in memory,
  nothing written) and their ratio to float32;
- generation: latency per character of the TFLite step model (LiteRT
  interpreter, batch 1) vs the Keras streaming path (the same step model as a
  compiled `tf.function`, one call per character);
- classification: sentences per second at batch 1 and at batch `--batch`
  (default 32), LiteRT (Python tokenisation + interpreter, the dynamic-batch
  model, run as ``classify --tflite --file`` runs it: sorted by length, each
  batch trimmed to its longest sentence, the batches spread over
  ``tflite_workers`` concurrent interpreters) vs the Keras model (`tf.function`
  on raw strings); the same LiteRT calls on token ids made beforehand
  (``tflite_interpreter_*``: the interpreter without Python tokenisation); and
  both again with one interpreter (``tflite_1worker_*``). The batch speedups
  compare batch `--batch` with batch 1 at the *same* number of interpreters;
  ``tflite_1worker_interpreter_batch_speedup_bound`` is the most any batching
  could give (`kerasrnn.bench.batch_bound`: batch-1 time over the sentence's
  recurrent FLOPs at one interpreter's measured GEMM rate);
- forecasting: windows per second at batch 1 and `--batch`, LiteRT (as
  ``forecast --tflite`` runs it: `Forecaster` over the default interpreters) vs Keras;
- ``speed_by_quantization``: the LiteRT speed of the float32, float16 and int8
  models side by side (characters: µs per step; sentences and windows: per
  second at batch 1 and `--batch`, the app path with the default interpreters),
  so the choice of ``--quantize`` can weigh speed as well as size.

Timings are medians over `repeats` runs; on a shared 2-core CPU they drift by
±30%: compare numbers from one invocation only.

>>> # kerasrnn bench export saved_models/polarity-sentiment --json-out bench.json
"""

from __future__ import annotations

import statistics
import time

import numpy as np

from kerasrnn.bench import batch_bound
from kerasrnn.errors import UserError
from kerasrnn.export import classification, exporter
from kerasrnn.export import tflite as tflite_mod
from kerasrnn.export.classification import Classifier
from kerasrnn.export.forecasting import Forecaster
from kerasrnn.export.generation import TFLiteStep
from kerasrnn.export.interpreter_pool import default_workers
from kerasrnn.export.tokenizer import Tokenizer
from kerasrnn.sampling import KerasStep


def _median_time(fn, n: int, repeats: int) -> float:
    """Median seconds per call of `fn` over `repeats` batches of `n` calls (after one warm-up)."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(n):
            fn()
        times.append((time.perf_counter() - start) / n)
    return statistics.median(times)


def _tflite_generation_step(content: bytes):
    """One call of the LiteRT step model (batch 1, its state carried between calls)."""
    lite = TFLiteStep(content)
    state = {"lite": lite.initial_states(1)}
    token = np.zeros((1,), np.int32)

    def tflite_step():
        _, state["lite"] = lite(token, state["lite"])

    return tflite_step


def bench_generation(run, contents: dict, n: int, repeats: int, batch: int) -> dict:
    """Microseconds per character: LiteRT step vs the Keras step model in a `tf.function`.

    ``by_quantization``: the LiteRT step of every model in `contents`, timed in turn
    (``tflite_us_per_char`` is its float32 entry).
    """
    import tensorflow as tf  # lazy: heavy import

    step = KerasStep(run.model, batch_size=1)
    fn = tf.function(lambda tok, states: step(tok, states))
    kstate = {"k": [tf.constant(s) for s in step.initial_states(1)]}
    ktoken = tf.zeros((1,), tf.int32)

    def keras_step():
        logits, kstate["k"] = fn(ktoken, kstate["k"])
        logits.numpy()

    steps = {mode: _tflite_generation_step(c) for mode, c in contents.items()}
    timed = _interleaved({mode: (lambda f=f: [f() for _ in range(n)]) for mode, f in steps.items()}, repeats)
    by_mode = {mode: {"tflite_us_per_char": 1e6 * t / n} for mode, t in timed.items()}
    return {"tflite_us_per_char": by_mode["float32"]["tflite_us_per_char"],
            "keras_us_per_char": 1e6 * _median_time(keras_step, n, repeats), "by_quantization": by_mode}


def _interleaved(fns: dict, repeats: int) -> dict:
    """Median seconds per call of each of `fns`, timed in turn within every repeat (after one warm-up each).

    Interleaving keeps a drifting machine load from favouring whichever runs first.
    """
    for fn in fns.values():
        fn()
    times = {k: [] for k in fns}
    for _ in range(repeats):
        for k, fn in fns.items():
            start = time.perf_counter()
            fn()
            times[k].append(time.perf_counter() - start)
    return {k: statistics.median(v) for k, v in times.items()}


def _throughput(call, items: list, batch: int, n: int, repeats: int) -> float:
    """Items per second of `call(items[i:i+batch])`, cycling through `items`."""
    pos = {"i": 0}

    def one():
        i = pos["i"]
        chunk = items[i:i + batch]
        if len(chunk) < batch:
            chunk = (chunk + items * (batch // max(1, len(items)) + 1))[:batch]
        pos["i"] = (i + batch) % len(items)
        call(chunk)

    calls = max(1, n // batch)
    return batch / _median_time(one, calls, repeats)


def bench_classification(run, contents: dict, n: int, repeats: int, batch: int, fold_embedding: bool = False) -> dict:
    """Sentences per second at batch 1 and `batch`: the app path (Python tokeniser + LiteRT) vs Keras.

    LiteRT: `Classifier.predict_proba` over a list of `n` sample sentences (the
    run's ``samples.npz`` texts, cycled), as ``kerasrnn classify --tflite --file``
    runs it: sorted by length, `batch` at a time, each batch trimmed to its
    longest sentence; batch 1 and `batch` are timed in turn (`_interleaved`).
    Keras: the model (a `tf.function` on raw strings, padded to ``max_len`` by
    its ``TextVectorization``) on consecutive chunks of `batch` sentences.
    ``by_quantization``: the app path of every model in `contents` (float32 and
    the quantized ones) at batch 1 and `batch`, timed in the same rounds.
    `fold_embedding`: `contents` were converted with the embedding folded (the bound
    then counts no input GEMM for the first recurrent layer).
    """
    import tensorflow as tf  # lazy: heavy import

    texts = np.load(run.path / "samples.npz")["text"].astype(str).tolist()
    texts = (texts * (n // max(1, len(texts)) + 1))[:max(n, 1)]
    vocab = [str(t) for t in run.model.get_layer("vectorizer").get_vocabulary()]
    tokenizer = Tokenizer(vocab, int(run.info["max_len"]))
    fn = tf.function(lambda t: run.model(t, training=False), reduce_retracing=True)

    def keras(chunk):
        fn(tf.constant(chunk)).numpy()

    out = {}
    many = default_workers()
    lite = {(b, w): Classifier("tflite", contents["float32"], [], tokenizer, batch_size=b, workers=w)
            for b in (1, batch) for w in sorted({1, many})}
    ids = tokenizer.encode_array(texts)  # the interpreter alone: tokenised once, outside the timing
    fns = {("app", *k): (lambda c=c: c.predict_proba(texts)) for k, c in lite.items()}
    fns.update({("ids", *k): (lambda c=c: c.predict_ids(ids)) for k, c in lite.items()})
    quantized = {(mode, b): Classifier("tflite", c, [], tokenizer, batch_size=b, workers=many)
                 for mode, c in contents.items() if mode != "float32" for b in (1, batch)}
    fns.update({("quantized", *k): (lambda c=c: c.predict_proba(texts)) for k, c in quantized.items()})
    timed = _interleaved(fns, repeats)  # all in turn, so a drifting load hits them alike
    seconds = {k[1:]: v for k, v in timed.items() if k[0] == "app"}
    seconds_ids = {k[1:]: v for k, v in timed.items() if k[0] == "ids"}
    out["tflite_workers"] = many
    for b in (1, batch):
        out[f"tflite_sentences_per_s_batch{b}"] = len(texts) / seconds[b, many]
        out[f"keras_sentences_per_s_batch{b}"] = _throughput(keras, texts, b, n, repeats)
    for b in (1, batch):
        out[f"tflite_interpreter_sentences_per_s_batch{b}"] = len(texts) / seconds_ids[b, many]
    if many > 1:
        for b in (1, batch):
            out[f"tflite_1worker_sentences_per_s_batch{b}"] = len(texts) / seconds[b, 1]
            out[f"tflite_1worker_interpreter_sentences_per_s_batch{b}"] = len(texts) / seconds_ids[b, 1]
    out["tflite_batch_speedup"] = seconds[1, many] / seconds[batch, many]
    out["tflite_interpreter_batch_speedup"] = seconds_ids[1, many] / seconds_ids[batch, many]
    out["tflite_1worker_batch_speedup"] = seconds[1, 1] / seconds[batch, 1]
    out["tflite_1worker_interpreter_batch_speedup"] = seconds_ids[1, 1] / seconds_ids[batch, 1]
    out["tflite_vs_keras_batch1"] = out["tflite_sentences_per_s_batch1"] / out["keras_sentences_per_s_batch1"]
    out[f"tflite_vs_keras_batch{batch}"] = (out[f"tflite_sentences_per_s_batch{batch}"]
                                            / out[f"keras_sentences_per_s_batch{batch}"])
    folded = classification.folded_layers(run.model) if fold_embedding else ()
    out.update(_classifier_bound(run.model, ids, batch, len(texts) / seconds_ids[1, 1],
                                 len(texts) / seconds_ids[batch, 1], folded))
    per_mode = {("float32", b): seconds[b, many] for b in (1, batch)}
    per_mode.update({k[1:]: v for k, v in timed.items() if k[0] == "quantized"})
    out["by_quantization"] = {
        mode: {"tflite_sentences_per_s_batch1": len(texts) / per_mode[mode, 1],
               f"tflite_sentences_per_s_batch{batch}": len(texts) / per_mode[mode, batch],
               "tflite_batch_speedup": per_mode[mode, 1] / per_mode[mode, batch]}
        for mode in contents}
    return out


def _classifier_bound(model, ids, batch: int, per_s_batch1: float, per_s_batch: float, folded=()) -> dict:
    """The float32 classifier's FLOPs per sentence, one interpreter's GEMM rate, and the batch speed-up bound.

    `batch_bound`: one interpreter on token ids (``tflite_1worker_interpreter_*``)
    against its input GEMM ``(batch · mean length, input) × (input, gates)`` run
    alone in LiteRT; the bound also caps the app path and two interpreters
    (tokenisation costs the same per sentence at both sizes).
    """
    steps = float(np.maximum(1, (np.asarray(ids) != 0).sum(axis=1)).mean())
    flops = batch_bound.flops_per_item(model, steps, folded)
    k, n = batch_bound.input_gemm_shape(model)
    rate = batch_bound.litert_gemm_gflops(max(1, round(batch * steps)), k, n)
    return {"mean_tokens_per_sentence": steps, "recurrent_mflops_per_sentence": flops / 1e6,
            "litert_gemm_gflops_1thread": rate,
            "tflite_1worker_interpreter_gflops_batch1": flops * per_s_batch1 / 1e9,
            f"tflite_1worker_interpreter_gflops_batch{batch}": flops * per_s_batch / 1e9,
            "tflite_1worker_interpreter_batch_speedup_bound": batch_bound.speedup_bound(1 / per_s_batch1, flops, rate)}


def bench_forecasting(run, contents: dict, n: int, repeats: int, batch: int) -> dict:
    """Windows per second at batch 1 and `batch`: LiteRT vs Keras.

    LiteRT: `Forecaster.predict` over `n` sample windows (the run's
    ``samples.npz`` windows, cycled), as ``kerasrnn forecast --tflite`` runs it:
    `batch` at a time, the batches spread over the default number of
    interpreters; every model in `contents` and both sizes timed in turn
    (``by_quantization``; the ``tflite_*`` figures are its float32 entry).
    Keras: the model in a `tf.function` on consecutive chunks of `batch` windows.
    """
    import tensorflow as tf  # lazy: heavy import

    x = np.load(run.path / "samples.npz")["x"].astype(np.float32)
    if x.ndim == 2:
        x = x[..., None]
    windows = list(x)
    stacked = np.stack((windows * (n // max(1, len(windows)) + 1))[:max(n, 1)])
    lite = {(mode, b): Forecaster("tflite", c, {}, batch_size=b) for mode, c in contents.items() for b in (1, batch)}
    timed = _interleaved({k: (lambda f=f: f.predict(stacked)) for k, f in lite.items()}, repeats)
    by_mode = {mode: {f"tflite_windows_per_s_batch{b}": len(stacked) / timed[mode, b] for b in (1, batch)}
               for mode in contents}
    fn = tf.function(lambda w: run.model(w, training=False), reduce_retracing=True)
    out = {"tflite_workers": default_workers()}
    for b in (1, batch):
        out[f"tflite_windows_per_s_batch{b}"] = by_mode["float32"][f"tflite_windows_per_s_batch{b}"]
        out[f"keras_windows_per_s_batch{b}"] = _throughput(lambda c: fn(tf.constant(np.stack(c))).numpy(),
                                                           windows, b, n, repeats)
    out["by_quantization"] = by_mode
    return out


BENCHES = {"generation": bench_generation, "classification": bench_classification,
           "forecasting": bench_forecasting}


def measure(run_dir, calls: int = 200, repeats: int = 5, batch: int = 32, fold_embedding: bool = False) -> dict:
    """Sizes and speed of a run's exported artifacts (see the module docstring).

    Args:
        run_dir: a generation, classification or forecasting run directory.
        calls: items (characters / sentences / windows) per timing, >= 1.
        repeats: timings per measurement (the median is reported), >= 1.
        batch: the batched size compared with batch 1, >= 1.
        fold_embedding: measure the models ``kerasrnn export --fold-embedding`` writes
            (classification runs only; `kerasrnn.export.tflite.folded_embedding`).

    Returns:
        ``{"run", "task", "sizes_bytes": {mode: bytes}, "size_ratio": {mode: x},
        "speed": {name: value}, "speed_by_quantization": {mode: {name: value}}, "repeats"}``;
        `mode` as built: ``float32``, ``float16-weights``, ``int8-dynamic-range`` (or
        ``int8-full-integer`` as well where the task offers calibration data and has no loop).
    """

    for name, value in (("calls", calls), ("repeats", repeats), ("batch", batch)):
        if value < 1:
            raise UserError(f"{name} must be >= 1, got {value}")
    run, samples = exporter.load_run_samples(run_dir)
    task = run.info["task"]
    if task not in BENCHES:
        raise UserError(f"no export benchmark for a {task!r} run; pass a generation, classification or "
                        "forecasting run")
    options = exporter.tflite_options(task, fold_embedding)
    concrete, representative, _ = exporter.task_module(task).tflite(run, samples, **options)
    contents = {}  # mode as built ("float32", "float16-weights", "int8-dynamic-range", ...) -> flatbuffer
    for q in ("none", "float16", "int8"):
        content, info = tflite_mod.build(concrete, q, representative)
        contents[info["quantization"]["mode"]] = content
    if "int8-full-integer" in contents:  # `kerasrnn export` ships dynamic range when full-integer fails its gate
        content, _ = tflite_mod.build(concrete, "int8", representative, full_integer=False)
        contents["int8-dynamic-range"] = content
    sizes = {mode: len(c) for mode, c in contents.items()}
    base = sizes["float32"]
    speed = BENCHES[task](run, contents, calls, repeats, batch, **options)
    return {"run": run.info.get("name"), "task": task, "fold_embedding": bool(fold_embedding),
            "sizes_bytes": sizes,
            "size_ratio": {k: v / base for k, v in sizes.items()},
            "speed_by_quantization": speed.pop("by_quantization"), "speed": speed, "repeats": repeats}


def report(result: dict) -> str:
    """The console text of a `measure` result."""
    base = result["sizes_bytes"]["float32"]
    folded = ", embedding folded" if result.get("fold_embedding") else ""
    lines = [f"{result['run']} ({result['task']}{folded}); TFLite sizes as converted (no parity gate here: `kerasrnn "
             "export` falls back from full-integer to dynamic-range int8 when full-integer loses accuracy):"]
    lines += [f"  {mode:<22} {size / 1024:10.1f} KiB  {100 * size / base:5.1f}% of float32"
              for mode, size in result["sizes_bytes"].items()]
    lines.append(f"Speed (float32, median of {result['repeats']} timings):")
    lines += [f"  {key:<36} {value:12.2f}" for key, value in result["speed"].items()]
    lines.append("LiteRT speed of each model, timed in turn (classifier, forecaster: the app path, default interpreters):")
    for mode, speed in result["speed_by_quantization"].items():
        lines.append(f"  {mode:<22} " + "  ".join(f"{key} {value:.2f}" for key, value in speed.items()))
    return "\n".join(lines)
