"""`kerasrnn bench export RUN_DIR`: what the exported artifacts cost on this machine.

Measures, for the run's task:

- generation: latency per character of the TFLite step model (LiteRT
  interpreter, batch 1) vs the Keras streaming path (the same step model as a
  compiled `tf.function`, one call per character);
- classification: latency per sentence of TFLite (Python tokenisation +
  interpreter) vs the Keras model (`tf.function`, raw string, batch 1);
- forecasting: latency per window, TFLite vs Keras;
- the sizes of the float32 / float16 / int8 TFLite files (converted in memory,
  nothing written).

Timings are medians over `repeats` runs; on a shared 2-core CPU they drift by
±30%: compare numbers from one invocation only.
"""

from __future__ import annotations

import json
import statistics
import time

import click
import numpy as np


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


def _interpreter(content: bytes):
    from ai_edge_litert.interpreter import Interpreter

    return Interpreter(model_content=content).get_signature_runner("serving_default")


def bench_generation(run, content: bytes, n: int, repeats: int) -> dict:
    import tensorflow as tf

    from kerasrnn.export.tflite import step_model, step_names

    runner = _interpreter(content)
    details = runner.get_input_details()
    names = sorted(k for k in details if k != "token")
    state = {k: np.zeros(details[k]["shape"], np.float32) for k in names}
    token = np.zeros((1,), np.int32)

    def tflite_step():
        nonlocal state
        out = runner(token=token, **state)
        state = {k: out["next_" + k] for k in names}

    step = step_model(run.model, batch_size=1)
    in_names, _ = step_names(step)
    fn = tf.function(lambda args: step(args, training=False))
    kstate = [tf.zeros((1, int(t.shape[-1]))) for t in step.inputs[1:]]
    ktoken = tf.zeros((1,), tf.int32)

    def keras_step():
        nonlocal kstate
        out = fn([ktoken, *kstate])
        kstate = list(out[1:])
        out[0].numpy()

    return {"tflite_us_per_char": 1e6 * _median_time(tflite_step, n, repeats),
            "keras_us_per_char": 1e6 * _median_time(keras_step, n, repeats)}


def bench_classification(run, content: bytes, n: int, repeats: int) -> dict:
    import tensorflow as tf

    from kerasrnn.export.tokenizer import Tokenizer

    texts = np.load(run.path / "samples.npz")["text"].astype(str).tolist()[:max(1, n)]
    vocab = [str(t) for t in run.model.get_layer("vectorizer").get_vocabulary()]
    tok = Tokenizer(vocab, int(run.info["max_len"]))
    runner = _interpreter(content)
    fn = tf.function(lambda t: run.model(t, training=False))
    i = {"k": 0}

    def next_text():
        i["k"] = (i["k"] + 1) % len(texts)
        return texts[i["k"]]

    def tflite_one():
        runner(token_ids=np.array([tok.encode(next_text())], np.int32))

    def keras_one():
        fn(tf.constant([next_text()])).numpy()

    return {"tflite_ms_per_sentence": 1e3 * _median_time(tflite_one, n, repeats),
            "keras_ms_per_sentence": 1e3 * _median_time(keras_one, n, repeats)}


def bench_forecasting(run, content: bytes, n: int, repeats: int) -> dict:
    import tensorflow as tf

    x = np.load(run.path / "samples.npz")["x"][:1].astype(np.float32)
    runner = _interpreter(content)
    fn = tf.function(lambda w: run.model(w, training=False))
    xt = tf.constant(x)
    return {"tflite_ms_per_window": 1e3 * _median_time(lambda: runner(window=x), n, repeats),
            "keras_ms_per_window": 1e3 * _median_time(lambda: fn(xt).numpy(), n, repeats)}


@click.command()
@click.argument("run_dir", type=click.Path(file_okay=False))
@click.option("--calls", default=200, show_default=True, help="Calls per timing (characters / sentences).")
@click.option("--repeats", default=5, show_default=True, help="Timings; the median is reported.")
@click.option("--json-out", type=click.Path(dir_okay=False), default=None, help="Also write the results as JSON.")
def bench_export(run_dir, calls, repeats, json_out):
    """Latency of the TFLite artifact vs the Keras path, and float32/float16/int8 TFLite sizes."""
    import os

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from kerasrnn import atomic
    from kerasrnn.errors import UserError
    from kerasrnn.export import tflite
    from kerasrnn.rundir import load_run

    if calls < 1 or repeats < 1:
        raise UserError(f"--calls and --repeats must be >= 1, got {calls} and {repeats}")
    run = load_run(run_dir)
    task = run.info["task"]
    sizes, contents = {}, {}
    for q in ("none", "float16", "int8"):
        content, info = tflite.build(run, q)
        contents[q] = content
        sizes[info["quantization"]["mode"]] = len(content)
    click.echo(f"{run.path} ({task}); TFLite sizes as converted (no parity gate here: `kerasrnn export` "
               "falls back from full-integer to dynamic-range int8 when full-integer loses accuracy):")
    for mode, size in sizes.items():
        click.echo(f"  {mode:<22} {size / 1024:10.1f} KiB")
    bench = {"generation": bench_generation, "classification": bench_classification,
             "forecasting": bench_forecasting}.get(task)
    if bench is None:
        raise UserError(f"no export benchmark for a {task!r} run; pass a generation, classification or "
                        "forecasting run")
    latency = bench(run, contents["none"], calls, repeats)
    click.echo("Latency (float32, batch 1, median of {} x {} calls):".format(repeats, calls))
    for key, value in latency.items():
        click.echo(f"  {key:<24} {value:10.2f}")
    if json_out:
        atomic.write_text(json_out, json.dumps({"run": str(run.path), "task": task, "sizes_bytes": sizes,
                                                "latency": latency}, indent=2) + "\n")
