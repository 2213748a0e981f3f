"""Forecasting (issue 15): trend-safe scaling, baselines, multi-horizon heads, exogenous columns, dates, gaps."""

import importlib.util
import json
import math

import numpy as np
import pytest
from click.testing import CliRunner

from kerasrnn.cli import main
from kerasrnn.data import series as ks
from kerasrnn.data.transforms import SCALINGS, SeriesScaling, difference, undifference
from kerasrnn.errors import UserError
from kerasrnn.rundir import load_run
from kerasrnn.tasks import baselines
from kerasrnn.tasks.forecasting import (origin_windows, origins_between, shrink_factors, split_points,
                                        validation_verdict)

FAST = ["--set", "train.jit_compile=false", "--set", "train.verbose=0"]
TINY = ["model.units=8", "model.num_layers=1", "train.batch_size=16"]


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def run_recipe(name, runs_dir, *sets):
    args = ["recipe", "run", name, "--runs-dir", runs_dir, *FAST]
    for s in sets:
        args += ["--set", s]
    return invoke(*args)


def one_error_line(result, *fragments):
    assert result.exit_code == 1, result.output
    errors = [line for line in result.output.splitlines() if line.startswith("Error: ")]
    assert len(errors) == 1 and "Traceback" not in result.output, result.output
    assert all(f in errors[0] for f in fragments), result.output


def write_csv(path, header, rows):
    path.write_text(",".join(header) + "\n" + "".join(",".join(str(c) for c in r) + "\n" for r in rows))
    return path


# ----------------------------------------------------------------------------- transforms


def test_differencing_round_trip_is_exact():
    values = np.array([3.0, 7.0, -2.0, 11.0, 11.0, 0.5])
    np.testing.assert_array_equal(undifference(values[0], difference(values)), values)
    table = np.array([[1.0, 10.0], [4.0, 8.0], [9.0, 9.0]])
    np.testing.assert_array_equal(undifference(table[0], difference(table)), table)
    np.testing.assert_array_equal(difference(values, order=2), np.diff(values, n=2))


@pytest.mark.parametrize("scaling", SCALINGS)
@pytest.mark.parametrize("target", ["change", "level"])
def test_scaling_round_trip_is_exact(scaling, target):
    rng = np.random.default_rng(0)
    train = np.cumsum(rng.integers(-4, 5, size=(60, 2)), axis=0).astype(np.float64) + [100.0, 5.0]
    s = SeriesScaling.fit(train, scaling, target)
    restored = SeriesScaling.from_dict(json.loads(json.dumps(s.to_dict())))
    assert restored == s
    x = origin_windows(train, 8, np.arange(7, 50))
    y = train[np.arange(8, 51), :1] + 3.0  # off the training range too
    np.testing.assert_allclose(s.inverse_inputs(x, s.transform_inputs(x)), x, rtol=0, atol=1e-12)
    np.testing.assert_allclose(s.inverse_targets(x, s.transform_targets(x, y)), y, rtol=0, atol=1e-12)
    if scaling == "minmax":
        z = s.transform_inputs(x[:, :, :])
        assert z.min() >= -1 - 1e-12 and z.max() <= 1 + 1e-12


def test_scaling_fit_values_and_layers_match_numpy():
    import keras

    from kerasrnn.tasks.forecast_layers import SeriesScaling as InLayer
    from kerasrnn.tasks.forecast_layers import SeriesUnscaling

    train = np.array([[10.0], [12.0], [11.0], [15.0]])
    window = SeriesScaling.fit(train, "window")
    assert window.output_scale == pytest.approx(math.sqrt((4 + 1 + 16) / 3)) and window.target == "change"
    standard = SeriesScaling.fit(train, "standard", "level")
    assert standard.input_center == [12.0] and standard.output_offset == 12.0
    assert standard.output_scale == pytest.approx(np.std(train))
    minmax = SeriesScaling.fit(train, "minmax", "level")
    assert (minmax.input_center, minmax.input_scale) == ([12.5], [2.5])
    x = np.array([[[20.0], [22.0], [21.0]]], np.float32)
    for s in (window, standard, minmax):
        layer = InLayer(s.input_center, s.input_scale, s.input_relative_to_last)
        np.testing.assert_allclose(np.asarray(layer(x)), s.transform_inputs(x), rtol=1e-6)
        z = np.array([[0.5, -1.0]], np.float32)
        out = SeriesUnscaling(s.output_offset, s.output_scale, s.output_relative_to_last)([z, x])
        np.testing.assert_allclose(np.asarray(out), s.inverse_targets(x, z), rtol=1e-6)
        config = layer.get_config()
        assert InLayer.from_config(config).get_config() == config
    assert keras.saving.get_registered_name(InLayer) == "kerasrnn>SeriesScaling"


# ----------------------------------------------------------------------------- baselines


def test_baselines_on_a_tiny_series():
    y = np.array([1.0, 3.0, 2.0, 4.0, 3.0, 5.0])
    origins = np.array([3, 4])
    np.testing.assert_array_equal(baselines.persistence(y, origins, 2), [[4, 4], [3, 3]])
    # season 2: y_{t+1} = y_{t-1}, y_{t+2} = y_t, y_{t+3} = y_{t-1}
    np.testing.assert_array_equal(baselines.seasonal_naive(y, origins, 3, 2), [[2, 4, 2], [4, 3, 4]])
    # drift from y_0 = 1: slope (4 - 1) / 3 = 1 at t = 3, (3 - 1) / 4 = 0.5 at t = 4
    np.testing.assert_allclose(baselines.drift(y, origins, 2), [[5, 6], [3.5, 4]])
    assert set(baselines.forecasts(y, origins, 1, season=0)) == {"persistence", "drift"}
    assert set(baselines.forecasts(y, origins, 1, season=2)) == {"persistence", "drift", "seasonal_naive"}


def test_shrink_factor_is_the_validation_optimum_in_0_1():
    rng = np.random.default_rng(1)
    base = np.zeros((200, 1))
    actual = rng.normal(size=(200, 1))
    noise_pred = rng.normal(size=(200, 1))  # useless prediction -> close to persistence
    good_pred = actual * 2  # right direction, twice too large -> 0.5
    assert shrink_factors(actual, noise_pred, base)[0] < 0.2
    assert shrink_factors(actual, good_pred, base)[0] == pytest.approx(0.5)
    assert shrink_factors(actual, -actual, base)[0] == 0.0
    assert origins_between(5, 10, 3, 1).tolist() == [4, 5, 6, 7, 8]


def test_validation_verdict_says_plainly_when_the_network_lost_to_persistence():
    assert validation_verdict(0.8, 0.8, 1.0, np.array([1.0])) == [
        "Validation RMSE 0.8 vs persistence 1 (predicted changes scaled by α = 1.000, model.shrink)"]
    shrunk = validation_verdict(1.2, 0.99, 1.0, np.array([0.1, 0.3]))
    assert shrunk[1].startswith("WARNING: the trained network was worse than persistence on validation")
    assert "α = 0.100…0.300 over 2 horizons" in shrunk[1] and "stays near persistence" in shrunk[1]
    unshrunk = validation_verdict(1.2, 1.2, 1.0, None)
    assert "worse than the persistence forecast (next = last value): use that instead" in unshrunk[1]


# ----------------------------------------------------------------------------- CSV: dates, gaps


def test_series_table_dates_missing_and_irregular_steps(tmp_path):
    rows = [("2021-01-04", 1, 10), ("2021-01-05", "", 11), ("2021-01-06", 3, "NA"), ("2021-01-07", 4, 13),
            ("2021-01-08", 5, 14), ("2021-01-11", 6, 15), ("2021-01-13", 7, 16)]
    path = write_csv(tmp_path / "p.csv", ["date", "close", "volume"], rows)
    with pytest.raises(UserError, match=r"has 2 missing values \('close': 1, 'volume': 1\).*data.missing"):
        ks.load_series_table(path, ["close", "volume"], date_column="date")
    table = ks.load_series_table(path, ["close", "volume"], date_column="date", missing="interpolate")
    np.testing.assert_array_equal(table.values[:4], [[1, 10], [2, 11], [3, 12], [4, 13]])
    assert table.columns == ["close", "volume"] and table.missing == 2
    assert table.step == ks.TimeStep(1, "B") and table.irregular_steps == 1  # 01-11 -> 01-13 skips a weekday
    notes = " ".join(table.notes())
    assert "1 irregular time steps" in notes and "2 missing values interpolated" in notes
    assert table.step.format(table.step.advance(table.dates[-1], 3)) == "2021-01-18"  # Thu, Fri, Mon


def test_time_steps_monthly_yearly_and_numeric():
    months = ks.parse_dates(["2020-01-31", "2020-02-29", "2020-03-31", "2020-04-30"], "f")
    step, irregular = ks.infer_step(months)
    assert step == ks.TimeStep(1, "M") and irregular == 0
    years, irregular = ks.infer_step(ks.parse_dates(["1700.0", "1701.0", "1703.0"], "f"))
    assert years.unit == "num" and irregular == 1 and years.format(years.advance(1703.0, 1)) == "1704"
    hourly, _ = ks.infer_step(ks.parse_dates(["2020-01-01 00:00", "2020-01-01 01:00", "2020-01-01 02:00"], "f"))
    assert hourly.describe() == "1 hour" and hourly.format(hourly.advance(np.datetime64("2020-01-01T02:00"), 1)) \
        == "2020-01-01 03:00:00"
    with pytest.raises(UserError, match="is not a date"):
        ks.parse_dates(["2020-01-01", "yesterday"], "f")


# ----------------------------------------------------------------------------- runs


def test_linear_trend_leaving_the_training_range(tmp_path):
    """A trend the model never saw the level of (test values far above the training max)."""
    t = np.arange(300)
    values = 50.0 + 2.0 * t + np.random.default_rng(0).normal(0, 0.2, size=300)
    path = write_csv(tmp_path / "trend.csv", ["t", "y"], zip(t, np.round(values, 4)))
    result = run_recipe("series-forecast", tmp_path / "runs", f"data.path={path}", "data.column=y",
                        "data.window=10", "eval.horizon=10", "train.epochs=8", *TINY)
    assert result.exit_code == 0, result.output
    metrics = json.loads((tmp_path / "runs" / "series-forecast" / "metrics.json").read_text())
    assert values[int(300 * 0.85):].min() > values[:210].max() + 30
    # one step: noise-level error (slope 2, noise 0.2); the drift baseline is near-optimal here
    assert metrics["test_one_step_rmse"] < 0.5 and metrics["test_one_step_rmse"] < metrics["test_persistence_rmse"] / 4
    assert metrics["test_rollout_10_rmse"] < 2.0  # 10 steps = 20 units of trend
    assert len(metrics["test_horizon_rmse"]) == 10 and not metrics["val_worse_than_persistence"]
    assert metrics["val_rmse"] <= metrics["val_persistence_rmse"]


@pytest.fixture(scope="module")
def direct_run(tmp_path_factory):
    """A direct 4-step head with one exogenous column, a date column and interpolated gaps."""
    root = tmp_path_factory.mktemp("direct")
    rng = np.random.default_rng(0)
    n = 160
    driver = np.sin(np.arange(n) * 0.3) + rng.normal(0, 0.05, n)
    target = 20 + np.cumsum(0.5 + 0.8 * np.roll(driver, 1))
    dates = np.datetime64("2020-01-06") + np.arange(n) * np.timedelta64(7, "D")
    rows = [(str(d), round(y, 4), round(x, 4)) for d, y, x in zip(dates, target, driver)]
    rows[30] = (rows[30][0], "", rows[30][2])  # a gap
    path = write_csv(root / "weekly.csv", ["week", "sales", "driver"], rows)
    sets = [f"data.path={path}", "data.column=sales", "data.inputs=driver", "data.date_column=week",
            "data.missing=interpolate", "data.window=8", "model.head=direct", "eval.horizon=4", "eval.season=13",
            "train.epochs=3", *TINY]
    refused = run_recipe("series-forecast", root / "runs", *sets[:-len(TINY) - 1], "data.missing=error", *TINY)
    result = run_recipe("series-forecast", root / "runs", *sets)
    assert result.exit_code == 0, result.output
    return root / "runs" / "series-forecast", result.output, refused, dates


def test_direct_head_shapes_metrics_and_dates(direct_run, tmp_path):
    run_dir, output, refused, dates = direct_run
    one_error_line(refused, "1 missing values", "data.missing")
    assert "1 missing values interpolated" in output and "every 7 days" in output
    run = load_run(run_dir, task="forecasting")
    assert tuple(run.model.input.shape) == (None, 8, 2) and tuple(run.model.output.shape) == (None, 4)
    assert run.info["features"] == ["sales", "driver"] and run.info["outputs"] == 4
    assert run.info["dates"]["last"] == str(dates[-1])
    assert run.scaler["kind"] == "in_model" and run.scaler["scaling"] == "window"
    samples = np.load(run_dir / "samples.npz")
    assert samples["x"].shape[1:] == (8, 2) and samples["y"].shape[1:] == (4,)
    metrics = json.loads((run_dir / "metrics.json").read_text())
    for key in ("test_horizon_rmse", "test_horizon_mae", "test_horizon_persistence_rmse",
                "test_horizon_seasonal_naive_rmse", "test_horizon_drift_rmse", "shrink", "val_horizon_rmse"):
        assert len(metrics[key]) == 4, key
    for key in ("test_one_step_rmse", "test_persistence_rmse", "test_seasonal_naive_rmse", "test_drift_rmse",
                "test_direct_4_rmse"):
        assert math.isfinite(metrics[key]), key
    assert metrics["val_rmse"] <= metrics["val_persistence_rmse"] * (1 + 1e-6)
    out = invoke("forecast", run_dir, "--steps", "3", "--plot", tmp_path / "f.png")
    assert out.exit_code == 0, out.output
    lines = [line.split("\t") for line in out.output.splitlines()[:3]]
    next_dates = [str(dates[-1] + k * np.timedelta64(7, "D")) for k in (1, 2, 3)]
    assert [line[:2] for line in lines] == [[f"t+{k}", d] for k, d in zip((1, 2, 3), next_dates)]
    one_error_line(invoke("forecast", run_dir, "--steps", "5"), "--steps 5", "at most 4")
    again = invoke("forecast", run_dir, "--steps", "3", "--input", run_dir.parent.parent / "weekly.csv",
                   "--plot", tmp_path / "g.png")
    assert again.exit_code == 0 and again.output.splitlines()[:3] == out.output.splitlines()[:3], again.output


def test_direct_head_export_parity(direct_run):
    import tensorflow as tf

    run_dir = direct_run[0]
    for fmt in ("savedmodel", "tflite"):
        result = invoke("export", run_dir, "--format", fmt)
        assert result.exit_code == 0, result.output
        manifest = json.loads((run_dir / "export" / fmt / "manifest.json").read_text())
        assert manifest["parity"]["passed"], manifest["parity"]
    x = np.load(run_dir / "samples.npz")["x"][:3]
    want = load_run(run_dir).model(x).numpy()
    loaded = tf.saved_model.load(str(run_dir / "export" / "savedmodel"))
    got = loaded.signatures["forecast"](window=tf.constant(x))["forecast"].numpy()
    np.testing.assert_allclose(got, want, rtol=1e-5)


def test_forecast_errors_are_one_line(tmp_path):
    path = write_csv(tmp_path / "s.csv", ["t", "y"], [(i, i) for i in range(40)])
    one_error_line(run_recipe("series-forecast", tmp_path / "runs", f"data.path={path}", "data.column=y",
                              "data.window=5", "eval.horizon=12"), "test part has 6 values", "eval.horizon = 12")
    one_error_line(run_recipe("series-forecast", tmp_path / "runs", f"data.path={path}", "data.column=y",
                              "data.scaling=window", "model.target=level", "data.window=5", "eval.horizon=2"),
                   "model.target")
    one_error_line(run_recipe("series-forecast", tmp_path / "runs", f"data.path={path}", "data.column=y",
                              "data.scaling=zscore"), "data.scaling")


# ----------------------------------------------------------------------------- bench forecast (no training)


def test_bench_series_and_sarimax_column(tmp_path):
    from kerasrnn.bench import forecast as bf

    a, b = bf.synthetic_series(0), bf.synthetic_series(0)
    assert {k: v[0].tolist() for k, v in a.items()} == {k: v[0].tolist() for k, v in b.items()}
    assert len(a["random_walk"][0]) == 1500 and a["trend_quarterly"][0][-1] > a["trend_quarterly"][0][:168].max()
    specs = bf.default_specs(tmp_path / "no-such-dir", tmp_path / "series")
    has_statsmodels = importlib.util.find_spec("statsmodels") is not None
    assert [s.name for s in specs] == ["realgdp_quarterly"] * has_statsmodels + [
        "trend_quarterly", "growth_seasonal_monthly", "random_walk"]
    assert ks.load_series_csv(specs[-1].path, "value").shape == (1500,)
    if has_statsmodels:  # the quarterly macro series: dates parse as a 3-month step
        gdp = ks.load_series_table(specs[0].path, ["realgdp"], date_column="quarter")
        assert len(gdp.values) == 203 and gdp.step == ks.TimeStep(3, "M") and gdp.irregular_steps == 0
    walk = a["random_walk"][0]
    rmse, note = bf.sarimax_rmse(walk, 1275, (0, 1, 0), (0, 0, 0, 0), "n")
    persistence = float(np.sqrt(np.mean((walk[1275:] - walk[1274:-1]) ** 2)))
    if not has_statsmodels:  # the optional [bench] extra
        assert rmse is None and "pip install" in note
    else:
        assert rmse == pytest.approx(persistence, rel=1e-6) and note == ""  # ARIMA(0,1,0) is persistence
    row = {"series": "rw", "values": 1500, "season": 0, "kerasrnn_rmse": 1.01, "kerasrnn_std": 0.002,
           "persistence_rmse": 1.0, "seasonal_naive_rmse": None, "drift_rmse": 1.001, "sarimax_rmse": None,
           "sarimax_order": "(0, 1, 0)", "val_rmse": 1.0, "val_persistence_rmse": 1.0}
    assert "| rw | 1500 | **1.01** ± 0.002 | 1 | – (m=–) | 1.001 | – (0, 1, 0) | 1.010 | – |" in bf.table([row])


def test_next_value_head_with_input_columns(tmp_path):
    """open/high/low/volume → close with the default next-value head: one step only, said plainly."""
    rng = np.random.default_rng(2)
    n = 120
    close = 50 + np.cumsum(rng.normal(0, 1, n))
    rows = [(i, round(c, 4), round(c + 0.5, 4), round(c - 0.5, 4), int(v)) for i, (c, v) in
            enumerate(zip(close, rng.integers(100, 200, n)))]
    path = write_csv(tmp_path / "prices.csv", ["t", "close", "high", "low", "volume"], rows)
    result = run_recipe("series-forecast", tmp_path / "runs", f"data.path={path}", "data.column=close",
                        "data.inputs=high,low,volume", "data.window=6", "eval.horizon=3", "train.epochs=2", *TINY)
    assert result.exit_code == 0, result.output
    run_dir = tmp_path / "runs" / "series-forecast"
    run = load_run(run_dir, task="forecasting")
    assert tuple(run.model.input.shape) == (None, 6, 4) and tuple(run.model.output.shape) == (None, 1)
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert "test_horizon_rmse" not in metrics  # a rollout would need the inputs' future values
    assert metrics["test_persistence_rmse"] > 0 and metrics["val_rmse"] <= metrics["val_persistence_rmse"] * (1 + 1e-6)
    out = invoke("forecast", run_dir, "--plot", tmp_path / "f.png")  # default: the one step it can forecast
    assert out.exit_code == 0, out.output
    assert [line.split("\t")[0] for line in out.output.splitlines() if line.startswith("t+")] == ["t+1"]
    one_error_line(invoke("forecast", run_dir, "--steps", "2"), "3 exogenous input column(s)", "--steps 1")


def test_bench_forecast_command_end_to_end(tmp_path):
    """`kerasrnn bench forecast` trains the recipe per seed and writes the table with mean ± std."""
    out = tmp_path / "bench"
    result = invoke("bench", "forecast", "--only", "trend_quarterly", "--seeds", "2", "--out", out,
                    "--set", "train.epochs=1", "--set", "train.jit_compile=false", *[a for s in TINY for a in ("--set", s)])
    assert result.exit_code == 0, result.output
    rows = json.loads((out / "forecast.json").read_text())
    assert [r["series"] for r in rows] == ["trend_quarterly"] and rows[0]["seeds"] == 2
    per_seed = rows[0]["kerasrnn_rmse_per_seed"]
    assert len(per_seed) == 2 and rows[0]["kerasrnn_rmse"] == pytest.approx(np.mean(per_seed))
    assert rows[0]["kerasrnn_std"] == pytest.approx(np.std(per_seed, ddof=1))
    y = np.loadtxt(out / "series" / "trend_quarterly.csv", delimiter=",", skiprows=1)[:, 1]
    test_start = split_points(len(y), [0.7, 0.15, 0.15])[1]
    assert rows[0]["persistence_rmse"] == pytest.approx(  # "next = last" over the last 15%, by hand
        float(np.sqrt(np.mean((y[test_start:] - y[test_start - 1:-1]) ** 2))), rel=1e-4)
    if importlib.util.find_spec("statsmodels") is None:
        assert rows[0]["sarimax_rmse"] is None and "pip install" in rows[0]["sarimax_note"]
    else:
        assert rows[0]["sarimax_rmse"] > 0
    table = (out / "forecast.md").read_text()
    assert "mean ± std over 2 seed(s)" in table and "| trend_quarterly | 240 |" in table
