"""`kerasrnn forecast RUN_DIR`: forecast the next values of a series with a trained model."""

from __future__ import annotations

from pathlib import Path

import click

from kerasrnn.errors import UserError


@click.command()
@click.argument("run_dir", type=click.Path(file_okay=False))
@click.option("--steps", default=None, type=int, help="Values to forecast (default: the run's horizon).")
@click.option("--input", "input_", type=click.Path(dir_okay=False),
              help="CSV with the history to continue (default: the run's own series, from its recipe).")
@click.option("--column", default="0", show_default=True, help="Column of --input (header name or 0-based index).")
@click.option("--no-header", is_flag=True, help="--input has no header row.")
@click.option("--plot", type=click.Path(dir_okay=False), default=None,
              help="Write a PNG of history + forecast here (default RUN_DIR/future.png).")
def forecast(run_dir, steps, input_, column, no_header, plot):
    """Roll the model forward autoregressively from the end of a series; print the forecast."""
    import numpy as np

    from kerasrnn import data
    from kerasrnn.recipes import section
    from kerasrnn.rundir import load_run
    from kerasrnn.tasks.forecasting import ForecastData, load_series, rollout

    run = load_run(run_dir, task="forecasting", load_model=False)
    window = int(run.info["window"])
    steps = int(run.info.get("horizon", 50)) if steps is None else steps
    if steps < 1:
        raise UserError(f"--steps must be at least 1, got {steps}")
    if input_:
        history = data.load_series_csv(input_, column, header=not no_header)
    else:
        recipe = run.info["recipe"]
        history = load_series(section(recipe, "data", ForecastData), recipe["run"]["seed"])
    if len(history) < window:
        raise UserError(f"the history has {len(history)} values, fewer than the model's window of {window}; "
                        "give a longer series")
    run = load_run(run_dir, task="forecasting")
    scaler = data.MinMaxScaler.from_dict(run.scaler)
    future = scaler.inverse_transform(rollout(run.model, scaler.transform(history[-window:]), steps))
    for i, value in enumerate(future, 1):
        click.echo(f"t+{i}\t{value:.6f}")
    plot = Path(plot) if plot else Path(run_dir) / "future.png"
    _plot(plot, np.asarray(history), future)
    click.echo(f"Plot: {plot}")


def _plot(target: Path, history, future) -> None:
    import numpy as np

    from kerasrnn.plots import pyplot, save_png

    plt = pyplot()
    shown = history[-4 * len(future):]
    fig, ax = plt.subplots(figsize=(10, 3.5))
    t = np.arange(len(shown))
    ax.plot(t, shown, color="black", lw=1, label="history")
    ax.plot(np.arange(len(shown), len(shown) + len(future)), future, color="tab:red", ls="--", label="forecast")
    ax.legend(loc="upper left")
    ax.set_xlabel("time step")
    save_png(fig, target)
