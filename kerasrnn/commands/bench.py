"""`kerasrnn bench ...`: the click commands over the benchmark library in `kerasrnn.bench`.

Each command parses its flags, calls the library function that measures, and
prints or writes the result; the measuring code itself never imports click.
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from kerasrnn import atomic
from kerasrnn.commands.flags import settings_as_flags
from kerasrnn.commands.lazy import LazyGroup

# name -> "module:attribute" of its click command (imported on first use).
BENCHES = {
    "layers": "kerasrnn.commands.bench:bench_layers",
    "claims": "kerasrnn.commands.bench:bench_claims",
    "export": "kerasrnn.commands.bench:bench_export",
    "forecast": "kerasrnn.commands.bench:bench_forecast",
    "scale": "kerasrnn.commands.bench:bench_scale",
}


@click.group(cls=LazyGroup, lazy_commands=BENCHES)
def bench():
    """Benchmarks: `layers` (speed vs Keras/PyTorch), `claims` (the seeds' table), `export`, `forecast`, `scale`."""


@click.command("export")
@click.argument("run_dir", type=click.Path(file_okay=False))
@click.option("--calls", default=200, show_default=True, help="Items (characters / sentences / windows) per timing.")
@click.option("--repeats", default=5, show_default=True, help="Timings; the median is reported.")
@click.option("--batch", default=32, show_default=True, help="The batched size compared with batch 1.")
@click.option("--fold-embedding", is_flag=True, default=False,
              help="Classifiers: measure the models `kerasrnn export --fold-embedding` writes.")
@click.option("--json-out", type=click.Path(dir_okay=False), default=None, help="Also write the results as JSON.")
def bench_export(run_dir, calls, repeats, batch, fold_embedding, json_out):
    """TFLite float32/float16/int8 sizes and LiteRT vs Keras speed (batch 1 vs --batch).

    For a classifier it also prints the arithmetic bound on the batch speed-up
    (tflite_1worker_interpreter_batch_speedup_bound): batch-1 time over the
    sentence's recurrent FLOPs at one interpreter's measured GEMM rate.
    """
    from kerasrnn.bench import export as bench_lib  # deliberately lazy: imports TensorFlow

    with settings_as_flags({"calls": "--calls", "repeats": "--repeats", "batch": "--batch"}):
        result = bench_lib.measure(run_dir, calls, repeats, batch, fold_embedding)
    click.echo(bench_lib.report(result))
    if json_out:
        atomic.write_text(json_out, json.dumps(result, indent=2) + "\n")


@click.command("forecast")
@click.option("--data-dir", type=click.Path(file_okay=False), default=None,
              help="Folder with co2_weekly.csv and sunspots_yearly.csv (e.g. ../shared/data/series).")
@click.option("--recipe", default="series-forecast", show_default=True, help="Recipe name or .toml path.")
@click.option("--seeds", default=3, show_default=True, type=int, help="Training seeds per series.")
@click.option("--set", "extra", multiple=True, metavar="SECTION.KEY=VALUE", help="Extra recipe overrides.")
@click.option("--only", multiple=True, help="Run only these series (repeatable).")
@click.option("--no-sarimax", is_flag=True, help="Skip the SARIMAX column.")
@click.option("--quick", is_flag=True, help="One seed, 5 epochs, no --data-dir series (a smoke run).")
@click.option("--out", type=click.Path(file_okay=False), default="bench_results/forecast", show_default=True,
              help="Folder for forecast.md, forecast.json, the generated CSVs and the runs.")
def bench_forecast(data_dir, recipe, seeds, extra, only, no_sarimax, quick, out):
    """The forecasting recipe vs persistence, seasonal naive, drift and SARIMAX (one-step RMSE, last 15%)."""
    from kerasrnn.bench import forecast as bench_lib  # deliberately lazy: imports TensorFlow

    with settings_as_flags({"seeds": "--seeds", "only": "--only"}):
        bench_lib.run_benchmark(data_dir, recipe, seeds, extra, only, sarimax=not no_sarimax, quick=quick,
                                out=Path(out), log=click.echo)


@click.command("scale")
@click.option("--units", default=128, show_default=True, type=click.IntRange(1), help="LSTM units of the measured model.")
@click.option("--layers", default=1, show_default=True, type=click.IntRange(1), help="LSTM layers of the measured model.")
@click.option("--seq-len", default=64, show_default=True, type=click.IntRange(1), help="Steps per sequence.")
@click.option("--batch-size", default=32, show_default=True, type=click.IntRange(1), help="Sequences per worker per step.")
@click.option("--steps", default=20, show_default=True, type=click.IntRange(1), help="Timed steps.")
@click.option("--paper-batch", default=64, show_default=True, type=click.IntRange(1),
              help="Batch of the measured 2xLSTM(512) step used on paper.")
@click.option("--paper-steps", default=3, show_default=True, type=click.IntRange(1), help="Its timed steps.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def bench_scale(units, layers, seq_len, batch_size, steps, paper_batch, paper_steps, as_json):
    """Steps/s and examples/s on 1 vs 2 workers (loopback), scaling efficiency, N nodes on paper."""
    from kerasrnn.bench.scale import measure, report  # deliberately lazy: the workers import TensorFlow

    result = measure(units, layers, seq_len, batch_size, steps, paper_batch, paper_steps)
    click.echo(json.dumps(result, indent=2) if as_json else report(result))


@click.command("layers")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON instead of a table.")
@click.option("--cells", default="lstm,gru,simple_rnn", show_default=True, help="Comma-separated cells.")
@click.option("--batch", type=int, help="Batch size [default: 64].")
@click.option("--length", type=int, help="Sequence length [default: 100].")
@click.option("--input", "input_", type=int, help="Input features [default: 128].")
@click.option("--units", type=int, help="Hidden units [default: 256].")
@click.option("--reps", type=int, help="Measured rounds [default: 10].")
@click.option("--warmup", type=int, help="Discarded rounds [default: 3].")
@click.option("--quick", is_flag=True, help="Small sizes and few reps (B8 T12 16->32, 3 reps) for a smoke run.")
@click.option("--no-torch", is_flag=True, help="Leave PyTorch out even if installed.")
@click.option("--user-path", is_flag=True,
              help="Time Sequential + compile defaults + train_on_batch/predict_on_batch instead of raw steps.")
@click.option("--threads", type=int, help="CPU threads for TensorFlow and PyTorch alike [default: all cores].")
@click.option("--cpu-time", is_flag=True,
              help="Report process CPU time instead of wall time: with --threads 1, comparable numbers on a "
                   "machine other jobs are using (idle-spinning threads inflate it with more threads).")
@click.option("--tf-intra-threads", type=int,
              help="Threads of TensorFlow's intra-op pool only (inter-op pool and PyTorch unchanged) "
                   "[default: all cores].")
def bench_layers(as_json, cells, batch, length, input_, units, reps, warmup, quick, no_torch, user_path,
                 threads, cpu_time, tf_intra_threads):
    """Training-step and inference time: kerasrnn vs keras.layers (XLA on/off) vs PyTorch.

    Interleaved rounds in one process; medians, speed-ups against the built-in
    in its faster XLA setting and against PyTorch, and GFLOP/s against a
    measured matmul peak. Example: kerasrnn bench layers --cells lstm --reps 20
    """
    from kerasrnn.bench import layers as bench_lib  # lazy: imports TensorFlow

    flags = {"batch": "--batch", "length": "--length", "input": "--input", "units": "--units", "reps": "--reps",
             "warmup": "--warmup", "cells": "--cells", "threads": "--threads",
             "tf_intra_threads": "--tf-intra-threads"}
    with settings_as_flags(flags):
        cfg = bench_lib.config_from(cells, quick=quick, torch=not no_torch, user_path=user_path, threads=threads,
                                    cpu_time=cpu_time, tf_intra_threads=tf_intra_threads, batch=batch,
                                    length=length, input=input_, units=units, reps=reps, warmup=warmup)
    import tensorflow as tf  # lazy: heavy import

    tf.get_logger().setLevel("ERROR")  # one tf.function per contender is intended
    if threads or tf_intra_threads:  # effective only before TensorFlow runs its first op (a fresh process)
        try:
            tf.config.threading.set_intra_op_parallelism_threads(tf_intra_threads or threads)
            if threads:
                tf.config.threading.set_inter_op_parallelism_threads(threads)
        except RuntimeError:  # already initialised in this process (e.g. called from Python)
            click.echo("note: TensorFlow was already initialised; its thread settings are unchanged", err=True)
    echo = (lambda msg: click.echo(msg, err=True)) if not as_json else (lambda msg: None)
    report = bench_lib.run_bench(cfg, echo)
    click.echo(json.dumps(report, indent=2) if as_json else bench_lib.format_table(report))


@click.command("claims")
@click.option("--quick", is_flag=True, help="CI-sized run (~1-2 minutes on 2 cores).")
@click.option("--json", "as_json", is_flag=True, help="Print the measurements and verdicts as JSON.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path),
              default=Path("bench_results/claims"), show_default=True,
              help="Folder for claims.md, claims.json and the plots (replaced atomically).")
def bench_claims(quick: bool, as_json: bool, out_dir: Path):
    """Measure the seeds' SimpleRNN vs LSTM vs GRU table: params, speed, memory, gradients, long memory."""
    from kerasrnn.bench import claims as bench_lib  # lazy: imports TensorFlow
    from kerasrnn.errors import UserError

    if out_dir.exists() and not out_dir.is_dir():
        raise UserError(f"--out {out_dir} is a file; give a folder path")
    cfg = bench_lib.BenchConfig.quick_config() if quick else bench_lib.BenchConfig()
    with atomic.atomic_dir(out_dir) as tmp:
        meas = bench_lib.run_claims(cfg, tmp)
    if as_json:
        click.echo(json.dumps(meas, indent=1, default=bench_lib.json_default))
    else:
        click.echo((out_dir / "claims.md").read_text(encoding="utf-8"))
        click.echo(f"Wrote {out_dir}/claims.md, claims.json, grad_norm_init.png, speed_memory.png, long_memory/")
