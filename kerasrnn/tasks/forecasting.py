"""Time-series forecasting that holds up on trending series (and the seeds' sine wave).

The series (a CSV column, optionally with exogenous columns and a date column, or
the generated sine) is split in time order into train/validation/test. The model
sees a window of ``W`` values of ``F`` features (feature 0 = the target) and
predicts the next ``H`` target values:

``window (B, W, F)`` → `SeriesScaling` → ``rnn_i`` layers → ``Dense(H, name="head")``
→ `SeriesUnscaling` ``forecast (B, H)``

with ``H = 1`` for ``model.head = "next"`` (longer horizons by autoregressive
rollout) or ``H = eval.horizon`` for ``"direct"`` (every horizon at once). The
scaling is inside the model, so it takes and returns the series' own units.
By default (chosen on validation data, see the README) inputs are normalised per
window, ``x̃ = (x - x_last) / s`` with ``s`` the RMS one-step change of the
training part, and the network predicts the change from the last value:
``ŷ_{t+h} = y_t + s · z_h`` — ``z = 0`` is persistence, and the head starts at
zero, so training starts from the persistence forecast
(`kerasrnn.data.transforms` documents every option).

After training, with ``model.shrink`` (default) each horizon's predicted change is
multiplied by ``α_h = clip(Σ(y - y_t)(ŷ - y_t) / Σ(ŷ - y_t)², 0, 1)`` fit on the
validation part, which minimises the validation MSE over α ∈ [0, 1]. As α = 0 is
persistence, the saved model is never worse than persistence on validation; a run
whose network is worse says so.

Evaluation on the test part, in original units (``metrics.json``, printed):

- one-step MAE/RMSE of the model and of the baselines persistence, seasonal naive
  (``eval.season``) and drift (`kerasrnn.tasks.baselines`);
- per-horizon RMSE/MAE (h = 1..H over every test origin), model and baselines, and
  the model's per-horizon validation RMSE ``val_horizon_rmse`` (to compare heads on);
- the ``eval.horizon``-step forecast from the start of the test part;
- ``forecast.png``: one-step predictions and baselines over the test part, the
  H-step forecast with a band of ±1 and ±2 validation RMSE per horizon, and the
  per-horizon RMSE of the model and the baselines.
"""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np

from kerasrnn import atomic, data, rundir, train
from kerasrnn.data.series import SeriesTable, load_series_table
from kerasrnn.data.transforms import SeriesScaling
from kerasrnn.errors import UserError
from kerasrnn.plots import pyplot, save_png
from kerasrnn.recipes import RunConfig, section
from kerasrnn.tasks import baselines
from kerasrnn.tasks.common import canonical_cell, check_model_config, print_metrics, rnn_stack, round_floats
from kerasrnn.tasks.forecast_layers import SeriesScaling as ScalingLayer
from kerasrnn.tasks.forecast_layers import SeriesUnscaling
from kerasrnn.tasks.forecasting_schema import (  # noqa: F401  (HEADS, SCHEMA: re-exported)
    HEADS, SCHEMA, SOURCES, ForecastData, ForecastEval, ForecastModel)


# ----------------------------------------------------------------------------- data


def load_table(cfg: ForecastData, seed: int) -> SeriesTable:
    """The whole series (original units, target first) for the configured source."""

    if cfg.source == "sine":
        values = data.sine_wave(cfg.n, cfg.start, cfg.stop, cfg.amplitude, cfg.noise, seed)
        return SeriesTable(values[:, None], ["sine"])
    if cfg.source == "series_csv":
        if not cfg.path:
            raise UserError("data.path is empty: give the CSV file, e.g. data.path = \"series.csv\"")

        return load_series_table(cfg.path, [cfg.column, *cfg.inputs], cfg.header, cfg.delimiter or None,
                                 cfg.date_column, cfg.missing)
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


def origin_windows(values: np.ndarray, window: int, origins) -> np.ndarray:
    """Windows (N, W, F) float32 ending at each origin (the last known index).

    >>> origin_windows(np.arange(5.0)[:, None], 2, [1, 4])[..., 0].tolist()
    [[0.0, 1.0], [3.0, 4.0]]
    """
    values = np.asarray(values, np.float32).reshape(len(values), -1)
    origins = np.asarray(origins, dtype=np.int64)
    index = origins[:, None] + np.arange(1 - window, 1)[None, :]
    return values[index]


def future_targets(target: np.ndarray, origins, horizon: int) -> np.ndarray:
    """The next `horizon` target values after each origin, (N, horizon).

    >>> future_targets(np.arange(5.0), [1, 2], 2).tolist()
    [[2.0, 3.0], [3.0, 4.0]]
    """
    origins = np.asarray(origins, dtype=np.int64)
    return np.asarray(target, np.float64)[origins[:, None] + np.arange(1, horizon + 1)[None, :]]


def origins_between(first_target: int, end: int, window: int, horizon: int) -> np.ndarray:
    """Origins whose `horizon` targets lie in ``[first_target, end)`` and whose window fits.

    >>> origins_between(5, 10, 3, 2).tolist()
    [4, 5, 6, 7]
    """
    return np.arange(max(first_target - 1, window - 1), end - horizon)


# ----------------------------------------------------------------------------- model


def build_model(window: int, n_features: int, outputs: int, cfg: ForecastModel,
                scaling: SeriesScaling) -> tuple[keras.Model, keras.Model]:
    """The forecaster of the run-directory contract and its scaled-units core.

    Returns:
        ``(model, core)``: ``model`` maps ``window`` (B, W, F) in original units to
        ``forecast`` (B, H) in original units; ``core`` shares its layers and stops
        at the head (scaled units ``z``), which is what training fits.
    """

    check_model_config(cfg.units, cfg.num_layers, cfg.dropout)
    if cfg.target == "level" and scaling.scaling == "window":
        raise UserError("model.target = \"level\" needs data.scaling = \"standard\" or \"minmax\" "
                        "(with \"window\" the model always predicts the change from the last value)")
    inputs = keras.Input(shape=(window, n_features), name="window")
    x = ScalingLayer(scaling.input_center, scaling.input_scale, scaling.input_relative_to_last,
                     name="scaling")(inputs)
    x = rnn_stack(x, cfg.cell, cfg.units, cfg.num_layers, cfg.dropout, last_return_sequences=False)
    relative = scaling.output_relative_to_last
    z = keras.layers.Dense(outputs, name="head", kernel_initializer="zeros" if relative else "glorot_uniform")(x)
    y = SeriesUnscaling(scaling.output_offset, scaling.output_scale, relative, name="forecast")([z, inputs])
    return keras.Model(inputs, y, name="forecaster"), keras.Model(inputs, z, name="forecaster_core")


def _predict_fn(model):
    import tensorflow as tf  # lazy: heavy import

    return tf.function(lambda x: model(x, training=False))


def predict(model, x: np.ndarray, batch_size: int = 512, fn=None) -> np.ndarray:
    """Model outputs (N, H) for windows x (N, W, F), batched."""
    fn = fn or _predict_fn(model)
    if len(x) == 0:
        return np.zeros((0, model.output.shape[-1]), np.float32)
    return np.concatenate([np.asarray(fn(x[i:i + batch_size])) for i in range(0, len(x), batch_size)])


def predict_one_step(model, x: np.ndarray, batch_size: int = 512) -> np.ndarray:
    """One-step predictions (N,) for windows x (N, W, F): the first output."""
    return predict(model, x, batch_size)[:, 0]


def rollout(model, context: np.ndarray, steps: int, fn=None) -> np.ndarray:
    """Autoregressive forecast of `steps` values after `context`, a window (W,) or windows (B, W).

    Each prediction is appended to the window and the oldest value dropped (a
    one-feature, next-value model). Returns (steps,) or (B, steps). `fn`
    (windows (B, W, 1) -> (B, H), numpy) replaces the model, e.g. an exported
    artifact's ``predict``.

    >>> rollout(model, np.zeros(40, "float32"), 50).shape  # doctest: +SKIP
    (50,)
    """
    fn = fn or _predict_fn(model)
    context = np.asarray(context, dtype=np.float32)
    single = context.ndim == 1
    window = (context[None] if single else context).copy()
    out = np.empty((len(window), steps), dtype=np.float32)
    for i in range(steps):
        out[:, i] = np.asarray(fn(window[:, :, None]))[:, 0]
        window = np.concatenate([window[:, 1:], out[:, i:i + 1]], axis=1)
    return out[0] if single else out


def multi_step(model, values: np.ndarray, window: int, origins, horizon: int, head: str) -> np.ndarray | None:
    """H-step forecasts (N, H) from every origin: direct outputs, or rollout of a next-value model.

    None when it cannot be done (a next-value model with exogenous inputs would
    need their future values).
    """
    x = origin_windows(values, window, origins)
    if head == "direct":
        return predict(model, x)[:, :horizon].astype(np.float64)
    if values.shape[1] > 1:
        return None
    return rollout(model, x[..., 0], horizon).astype(np.float64)


def errors(actual, predicted) -> dict:
    """MAE and RMSE.

    >>> errors([0.0, 2.0], [1.0, 1.0])
    {'mae': 1.0, 'rmse': 1.0}
    """
    diff = np.asarray(predicted, np.float64) - np.asarray(actual, np.float64)
    return {"mae": float(np.abs(diff).mean()), "rmse": float(np.sqrt((diff ** 2).mean()))}


def per_horizon(actual, predicted) -> dict:
    """RMSE and MAE per column (horizon) of (N, H) arrays.

    >>> per_horizon([[0.0, 0.0], [0.0, 0.0]], [[1.0, 2.0], [-1.0, 2.0]])
    {'rmse': [1.0, 2.0], 'mae': [1.0, 2.0]}
    """
    diff = np.asarray(predicted, np.float64) - np.asarray(actual, np.float64)
    return {"rmse": np.sqrt((diff ** 2).mean(axis=0)).tolist(), "mae": np.abs(diff).mean(axis=0).tolist()}


def shrink_factors(actual, predicted, base) -> np.ndarray:
    """Per horizon, ``α = clip(Σ(y - b)(ŷ - b) / Σ(ŷ - b)², 0, 1)``: the MSE-optimal blend with persistence.

    >>> shrink_factors([[1.0], [2.0]], [[2.0], [4.0]], [[0.0], [0.0]]).tolist()
    [0.5]
    """
    d = np.asarray(actual, np.float64) - np.asarray(base, np.float64)
    p = np.asarray(predicted, np.float64) - np.asarray(base, np.float64)
    denom = (p ** 2).sum(axis=0)
    alpha = np.where(denom > 0, (d * p).sum(axis=0) / np.where(denom > 0, denom, 1.0), 0.0)
    return np.clip(alpha, 0.0, 1.0)


def apply_shrink(model: keras.Model, alpha: np.ndarray) -> None:
    """Multiply the head's columns (kernel and bias) by `alpha` (exact: z_h → α_h z_h)."""
    head = model.get_layer("head")
    kernel, bias = head.get_weights()
    head.set_weights([kernel * alpha[None, :].astype(kernel.dtype), bias * alpha.astype(bias.dtype)])


def _dataset(x, z, batch_size: int, shuffle: bool, seed: int, repeat: bool):
    import tensorflow as tf  # lazy: heavy import

    ds = tf.data.Dataset.from_tensor_slices((x.astype(np.float32), z.astype(np.float32)))
    if shuffle:
        ds = ds.shuffle(len(x), seed=seed, reshuffle_each_iteration=True)
    if repeat:
        ds = ds.repeat()
    return ds.batch(batch_size).prefetch(tf.data.AUTOTUNE)


# ----------------------------------------------------------------------------- plot


def plot_forecast(target: Path, series: np.ndarray, test_start: int, one_step: np.ndarray, path: np.ndarray,
                  title: str = "", baseline_one_step: dict | None = None, band: np.ndarray | None = None,
                  horizon_rmse: dict | None = None, dates=None, path_label: str = "") -> None:
    """PNG: one-step predictions and baselines over the test part; the H-step forecast with its band.

    Args:
        target: the PNG path.
        series: the target series (N,).
        test_start: index of the first test value.
        one_step: one-step predictions of every test value.
        path: the H-step forecast from the start of the test part.
        title: figure title.
        baseline_one_step: {name: one-step forecasts over the test part}.
        band: per-horizon validation RMSE (H,) for the ±1/±2 RMSE band around `path`.
        horizon_rmse: {name: per-horizon test RMSE list} for the third panel.
        dates: x values (N,) (dates) instead of indices.
        path_label: legend label of `path`.
    """

    plt = pyplot()
    panels = 3 if horizon_rmse else 2
    fig, axes = plt.subplots(panels, 1, figsize=(11, 3.4 * panels))
    t = np.arange(len(series)) if dates is None else np.asarray(dates)
    ax = axes[0]
    shown = max(0, test_start - (len(series) - test_start) // 2)
    ax.plot(t[shown:], series[shown:], color="black", lw=1, label="actual")
    ax.plot(t[test_start:test_start + len(one_step)], one_step, color="tab:blue", lw=1.2, label="model, one step")
    colors = {"persistence": "tab:gray", "seasonal_naive": "tab:green", "drift": "tab:orange"}
    for name, values in (baseline_one_step or {}).items():
        ax.plot(t[test_start:test_start + len(values)], values, lw=0.8, ls=":", color=colors.get(name),
                label=f"{name.replace('_', ' ')}, one step")
    ax.axvline(t[test_start], color="gray", ls=":")
    ax.set_title(title or "test part: one-step forecasts")
    ax.legend(loc="upper left", fontsize=7)

    ax = axes[1]
    h = len(path)
    context = max(0, test_start - 3 * h)
    ax.plot(t[context:test_start + h], series[context:test_start + h], color="black", lw=1, label="actual")
    tf_ = t[test_start:test_start + h]
    if band is not None and len(band) == h:
        for k, alpha in ((2, 0.15), (1, 0.3)):
            ax.fill_between(tf_, path - k * band, path + k * band, color="tab:red", alpha=alpha, lw=0,
                            label=f"±{k} validation RMSE")
    ax.plot(tf_, path, color="tab:red", lw=2, ls="--", label=path_label or f"{h}-step forecast")
    ax.axvline(t[test_start], color="gray", ls=":")
    ax.set_title(f"{h}-step forecast from the start of the test part")
    ax.legend(loc="upper left", fontsize=7)

    if horizon_rmse:
        ax = axes[2]
        for name, values in horizon_rmse.items():
            ax.plot(np.arange(1, len(values) + 1), values, marker="." if len(values) < 30 else None,
                    color="tab:red" if name == "model" else colors.get(name), label=name.replace("_", " "))
        ax.set_xlabel("horizon (steps ahead)")
        ax.set_ylabel("test RMSE")
        ax.set_title("test RMSE per horizon")
        ax.legend(loc="upper left", fontsize=7)
    fig.tight_layout()
    save_png(fig, target)


# ----------------------------------------------------------------------------- run


def _check_lengths(n: int, val_start: int, test_start: int, w: int, outputs: int, horizon: int) -> None:
    if val_start < w + outputs:
        raise UserError(f"the training part has {val_start} values, fewer than data.window + outputs = "
                        f"{w + outputs}; use a longer series, a smaller window or a larger training share")
    if test_start - val_start < outputs:
        raise UserError(f"the validation part has {test_start - val_start} values, fewer than the "
                        f"{outputs} outputs of the direct head (eval.horizon); use a longer series or a "
                        "shorter horizon")
    if n - test_start < horizon:
        raise UserError(f"the test part has {n - test_start} values, fewer than eval.horizon = {horizon}; "
                        "use a longer series, a shorter horizon or a larger test share")


def _dates_info(table: SeriesTable, date_column: str) -> dict | None:
    if table.step is None:
        return None
    last = table.dates[-1]
    return {"column": date_column, "last": table.step.format(last), "step": [table.step.n, table.step.unit]}


def run(recipe: dict, run_dir: Path, resume: bool = False, **lifecycle) -> dict:
    """Train a forecaster from a resolved recipe and write its run directory.

    ``**lifecycle`` (``restart``, ``overwrite``, ``origin``) goes to `kerasrnn.rundir.lifecycle`.
    """
    run_cfg = section(recipe, "run", RunConfig)
    data_cfg = section(recipe, "data", ForecastData)
    model_cfg = section(recipe, "model", ForecastModel)
    train_cfg = section(recipe, "train", train.TrainConfig)
    eval_cfg = section(recipe, "eval", ForecastEval)
    cell = canonical_cell(model_cfg.cell)
    check_model_config(model_cfg.units, model_cfg.num_layers, model_cfg.dropout)
    w, horizon, season = data_cfg.window, eval_cfg.horizon, eval_cfg.season
    outputs = horizon if model_cfg.head == "direct" else 1
    train.set_seeds(run_cfg.seed)

    table = load_table(data_cfg, run_cfg.seed)
    for note in table.notes():
        print(f"Data: {note}")
    values, target = table.values, table.values[:, 0].astype(np.float64)
    n = len(values)
    val_start, test_start = split_points(n, data_cfg.fractions)
    _check_lengths(n, val_start, test_start, w, outputs, horizon)
    scaling = SeriesScaling.fit(values[:val_start], data_cfg.scaling, model_cfg.target)  # training part only
    model, core = build_model(w, values.shape[1], outputs, model_cfg, scaling)
    with rundir.lifecycle(recipe, run_dir, resume=resume, **lifecycle) as work:
        rundir.write_json(work / "scaler.json", scaling.to_dict())
        bs = train_cfg.batch_size
        tr_o = origins_between(w, val_start, w, outputs)
        va_o = origins_between(val_start, test_start, w, outputs)
        x_tr, y_tr = origin_windows(values, w, tr_o), future_targets(target, tr_o, outputs)
        x_va, y_va = origin_windows(values, w, va_o), future_targets(target, va_o, outputs)
        train_ds = _dataset(x_tr, scaling.transform_targets(x_tr, y_tr), bs, True, run_cfg.seed,
                            repeat=train_cfg.steps_per_epoch > 0)
        val_ds = _dataset(x_va, scaling.transform_targets(x_va, y_va), bs, False, 0, repeat=False)
        train.compile_model(core, train_cfg, "mse", ["mae"], cell)
        fit_info = train.fit(core, train_ds, val_ds, train_cfg, work)

        # ---- validation: shrink towards persistence, compare with it
        val_pred = predict(model, x_va).astype(np.float64)
        val_last = x_va[:, -1, :1].astype(np.float64)
        alpha = None
        val_network = errors(y_va, val_pred)["rmse"]  # before shrinking
        if model_cfg.shrink and scaling.output_relative_to_last:
            alpha = shrink_factors(y_va, val_pred, val_last)
            apply_shrink(model, alpha)
            val_pred = val_last + alpha[None, :] * (val_pred - val_last)
        val_model = errors(y_va, val_pred)["rmse"]
        val_persistence = errors(y_va, np.repeat(val_last, outputs, axis=1))["rmse"]
        worse = val_model > val_persistence * (1 + 1e-9)
        network_worse = val_network > val_persistence * (1 + 1e-9)

        # ---- test: one step, every horizon, the path from the test start
        one_o = np.arange(test_start - 1, n - 1)
        x_one = origin_windows(values, w, one_o)
        one_step = predict_one_step(model, x_one).astype(np.float64)
        actual = target[test_start:]
        one = errors(actual, one_step)
        base_one = baselines.forecasts(target, one_o, 1, season)
        metrics = {"test_one_step_mae": one["mae"], "test_one_step_rmse": one["rmse"]}
        for name, pred in base_one.items():
            e = errors(actual, pred[:, 0])
            metrics[f"test_{name}_rmse"], metrics[f"test_{name}_mae"] = e["rmse"], e["mae"]
        metrics["test_rmse_vs_persistence"] = one["rmse"] / metrics["test_persistence_rmse"] \
            if metrics["test_persistence_rmse"] > 0 else None

        # per-horizon metrics use only origins whose H targets all lie in the test part, so their
        # h = 1 entry is over fewer origins than test_one_step_* (every test value)
        multi_o = np.arange(test_start - 1, n - horizon)
        multi = multi_step(model, values, w, multi_o, horizon, model_cfg.head)
        horizon_rmse, band, path = {}, None, None
        if multi is not None:
            y_multi = future_targets(target, multi_o, horizon)
            ph = per_horizon(y_multi, multi)
            metrics["test_horizon_rmse"], metrics["test_horizon_mae"] = ph["rmse"], ph["mae"]
            horizon_rmse["model"] = ph["rmse"]
            for name, pred in baselines.forecasts(target, multi_o, horizon, season).items():
                ph_b = per_horizon(y_multi, pred)
                metrics[f"test_horizon_{name}_rmse"] = ph_b["rmse"]
                horizon_rmse[name] = ph_b["rmse"]
            path = multi[0]
            kind = "rollout" if model_cfg.head == "next" else "direct"
            e = errors(actual[:horizon], path)
            metrics[f"test_{kind}_{horizon}_mae"], metrics[f"test_{kind}_{horizon}_rmse"] = e["mae"], e["rmse"]
            val_multi_o = origins_between(val_start, test_start, w, horizon)
            if len(val_multi_o):
                val_multi = multi_step(model, values, w, val_multi_o, horizon, model_cfg.head)
                band = np.asarray(per_horizon(future_targets(target, val_multi_o, horizon), val_multi)["rmse"])
        if band is not None:  # the per-horizon validation RMSE (the plot's band): compare heads on this
            metrics["val_horizon_rmse"] = band.tolist()
        metrics.update({"val_rmse": val_model, "val_persistence_rmse": val_persistence,
                        "val_network_rmse": val_network, "val_worse_than_persistence": bool(worse),
                        "val_network_worse_than_persistence": bool(network_worse),
                        "shrink": alpha.tolist() if alpha is not None else None,
                        "horizon": horizon, "outputs": outputs, "season": season,
                        "series_length": int(n), "split_val_start": int(val_start),
                        "split_test_start": int(test_start), **fit_info})
        metrics = round_floats(metrics)
        dates_x = table.dates.astype("datetime64[s]").astype(object) if table.dates is not None and \
            table.dates.dtype.kind == "M" else table.dates
        plot_forecast(work / "forecast.png", target, test_start, one_step,
                      path if path is not None else one_step[:1],
                      f"{recipe['run']['name']}: one-step test RMSE {one['rmse']:.4g} "
                      f"(persistence {metrics['test_persistence_rmse']:.4g})",
                      {k: v[:, 0] for k, v in base_one.items()}, band, horizon_rmse, dates_x,
                      f"{horizon}-step {'rollout' if model_cfg.head == 'next' else 'direct forecast'}")
        with atomic.atomic_file(work / "samples.npz", suffix=".npz") as tmp:
            np.savez(tmp, x=x_va[:256].astype(np.float32), y=y_va[:256].astype(np.float32))
        rundir.save_model(model, work / "model.keras")
        rundir.write_json(work / "metrics.json", metrics)
        rundir.write_info(work, recipe, window=w, horizon=horizon, outputs=outputs, features=table.columns,
                          head=model_cfg.head, scaling=scaling.scaling, target=scaling.target,
                          dates=_dates_info(table, data_cfg.date_column))

    print_metrics(f"Test part ({run_dir}), original units:",
                  {k: v for k, v in metrics.items() if k.startswith("test_")})
    for line in validation_verdict(val_network, val_model, val_persistence, alpha):
        print(line)
    print(f"Plot: {run_dir / 'forecast.png'}\nRun directory: {run_dir}")
    return metrics


def validation_verdict(network: float, model: float, persistence: float, alpha) -> list[str]:
    """What the run prints about validation: the model vs persistence, plainly.

    Args:
        network: validation RMSE of the trained network (before shrinking).
        model: validation RMSE of the saved model (after shrinking, if any).
        persistence: validation RMSE of "next = last value".
        alpha: the shrink factors (None without ``model.shrink``).

    >>> validation_verdict(2.0, 1.0, 1.0, np.array([0.0]))[1]
    'WARNING: the trained network was worse than persistence on validation (RMSE 2 vs 1); shrinking its changes (α = 0.000) made the saved model exactly persistence'
    """
    lines = [f"Validation RMSE {model:.4g} vs persistence {persistence:.4g}"
             + (f" (predicted changes scaled by {_alpha_text(alpha)}, model.shrink)" if alpha is not None else "")]
    if network <= persistence * (1 + 1e-9):
        return lines
    head = f"WARNING: the trained network was worse than persistence on validation (RMSE {network:.4g} vs " \
           f"{persistence:.4g}); "
    if model > persistence * (1 + 1e-9):
        return lines + [head + "the saved model is worse than the persistence forecast (next = last value): "
                               "use that instead, or set model.shrink = true"]
    if alpha is not None and not np.any(alpha):
        return lines + [head + f"shrinking its changes ({_alpha_text(alpha)}) made the saved model exactly persistence"]
    return lines + [head + f"its changes were shrunk ({_alpha_text(alpha)}), so the saved model stays near persistence"]


def _alpha_text(alpha: np.ndarray) -> str:
    if len(alpha) == 1:
        return f"α = {alpha[0]:.3f}"
    return f"α = {alpha.min():.3f}…{alpha.max():.3f} over {len(alpha)} horizons"
