"""One-variable time-series forecasting (the seeds' sine-wave GRU/LSTM example, done properly).

The series is split in time order into train/validation/test; a min-max scaler
to [-1, 1] is fit on the *training part only* (``scaler.json``). The model sees
a window of ``window`` scaled values and predicts the next one:
``window`` (W, 1) → recurrent layers ``rnn_i`` → ``Dense(1, name="forecast")``.

Evaluation on the test part, in the original units:

- one-step: every test value predicted from the true window before it (MAE, RMSE,
  and the persistence baseline "next = last value" for scale);
- rollout: from the window just before the test part, ``horizon`` steps are
  predicted autoregressively (each prediction is fed back as input) and compared
  with the first ``horizon`` test values (MAE, RMSE);
- ``forecast.png``: actual vs one-step vs rollout.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import keras
import numpy as np

from kerasrnn import atomic, rundir, train
from kerasrnn.errors import UserError
from kerasrnn.recipes import RunConfig, section
from kerasrnn.tasks.common import canonical_cell, check_model_config, print_metrics, rnn_stack, round_floats

SOURCES = ("sine", "series_csv")


@dataclass
class ForecastData:
    """``[data]`` for forecasting. Keys not used by the chosen `source` are ignored.

    Attributes:
        source: "sine" (generated, no download) or "series_csv" (default "sine").
        n: number of sine samples (default 1000).
        start: sine x start (default 0.0).
        stop: sine x stop (default 50.0).
        amplitude: sine amplitude (default 0.5).
        noise: std of Gaussian noise added to the sine, seeded by run.seed (default 0.0).
        path: CSV/TSV file (source "series_csv").
        column: CSV column, header name or 0-based index (default "0").
        header: the CSV has a header row (default true).
        delimiter: CSV delimiter, "" = tab for .tsv/.tab files, else comma (default "").
        window: past values the model sees (default 40).
        fractions: chronological train/validation/test shares (default [0.7, 0.15, 0.15]).
    """

    source: str = "sine"
    n: int = 1000
    start: float = 0.0
    stop: float = 50.0
    amplitude: float = 0.5
    noise: float = 0.0
    path: str = ""
    column: str = "0"
    header: bool = True
    delimiter: str = ""
    window: int = 40
    fractions: list[float] = field(default_factory=lambda: [0.7, 0.15, 0.15])


@dataclass
class ForecastModel:
    """``[model]``: ``num_layers`` × ``cell(units)`` → Dense(1).

    Attributes:
        cell: "lstm", "gru" or "simple_rnn" (default "lstm").
        units: units per recurrent layer (default 32).
        num_layers: recurrent layers (default 2).
        dropout: dropout after each recurrent layer (default 0.0).
    """

    cell: str = "lstm"
    units: int = 32
    num_layers: int = 2
    dropout: float = 0.0


@dataclass
class ForecastEval:
    """``[eval]``.

    Attributes:
        horizon: autoregressive rollout length evaluated on the test part (default 50).
    """

    horizon: int = 50


SCHEMA = {"run": RunConfig, "data": ForecastData, "model": ForecastModel, "train": train.TrainConfig,
          "eval": ForecastEval}


# ----------------------------------------------------------------------------- data


def load_series(cfg: ForecastData, seed: int) -> np.ndarray:
    """The whole series (original units) for the configured source."""
    from kerasrnn import data

    if cfg.source == "sine":
        return data.sine_wave(cfg.n, cfg.start, cfg.stop, cfg.amplitude, cfg.noise, seed)
    if cfg.source == "series_csv":
        if not cfg.path:
            raise UserError("data.path is empty: give the CSV file, e.g. --set data.path=series.csv")
        return data.load_series_csv(cfg.path, cfg.column, cfg.header, cfg.delimiter or None)
    raise UserError(f"data.source {cfg.source!r} is not valid for forecasting; valid sources: {', '.join(SOURCES)}")


def split_points(n: int, fractions) -> tuple[int, int]:
    """Indices where validation and test start, for chronological `fractions`.

    >>> split_points(100, [0.7, 0.15, 0.15])
    (70, 85)
    """
    fractions = [float(f) for f in fractions]
    if len(fractions) != 3 or min(fractions) <= 0 or abs(sum(fractions) - 1) > 1e-6:
        raise UserError(f"data.fractions must be 3 positive shares summing to 1 (train, validation, test), "
                        f"got {fractions}")
    a = int(round(n * fractions[0]))
    b = int(round(n * (fractions[0] + fractions[1])))
    return a, b


def windows(values: np.ndarray, window: int) -> tuple[np.ndarray, np.ndarray]:
    """All (x (N, W, 1), y (N, 1)) next-value windows of a 1-D array, as numpy."""
    n = len(values) - window
    x = np.stack([values[i:i + window] for i in range(n)])[..., None].astype(np.float32)
    y = values[window:, None].astype(np.float32)
    return x, y


# ----------------------------------------------------------------------------- model


def build_model(window: int, cfg: ForecastModel) -> keras.Model:
    """The forecasting model of the run-directory contract."""
    check_model_config(cfg.units, cfg.num_layers, cfg.dropout)
    inputs = keras.Input(shape=(window, 1), name="window")
    x = rnn_stack(inputs, cfg.cell, cfg.units, cfg.num_layers, cfg.dropout, last_return_sequences=False)
    return keras.Model(inputs, keras.layers.Dense(1, name="forecast")(x), name="forecaster")


def _predict_fn(model):
    import tensorflow as tf

    return tf.function(lambda x: model(x, training=False))


def predict_one_step(model, x: np.ndarray, batch_size: int = 512) -> np.ndarray:
    """Scaled one-step predictions (N,) for scaled windows x (N, W, 1)."""
    fn = _predict_fn(model)
    return np.concatenate([fn(x[i:i + batch_size]).numpy()[:, 0] for i in range(0, len(x), batch_size)])


def rollout(model, context: np.ndarray, steps: int) -> np.ndarray:
    """Autoregressive forecast: `steps` scaled values following the scaled `context` (W,).

    Each prediction is appended to the window and the oldest value dropped.

    >>> rollout(model, np.zeros(40, "float32"), 50).shape  # doctest: +SKIP
    (50,)
    """
    fn = _predict_fn(model)
    window = np.asarray(context, dtype=np.float32).copy()
    out = np.empty(steps, dtype=np.float32)
    for i in range(steps):
        out[i] = float(fn(window[None, :, None])[0, 0])
        window = np.concatenate([window[1:], out[i:i + 1]])
    return out


def errors(actual, predicted) -> dict:
    """MAE and RMSE.

    >>> errors([0.0, 2.0], [1.0, 1.0])
    {'mae': 1.0, 'rmse': 1.0}
    """
    diff = np.asarray(predicted, np.float64) - np.asarray(actual, np.float64)
    return {"mae": float(np.abs(diff).mean()), "rmse": float(np.sqrt((diff ** 2).mean()))}


def plot_forecast(target: Path, series: np.ndarray, test_start: int, one_step: np.ndarray,
                  roll: np.ndarray, title: str = "") -> None:
    """PNG: the series, one-step predictions over the test part, and the rollout."""
    from kerasrnn.plots import pyplot, save_png

    plt = pyplot()

    fig, ax = plt.subplots(figsize=(11, 4))
    t = np.arange(len(series))
    ax.plot(t, series, color="black", lw=1, label="actual")
    ax.plot(t[test_start:test_start + len(one_step)], one_step, color="tab:blue", lw=1, label="one-step prediction")
    ax.plot(t[test_start:test_start + len(roll)], roll, color="tab:red", lw=2, ls="--",
            label=f"{len(roll)}-step rollout")
    ax.axvline(test_start, color="gray", ls=":", label="test start")
    ax.set_xlabel("time step")
    ax.set_title(title or "actual vs predicted")
    ax.legend(loc="upper left", fontsize=8)
    save_png(fig, target)


# ----------------------------------------------------------------------------- run


def run(recipe: dict, run_dir: Path, resume: bool = False) -> dict:
    """Train a forecaster from a resolved recipe and write its run directory."""
    from kerasrnn import data

    run_cfg = section(recipe, "run", RunConfig)
    data_cfg = section(recipe, "data", ForecastData)
    model_cfg = section(recipe, "model", ForecastModel)
    train_cfg = section(recipe, "train", train.TrainConfig)
    eval_cfg = section(recipe, "eval", ForecastEval)
    cell = canonical_cell(model_cfg.cell)
    check_model_config(model_cfg.units, model_cfg.num_layers, model_cfg.dropout)
    w, horizon = data_cfg.window, eval_cfg.horizon
    if w < 1 or horizon < 1:
        raise UserError(f"data.window and eval.horizon must be at least 1, got {w} and {horizon}")
    train.set_seeds(run_cfg.seed)

    series = load_series(data_cfg, run_cfg.seed)
    val_start, test_start = split_points(len(series), data_cfg.fractions)
    if val_start < w + 1:
        raise UserError(f"the training part has {val_start} values, fewer than data.window+1 = {w + 1}; "
                        "use a longer series, a smaller window or a larger training share")
    if len(series) - test_start < horizon:
        raise UserError(f"the test part has {len(series) - test_start} values, fewer than eval.horizon = {horizon}; "
                        "use a longer series, a shorter horizon or a larger test share")
    scaler = data.MinMaxScaler().fit(series[:val_start])  # train part only
    scaled = scaler.transform(series)
    work = rundir.start(run_dir, resume)
    try:
        rundir.write_json(work / "scaler.json", scaler.to_dict())
        bs = train_cfg.batch_size
        train_ds = data.series_windows(scaled[:val_start], w, bs, shuffle=True, seed=run_cfg.seed)
        if train_cfg.steps_per_epoch > 0:
            train_ds = train_ds.repeat()
        # validation/test windows may start in the previous part: only their targets must be in the part
        val_ds = data.series_windows(scaled[val_start - w:test_start], w, bs, shuffle=False)
        model = build_model(w, model_cfg)
        train.compile_model(model, train_cfg, "mse", ["mae"], cell)
        fit_info = train.fit(model, train_ds, val_ds, train_cfg, work)

        x_test, y_test = windows(scaled[test_start - w:], w)
        one_step = scaler.inverse_transform(predict_one_step(model, x_test))
        actual = series[test_start:]
        roll = scaler.inverse_transform(rollout(model, scaled[test_start - w:test_start], horizon))
        one = errors(actual, one_step)
        rolled = errors(actual[:horizon], roll)
        persistence = errors(actual, series[test_start - 1:-1])
        metrics = round_floats({
            "test_one_step_mae": one["mae"], "test_one_step_rmse": one["rmse"],
            f"test_rollout_{horizon}_mae": rolled["mae"], f"test_rollout_{horizon}_rmse": rolled["rmse"],
            "test_persistence_rmse": persistence["rmse"], "horizon": horizon,
            "series_length": int(len(series)), "split_test_start": int(test_start), **fit_info})
        plot_forecast(work / "forecast.png", series, test_start, one_step, roll,
                      f"{recipe['run']['name']}: {horizon}-step rollout RMSE {rolled['rmse']:.4f}")
        x_val, y_val = windows(scaled[val_start - w:test_start], w)
        with atomic.atomic_file(work / "samples.npz", suffix=".npz") as tmp:
            np.savez(tmp, x=x_val[:256], y=y_val[:256])
        rundir.save_model(model, work / "model.keras")
        rundir.write_json(work / "metrics.json", metrics)
        rundir.write_info(work, recipe, window=w, horizon=horizon)
    except BaseException:
        if not resume and not (work / "checkpoints" / "backup").exists():
            import shutil

            shutil.rmtree(work, ignore_errors=True)
        raise
    rundir.finish(work, run_dir)

    print_metrics(f"Test part ({run_dir}), original units:",
                  {k: v for k, v in metrics.items() if k.startswith("test_")})
    print(f"Plot: {run_dir / 'forecast.png'}\nRun directory: {run_dir}")
    return metrics
