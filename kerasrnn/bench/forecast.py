"""`kerasrnn bench forecast`: the forecasting recipe vs naive baselines and SARIMAX on real and synthetic series.

For each series the ``series-forecast`` recipe is trained with several seeds
(one-step-ahead RMSE on the last 15%, mean ± std over seeds) and compared with
persistence, seasonal naive, drift and statsmodels' SARIMAX (fitted on the first
85%, then filtered over the test part with fixed parameters: one-step-ahead
forecasts, as the recipe's). SARIMAX needs the optional extra
``pip install "kerasrnn[bench]"``; without it that column is skipped with a note.

Series: ``co2_weekly.csv`` and ``sunspots_yearly.csv`` from ``--data-dir``
(``../shared/data/series`` in this repository's development setup; skipped when
absent), US real GDP (quarterly, from statsmodels' bundled ``macrodata``; skipped
without statsmodels) and three generated ones written as CSV next to the report
(`synthetic_series`): a quarterly macro-like series with a trend, a monthly series
with exponential growth and yearly seasonality, and a price-like random walk.

    kerasrnn bench forecast --data-dir ../shared/data/series            # ~15 min on 2 cores
    kerasrnn bench forecast --quick                                     # one seed, 5 epochs, no --data-dir

>>> sorted(synthetic_series(0))
['growth_seasonal_monthly', 'random_walk', 'trend_quarterly']
"""

from __future__ import annotations

import json
import math
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from kerasrnn.errors import UserError
from kerasrnn.recipes import load_recipe
from kerasrnn.tasks import registry


@dataclass
class SeriesSpec:
    """One benchmark series.

    Attributes:
        name: short name (table row).
        path: CSV file.
        column: target column.
        date_column: date column ("" = none).
        season: eval.season (0 = none).
        sarimax: ``(order, seasonal_order, trend)`` for statsmodels' SARIMAX.
        note: what the series is.
        overrides: extra ``--set`` values for the recipe (none by default: the default recipe).
    """

    name: str
    path: str
    column: str
    date_column: str
    season: int
    sarimax: tuple
    note: str = ""
    overrides: list = field(default_factory=list)


def synthetic_series(seed: int = 0) -> dict[str, tuple[np.ndarray, str]]:
    """Generated series ``{name: (values, note)}``, fixed by `seed`.

    - ``trend_quarterly``: 240 quarters, ``Δy_t = 0.8 + 0.6 (Δy_{t-1} - 0.8) + ε``, ε ~ N(0, 1),
      from 100: an ARIMA(1,1,0) with drift, trending far outside its training range;
    - ``growth_seasonal_monthly``: 300 months, ``100 · e^{0.006 t} · (1 + 0.1 sin(2πt/12)) · e^{η_t}``
      with an AR(1) log-noise η (φ = 0.7, σ = 0.01);
    - ``random_walk``: 1,500 steps of ``y_t = y_{t-1} + ε``, ε ~ N(0, 1), from 100 (persistence is optimal).
    """
    rng = np.random.default_rng(seed)
    d = np.empty(240)
    d[0] = 0.8
    for t in range(1, 240):
        d[t] = 0.8 + 0.6 * (d[t - 1] - 0.8) + rng.normal()
    trend = 100 + np.cumsum(d)
    eta = np.zeros(300)
    for t in range(1, 300):
        eta[t] = 0.7 * eta[t - 1] + rng.normal(0, 0.01)
    t = np.arange(300)
    growth = 100 * np.exp(0.006 * t) * (1 + 0.1 * np.sin(2 * np.pi * t / 12)) * np.exp(eta)
    walk = 100 + np.cumsum(rng.normal(size=1500))
    return {
        "trend_quarterly": (trend, "synthetic ARIMA(1,1,0) with drift, quarterly"),
        "growth_seasonal_monthly": (growth, "synthetic exponential growth × yearly season, monthly"),
        "random_walk": (walk, "synthetic random walk (persistence is optimal)"),
    }


def default_specs(data_dir: Path | None, out: Path, seed: int = 0, synthetic: bool = True) -> list[SeriesSpec]:
    """The benchmark's series: the shared real ones found in `data_dir`, then the synthetic ones."""
    specs = []
    if data_dir is not None:
        real = [("co2_weekly", "co2", "date", 52, ((1, 1, 1), (1, 0, 1, 52), "n"), "Mauna Loa CO₂, weekly"),
                ("sunspots_yearly", "sunactivity", "year", 11, ((9, 0, 0), (0, 0, 0, 0), "c"), "sunspots, yearly")]
        for name, column, date, season, sarimax, note in real:
            path = Path(data_dir) / f"{name}.csv"
            if path.is_file():
                specs.append(SeriesSpec(name, str(path), column, date, season, sarimax, note))
    gdp = macro_series()
    if gdp is not None:
        out.mkdir(parents=True, exist_ok=True)
        path = out / "realgdp_quarterly.csv"
        path.write_text("quarter,realgdp\n" + "".join(f"{d},{v!r}\n" for d, v in gdp), encoding="utf-8")
        specs.append(SeriesSpec("realgdp_quarterly", str(path), "realgdp", "quarter", 4, ((1, 1, 0), (0, 0, 0, 0), "n"),
                                "US real GDP, quarterly 1959–2009 (statsmodels macrodata)"))
    if synthetic:
        orders = {"trend_quarterly": (((1, 1, 0), (0, 0, 0, 0), "t"), 4),
                  "growth_seasonal_monthly": (((0, 1, 1), (0, 1, 1, 12), "n"), 12),
                  "random_walk": (((0, 1, 0), (0, 0, 0, 0), "n"), 0)}
        out.mkdir(parents=True, exist_ok=True)
        for name, (values, note) in synthetic_series(seed).items():
            path = out / f"{name}.csv"
            path.write_text("t,value\n" + "".join(f"{i},{v:.6f}\n" for i, v in enumerate(values)), encoding="utf-8")
            sarimax, season = orders[name]
            specs.append(SeriesSpec(name, str(path), "value", "", season, sarimax, note))
    return specs


def macro_series() -> list[tuple[str, float]] | None:
    """US real GDP, quarterly 1959Q1–2009Q3, as ``[(YYYY-MM, value)]`` from the copy statsmodels ships
    (offline), or None without statsmodels: the issue's "quarterly macro series with a trend"."""
    try:
        from statsmodels.datasets import macrodata  # lazy: heavy import
    except ImportError:
        return None
    d = macrodata.load_pandas().data
    return [(f"{int(y)}-{int(q) * 3 - 2:02d}", float(v)) for y, q, v in zip(d["year"], d["quarter"], d["realgdp"])]


def sarimax_rmse(values: np.ndarray, test_start: int, order, seasonal_order, trend) -> tuple[float | None, str]:
    """One-step-ahead test RMSE of SARIMAX fitted on ``values[:test_start]`` (None, note if unavailable)."""
    try:
        from statsmodels.tsa.statespace.sarimax import SARIMAX  # lazy: heavy import
    except ImportError:
        return None, "statsmodels not installed (pip install \"kerasrnn[bench]\")"
    y = np.asarray(values, np.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fitted = SARIMAX(y[:test_start], order=order, seasonal_order=seasonal_order, trend=trend).fit(disp=False)
        full = fitted.apply(y)
        pred = full.get_prediction(start=test_start).predicted_mean
    return float(np.sqrt(np.mean((pred - y[test_start:]) ** 2))), ""


def run_recipe(recipe: str, runs_dir: Path, spec: SeriesSpec, seed: int, extra: list[str]) -> dict:
    """Train the recipe on one series (what ``kerasrnn recipe run`` does); returns metrics.json."""

    name = f"{spec.name}-seed{seed}"
    sets = ["data.source=series_csv", f"data.path={spec.path}", f"data.column={spec.column}",
            f"data.date_column={spec.date_column}", f"eval.season={spec.season}", f"run.seed={seed}",
            f"run.name={name}", "train.verbose=0", *spec.overrides, *extra]
    resolved = load_recipe(recipe, sets)
    registry.runner(resolved["run"]["task"])(resolved, runs_dir / name, origin={"recipe": recipe, "overrides": sets})
    return json.loads((runs_dir / name / "metrics.json").read_text(encoding="utf-8"))


def _mean_std(values) -> tuple[float, float]:
    values = np.asarray(values, np.float64)
    return float(values.mean()), float(values.std(ddof=1)) if len(values) > 1 else 0.0


def _fmt(value, digits=4) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{value:.{digits}g}"


def table(rows: list[dict]) -> str:
    """The markdown table of a benchmark run."""
    lines = ["| series | values | kerasrnn (mean ± std) | persistence | seasonal naive | drift | SARIMAX | "
             "kerasrnn / persistence | kerasrnn / SARIMAX | val: model vs persistence |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        ratio_s = r["kerasrnn_rmse"] / r["sarimax_rmse"] if r.get("sarimax_rmse") else None
        lines.append(
            f"| {r['series']} | {r['values']} | **{_fmt(r['kerasrnn_rmse'])}** ± {_fmt(r['kerasrnn_std'], 2)} | "
            f"{_fmt(r['persistence_rmse'])} | {_fmt(r.get('seasonal_naive_rmse'))} (m={r['season'] or '–'}) | "
            f"{_fmt(r['drift_rmse'])} | {_fmt(r.get('sarimax_rmse'))} {r['sarimax_order']} | "
            f"{r['kerasrnn_rmse'] / r['persistence_rmse']:.3f} | {'–' if ratio_s is None else f'{ratio_s:.3f}'} | "
            f"{r['val_rmse']:.4g} vs {r['val_persistence_rmse']:.4g} |")
    return "\n".join(lines)


def run_benchmark(data_dir=None, recipe: str = "series-forecast", seeds: int = 3, extra=(), only=(),
                  sarimax: bool = True, quick: bool = False, out="bench_results/forecast", log=print) -> list[dict]:
    """Run the benchmark; writes ``forecast.md`` / ``forecast.json`` to `out` and returns the rows.

    Args:
        data_dir: folder with co2_weekly.csv and sunspots_yearly.csv, or None.
        recipe: recipe name or .toml path.
        seeds: training seeds per series, >= 1.
        extra: extra recipe overrides (``section.key=value``).
        only: run only these series names (empty = all).
        sarimax: fit the SARIMAX column (needs statsmodels).
        quick: one seed, 5 epochs, no `data_dir` series (a smoke run).
        out: folder for the report, the generated CSVs and the runs.
        log: progress output, one line per call.
    """

    if seeds < 1:
        raise UserError(f"seeds must be at least 1, got {seeds}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    extra = list(extra)
    if quick:
        seeds, data_dir, extra = 1, None, ["train.epochs=5", *extra]
    specs = default_specs(Path(data_dir) if data_dir else None, out / "series")
    if data_dir and not any(s.path.startswith(str(Path(data_dir))) for s in specs):
        log(f"Note: no co2_weekly.csv / sunspots_yearly.csv in {data_dir}; running the other series only")
    if only:
        names = [s.name for s in specs]
        specs = [s for s in specs if s.name in only]
        if not specs:
            raise UserError(f"only={', '.join(only)}: no such series; valid: {', '.join(names)}")
    rows = []
    runs_root = Path(tempfile.mkdtemp(prefix="runs-", dir=out))
    for spec in specs:
        start = time.perf_counter()
        metrics = [run_recipe(recipe, runs_root, spec, seed, extra) for seed in range(seeds)]
        seconds = (time.perf_counter() - start) / seeds
        first = metrics[0]
        mean, std = _mean_std([m["test_one_step_rmse"] for m in metrics])
        row = {"series": spec.name, "note": spec.note, "values": first["series_length"], "season": spec.season,
               "kerasrnn_rmse": mean, "kerasrnn_std": std, "seeds": seeds,
               "kerasrnn_rmse_per_seed": [m["test_one_step_rmse"] for m in metrics],
               "persistence_rmse": first["test_persistence_rmse"], "drift_rmse": first["test_drift_rmse"],
               "seasonal_naive_rmse": first.get("test_seasonal_naive_rmse"),
               "val_rmse": float(np.mean([m["val_rmse"] for m in metrics])),
               "val_persistence_rmse": first["val_persistence_rmse"],
               "shrink": [m["shrink"] for m in metrics], "seconds_per_seed": round(seconds, 1),
               "sarimax_order": f"{spec.sarimax[0]}{spec.sarimax[1] if any(spec.sarimax[1]) else ''}",
               "sarimax_rmse": None, "sarimax_note": "skipped (sarimax off)"}
        if sarimax:
            values = np.loadtxt(spec.path, delimiter=",", skiprows=1, usecols=_column_index(spec), dtype=np.float64)
            row["sarimax_rmse"], row["sarimax_note"] = sarimax_rmse(values, first["split_test_start"], *spec.sarimax)
        rows.append(row)
        log(f"{spec.name}: kerasrnn {mean:.4g} ± {std:.2g}, persistence {row['persistence_rmse']:.4g}, "
                   f"SARIMAX {_fmt(row['sarimax_rmse'])} ({seconds:.0f} s per seed)")
    report = table(rows)
    notes = sorted({r["sarimax_note"] for r in rows if r["sarimax_note"]})
    text = ("One-step-ahead RMSE on the last 15% (original units); kerasrnn: recipe "
            f"`{recipe}`{' ' + ' '.join(extra) if extra else ''}, mean ± std over {seeds} seed(s).\n\n"
            + report + ("\n\nSARIMAX: " + "; ".join(notes) if notes else "") + "\n")
    (out / "forecast.md").write_text(text, encoding="utf-8")
    (out / "forecast.json").write_text(json.dumps(rows, indent=2) + "\n", encoding="utf-8")
    log("\n" + text + f"\nWritten: {out / 'forecast.md'}, {out / 'forecast.json'} (runs in {runs_root})")
    return rows


def _column_index(spec: SeriesSpec) -> int:
    with open(spec.path, encoding="utf-8") as f:
        header = f.readline().strip().split(",")
    return header.index(spec.column) if spec.column in header else int(spec.column)
