"""`kerasrnn forecast RUN_DIR`: forecast the next values of a series with a trained model."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import click
import numpy as np

from kerasrnn import data
from kerasrnn.errors import UserError
from kerasrnn.plots import pyplot, save_png
from kerasrnn.recipes import section
from kerasrnn.rundir import load_run


@click.command()
@click.argument("run_dir", type=click.Path(file_okay=False))
@click.option("--steps", default=None, type=int,
              help="Values to forecast (default: the run's horizon; 1 for a next-value model with input columns).")
@click.option("--input", "input_", type=click.Path(dir_okay=False),
              help="CSV with the history to continue (default: the run's own series, from its recipe).")
@click.option("--column", default=None,
              help="Target column of --input (header name or 0-based index; default: the run's own column).")
@click.option("--no-header", is_flag=True, help="--input has no header row.")
@click.option("--plot", type=click.Path(dir_okay=False), default=None,
              help="Write a PNG of history + forecast here (default RUN_DIR/future.png).")
@click.option("--tflite", "tflite_file", type=click.Path(dir_okay=False, exists=True), default=None,
              help="Predict with this exported TFLite forecaster (RUN_DIR still gives the history).")
@click.option("--savedmodel", "savedmodel_dir", type=click.Path(file_okay=False, exists=True), default=None,
              help="Predict with this exported SavedModel (RUN_DIR still gives the history).")
def forecast(run_dir, steps, input_, column, no_header, plot, tflite_file, savedmodel_dir):
    """Forecast the values after the end of a series; print them (with dates when the series has them).

    A next-value model rolls forward autoregressively; a direct model (model.head =
    "direct") gives up to its eval.horizon values at once.
    """
    from kerasrnn.tasks.forecasting import ForecastData, load_table  # lazy: imports TensorFlow

    run = load_run(run_dir, task="forecasting", load_model=False)
    info = run.info
    window = int(info["window"])
    outputs = int(info.get("outputs", 1))
    head = info.get("head", "next")
    features = info.get("features") or []
    if steps is None:  # the run's horizon; 1 for a next-value model with exogenous inputs (their future is unknown)
        steps = 1 if head == "next" and len(features) > 1 else int(info.get("horizon", 50))
    if steps < 1:
        raise UserError(f"--steps must be at least 1, got {steps}")
    recipe = info["recipe"]
    data_cfg = section(recipe, "data", ForecastData)
    if input_:  # the same layout as the training file: target column, data.inputs, data.date_column
        data_cfg = dataclasses.replace(data_cfg, source="series_csv", path=input_, header=not no_header,
                                       column=data_cfg.column if column is None else column, delimiter="")
    table = load_table(data_cfg, recipe["run"]["seed"])
    history = table.values
    if len(history) < window:
        raise UserError(f"the history has {len(history)} values, fewer than the model's window of {window}; "
                        "give a longer series")
    n_features = history.shape[1]
    if head == "direct" and steps > outputs:
        raise UserError(f"--steps {steps} is longer than the {outputs} values this direct model forecasts at once "
                        f"(its eval.horizon); ask for at most {outputs}")
    if head == "next" and n_features > 1 and steps > 1:
        raise UserError(f"this model uses {n_features - 1} exogenous input column(s) whose future values are "
                        "unknown, so it forecasts 1 step; use --steps 1, or train with model.head = \"direct\"")
    fn = None
    if tflite_file or savedmodel_dir:  # the exported artifact predicts; RUN_DIR gives the history and recipe
        from kerasrnn.export.runners import cli_artifact  # lazy: imports TensorFlow

        artifact = cli_artifact(run_dir, tflite_file, savedmodel_dir, task="forecasting")
        if int(artifact.manifest.get("window", window)) != window:
            raise UserError(f"{tflite_file or savedmodel_dir} has a window of {artifact.manifest['window']}, "
                            f"the run {run_dir} {window}; pass an export of this run")
        fn = artifact.predict
    else:
        run = load_run(run_dir, task="forecasting")
    future = _forecast(run, history, window, steps, head, fn)
    dates = None
    if table.step is not None:
        dates = [table.step.format(table.step.advance(table.dates[-1], k)) for k in range(1, steps + 1)]
    for i, value in enumerate(future, 1):
        click.echo(f"t+{i}\t{dates[i - 1]}\t{value:.6g}" if dates else f"t+{i}\t{value:.6g}")
    plot = Path(plot) if plot else Path(run_dir) / "future.png"
    _plot(plot, np.asarray(history[:, 0]), future)
    click.echo(f"Plot: {plot}")


def _forecast(run, history, window: int, steps: int, head: str, fn=None):
    """`steps` future target values in original units (`fn`: an exported artifact's predict)."""
    from kerasrnn.tasks.forecasting import predict, rollout  # lazy: imports TensorFlow

    if run.scaler.get("kind") == "minmax":  # runs made before the scaling moved into the model

        scaler = data.MinMaxScaler.from_dict(run.scaler)
        return scaler.inverse_transform(rollout(run.model, scaler.transform(history[-window:, 0]), steps, fn=fn))
    if head == "direct":
        return predict(run.model, history[None, -window:].astype(np.float32), fn=fn)[0, :steps]
    if history.shape[1] == 1:
        return rollout(run.model, history[-window:, 0], steps, fn=fn)
    return predict(run.model, history[None, -window:].astype(np.float32), fn=fn)[0, :1]


def _plot(target: Path, history, future) -> None:

    plt = pyplot()
    shown = history[-4 * len(future):]
    fig, ax = plt.subplots(figsize=(10, 3.5))
    t = np.arange(len(shown))
    ax.plot(t, shown, color="black", lw=1, label="history")
    ax.plot(np.arange(len(shown), len(shown) + len(future)), future, color="tab:red", ls="--", label="forecast")
    ax.legend(loc="upper left")
    ax.set_xlabel("time step")
    save_png(fig, target)
