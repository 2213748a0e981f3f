"""The recipe schema of forecasting: its ``[data]``, ``[model]`` and ``[eval]`` keys.

Kept apart from `kerasrnn.tasks.forecasting` so that resolving a recipe
(``kerasrnn recipe show``) does not import TensorFlow. Every numeric key declares
its limits with `kerasrnn.recipes.setting`.

>>> SCHEMA["data"]().window
40
"""

from __future__ import annotations

from dataclasses import dataclass, field

from kerasrnn.data.series import MISSING_POLICIES
from kerasrnn.data.transforms import SCALINGS, TARGETS
from kerasrnn.errors import UserError
from kerasrnn.recipes import RunConfig, TrainConfig, setting

SOURCES = ("sine", "series_csv")
HEADS = ("next", "direct")


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
        column: the target column, header name or 0-based index (default "0").
        inputs: more input (exogenous) columns, e.g. ["open", "high", "low", "volume"]
            (default []: the target's own past only).
        date_column: a date/time column to parse ("" = none, the default): forecasts
            are then printed with dates, and irregular steps are reported.
        missing: "error" (default: refuse missing cells, giving their count) or
            "interpolate" (fill them linearly).
        header: the CSV has a header row (default true).
        delimiter: CSV delimiter, "" = tab for .tsv/.tab files, else comma (default "").
        window: past values the model sees (default 40).
        scaling: "window" (default: each window relative to its last value), "standard"
            or "minmax" (fit on the training part); see `kerasrnn.data.transforms`.
        fractions: chronological train/validation/test shares (default [0.7, 0.15, 0.15]).
    """

    source: str = setting("sine", choices=SOURCES)
    n: int = setting(1000, ge=2)
    start: float = setting(0.0)
    stop: float = setting(50.0)
    amplitude: float = setting(0.5, gt=0)
    noise: float = setting(0.0, ge=0)
    path: str = ""
    column: str = "0"
    inputs: list[str] = field(default_factory=list)
    date_column: str = ""
    missing: str = setting("error", choices=MISSING_POLICIES)
    header: bool = True
    delimiter: str = ""
    window: int = setting(40, ge=1)
    scaling: str = setting("window", choices=SCALINGS)
    fractions: list[float] = setting(default_factory=lambda: [0.7, 0.15, 0.15], gt=0, lt=1, length=3, total=1)

    def __post_init__(self):
        if self.stop <= self.start:
            raise UserError(f"data.stop must be greater than data.start, got start = {self.start} and "
                            f"stop = {self.stop}")


@dataclass
class ForecastModel:
    """``[model]``: `SeriesScaling` → ``num_layers`` × ``cell(units)`` → Dense(H) → `SeriesUnscaling`.

    Attributes:
        cell: "lstm", "gru" or "simple_rnn" (default "lstm").
        units: units per recurrent layer (default 32).
        num_layers: recurrent layers (default 2).
        dropout: dropout after each recurrent layer (default 0.0).
        target: "change" (default: predict the change from the last value) or "level"
            (the scaled value itself; not with data.scaling = "window").
        head: "next" (default: one value, rollout for longer horizons) or "direct"
            (eval.horizon values at once).
        shrink: scale the predicted changes towards persistence by a factor per horizon
            in [0, 1] fit on validation (default true; needs target "change").
    """

    cell: str = "lstm"
    units: int = setting(32, ge=1)
    num_layers: int = setting(2, ge=1)
    dropout: float = setting(0.0, ge=0, lt=1)
    target: str = setting("change", choices=TARGETS)
    head: str = setting("next", choices=HEADS)
    shrink: bool = True


@dataclass
class ForecastEval:
    """``[eval]``.

    Attributes:
        horizon: steps forecast from the start of the test part and evaluated per
            horizon; the direct head's width (default 50).
        season: period of the seasonal-naive baseline in steps, e.g. 52 for weekly
            data with a yearly cycle (default 0 = no seasonal baseline).
    """

    horizon: int = setting(50, ge=1)
    season: int = setting(0, ge=0)


SCHEMA = {"run": RunConfig, "data": ForecastData, "model": ForecastModel, "train": TrainConfig,
          "eval": ForecastEval}
