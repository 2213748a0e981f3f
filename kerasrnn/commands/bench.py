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
    "layers": "kerasrnn.bench.layers:bench_layers",
    "claims": "kerasrnn.bench.claims:bench_claims",
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
@click.option("--json-out", type=click.Path(dir_okay=False), default=None, help="Also write the results as JSON.")
def bench_export(run_dir, calls, repeats, batch, json_out):
    """TFLite float32/float16/int8 sizes and LiteRT vs Keras speed (batch 1 vs --batch)."""
    from kerasrnn.bench import export as bench_lib  # deliberately lazy: imports TensorFlow

    with settings_as_flags({"calls": "--calls", "repeats": "--repeats", "batch": "--batch"}):
        result = bench_lib.measure(run_dir, calls, repeats, batch)
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
