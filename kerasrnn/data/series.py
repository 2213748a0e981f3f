"""Numeric time series for forecasting: CSV tables with dates and gaps, the seeds' sine wave, scaling.

`load_series_table` reads one or more numeric columns of a CSV/TSV file (the
target first), optionally a date/time column; missing cells are refused with
their count or interpolated linearly; irregular time steps are counted and
reported. `load_series_csv` is the one-column shortcut.
"""

from __future__ import annotations

import dataclasses
import datetime
import os

import numpy as np

from kerasrnn.data.labeled import _cell, column_index, read_rows
from kerasrnn.errors import UserError

MISSING_MARKERS = frozenset({"", "na", "n/a", "nan", "null", "none", "?", "-", "."})
MISSING_POLICIES = ("error", "interpolate")
_DATE_FORMATS = ("%Y/%m/%d", "%Y/%m/%d %H:%M:%S", "%Y%m%d", "%d.%m.%Y", "%m/%d/%Y", "%Y-%m")


# ----------------------------------------------------------------------------- time steps


@dataclasses.dataclass(frozen=True)
class TimeStep:
    """The regular step of a time column: ``n`` × ``unit``.

    Units: ``"Y"`` years, ``"M"`` months, ``"B"`` business days (weekends skipped),
    ``"D"`` days, ``"s"`` seconds (any sub-day step) and ``"num"`` (a numeric
    time column such as a year written as 1700.0).

    >>> step = TimeStep(1, "M")
    >>> step.format(step.advance(np.datetime64("2020-01-01"), 2))
    '2020-03-01'
    >>> TimeStep(1.0, "num").format(TimeStep(1.0, "num").advance(2008.0, 1))
    '2009'
    """

    n: float
    unit: str

    def advance(self, last, k: int):
        """The date `k` steps after `last`."""
        if self.unit == "num":
            return float(last) + k * self.n
        if self.unit in ("Y", "M"):
            months = int(self.n) * k * (12 if self.unit == "Y" else 1)
            day = np.datetime64(last, "D")
            month = day.astype("datetime64[M]")
            offset = day - month.astype("datetime64[D]")
            return ((month + months).astype("datetime64[D]") + offset).astype("datetime64[s]")
        if self.unit == "B":
            return np.busday_offset(np.datetime64(last, "D"), int(self.n) * k, roll="forward").astype("datetime64[s]")
        seconds = {"D": 86400, "s": 1}[self.unit] * self.n
        return np.datetime64(last, "s") + np.timedelta64(int(round(seconds * k)), "s")

    def format(self, date) -> str:
        """A date as text in the step's natural resolution."""
        if self.unit == "num":
            value = float(date)
            return str(int(value)) if value.is_integer() else f"{value:g}"
        date = np.datetime64(date, "s")
        if self.unit == "s" or date != np.datetime64(date, "D"):
            return str(date).replace("T", " ")
        return str(np.datetime64(date, "D"))

    def describe(self) -> str:
        names = {"Y": "year", "M": "month", "B": "business day", "D": "day", "s": "second", "num": ""}
        n = int(self.n) if float(self.n).is_integer() else self.n
        if self.unit == "num":
            return f"{n:g}"
        if self.unit == "s" and n % 3600 == 0:
            return f"{n // 3600} hour" + ("s" if n != 3600 else "")
        return f"{n} {names[self.unit]}" + ("s" if n != 1 else "")


def parse_dates(cells: list[str], where: str):
    """Parse a date/time column: ISO dates/datetimes, a few common formats, or plain numbers.

    Returns ``datetime64[s]`` (dates) or float64 (numeric time) values.

    >>> parse_dates(["1700.0", "1701.0"], "f").tolist()
    [1700.0, 1701.0]
    >>> str(parse_dates(["2020-01-31"], "f")[0])
    '2020-01-31T00:00:00'
    """
    try:
        return np.asarray([float(c) for c in cells], dtype=np.float64)
    except ValueError:
        pass
    out = []
    fmt = None
    for i, cell in enumerate(cells):
        text = cell.strip()
        try:
            value = datetime.datetime.fromisoformat(text.replace("Z", "+00:00")) if fmt is None else \
                datetime.datetime.strptime(text, fmt)
        except ValueError:
            value = None
            for candidate in _DATE_FORMATS:
                try:
                    value, fmt = datetime.datetime.strptime(text, candidate), candidate
                    break
                except ValueError:
                    continue
            if value is None:
                raise UserError(f"{where} row {i + 1}: {cell!r} is not a date (expected e.g. 2020-01-31 or "
                                "2020-01-31 12:00); check data.date_column") from None
        if value.tzinfo is not None:
            value = value.astimezone(datetime.timezone.utc).replace(tzinfo=None)
        out.append(np.datetime64(value, "s"))
    return np.asarray(out, dtype="datetime64[s]")


def infer_step(dates) -> tuple[TimeStep, int]:
    """The regular step of sorted `dates` and how many steps differ from it.

    Calendar steps are recognised (yearly, quarterly/monthly, business days), so
    months of 28–31 days and weekends in daily market data are not "irregular".

    >>> d = np.array(["2020-01-31", "2020-02-29", "2020-03-31", "2020-05-31"], "datetime64[s]")
    >>> step, irregular = infer_step(d)
    >>> step.describe(), irregular
    ('1 month', 1)
    """
    dates = np.asarray(dates)
    if dates.dtype.kind == "f":
        diffs = np.diff(dates)
        values, counts = np.unique(np.round(diffs, 9), return_counts=True)
        step = float(values[np.argmax(counts)]) if len(values) else 1.0
        return TimeStep(step, "num"), int(np.sum(~np.isclose(diffs, step)))
    days = np.asarray(dates, "datetime64[s]")
    seconds = np.diff(days).astype(np.int64)
    if len(seconds) == 0:
        return TimeStep(1, "D"), 0
    values, counts = np.unique(seconds, return_counts=True)
    mode = int(values[np.argmax(counts)])
    day = 86400
    if 28 * day <= mode <= 31 * day or 89 * day <= mode <= 92 * day or 365 * day <= mode <= 366 * day:
        months = np.diff(days.astype("datetime64[M]").astype(np.int64))
        m_values, m_counts = np.unique(months, return_counts=True)
        m = int(m_values[np.argmax(m_counts)])
        if m >= 1:
            step = TimeStep(m // 12, "Y") if m % 12 == 0 else TimeStep(m, "M")
            return step, int(np.sum(months != m))
    if mode == day:
        as_days = days.astype("datetime64[D]")
        weekdays = np.is_busday(as_days)
        gaps = np.diff(as_days).astype(np.int64)
        if weekdays.all() and np.any(gaps == 3):
            busdays = np.busday_count(as_days[:-1], as_days[1:])
            return TimeStep(1, "B"), int(np.sum(busdays != 1))
    if mode % day == 0:
        return TimeStep(mode // day, "D"), int(np.sum(seconds != mode))
    return TimeStep(mode, "s"), int(np.sum(seconds != mode))


# ----------------------------------------------------------------------------- tables


@dataclasses.dataclass
class SeriesTable:
    """Numeric columns of a time series file, in time order.

    Attributes:
        values: float32 array (N, F); column 0 is the target.
        columns: the F column names.
        dates: the parsed time column (N,) (``datetime64[s]`` or float64), or None.
        step: the regular `TimeStep` of `dates`, or None.
        irregular_steps: how many consecutive dates are not one `step` apart.
        missing: how many missing cells were interpolated.
    """

    values: np.ndarray
    columns: list[str]
    dates: np.ndarray | None = None
    step: TimeStep | None = None
    irregular_steps: int = 0
    missing: int = 0

    def notes(self) -> list[str]:
        """Lines worth telling the user about the data (steps, gaps, interpolation)."""
        lines = []
        if self.step is not None:
            lines.append(f"{len(self.values)} values from {self.step.format(self.dates[0])} to "
                         f"{self.step.format(self.dates[-1])}, every {self.step.describe()}")
            if self.irregular_steps:
                gaps = np.diff(self.dates)
                lines.append(f"{self.irregular_steps} irregular time steps (not {self.step.describe()} apart; "
                             f"largest gap {_gap_text(gaps.max())}); the model treats the rows as equally spaced")
        if self.missing:
            lines.append(f"{self.missing} missing values interpolated linearly")
        return lines


def _gap_text(gap) -> str:
    if isinstance(gap, np.timedelta64):
        seconds = int(gap.astype("timedelta64[s]").astype(np.int64))
        return f"{seconds / 86400:g} days" if seconds % 86400 == 0 else f"{seconds} s"
    return f"{float(gap):g}"


def interpolate_missing(values: np.ndarray) -> np.ndarray:
    """Fill NaNs of each column linearly in the row index; ends take the nearest value.

    >>> interpolate_missing(np.array([[1.0], [np.nan], [3.0], [np.nan]])).ravel().tolist()
    [1.0, 2.0, 3.0, 3.0]
    """
    values = np.array(values, dtype=np.float64, copy=True)
    index = np.arange(len(values))
    for f in range(values.shape[1]):
        bad = np.isnan(values[:, f])
        if bad.any():
            values[bad, f] = np.interp(index[bad], index[~bad], values[~bad, f])
    return values


def load_series_table(path, columns, header: bool = True, delimiter: str | None = None, date_column: str = "",
                      missing: str = "error", encoding: str = "utf-8") -> SeriesTable:
    """Numeric columns (and an optional date column) of a CSV/TSV file.

    Args:
        path: the file.
        columns: header names or 0-based indices; the first is the target.
        header: whether the first row names the columns (default True).
        delimiter: default ``"\\t"`` for ``.tsv``/``.tab``, else ``","``.
        date_column: a date/time column ("" = none, the default). Rows are sorted by
            it if needed; duplicate dates are an error.
        missing: ``"error"`` (default: refuse, giving the count) or ``"interpolate"``
            (linear in the row index). Empty cells and NA/NaN/null count as missing.
        encoding: default ``"utf-8"``.

    Returns:
        A `SeriesTable`.

    >>> table = load_series_table("prices.csv", ["close", "volume"], date_column="date")  # doctest: +SKIP
    >>> table.values.shape  # doctest: +SKIP
    (1500, 2)
    """
    path = os.fspath(path)
    if missing not in MISSING_POLICIES:
        raise UserError(f"data.missing must be one of {', '.join(MISSING_POLICIES)}, got {missing!r}")
    rows = read_rows(path, delimiter, True, encoding)
    names = rows[0] if header and rows else None
    body = rows[1:] if header else rows
    if not body:
        raise UserError(f"{path} has no data rows; check the file and data.header")
    first_line = 2 if header else 1
    indices = [column_index(c, names, path) for c in columns]
    labels = [names[i] if names else str(i) for i in indices]
    values = np.empty((len(body), len(indices)), dtype=np.float64)
    missing_per_column = [0] * len(indices)
    for r, row in enumerate(body):
        for f, (index, column) in enumerate(zip(indices, columns)):
            cell = _cell(row, index, path, r + first_line, column)
            if cell.strip().lower() in MISSING_MARKERS:
                values[r, f] = np.nan
                missing_per_column[f] += 1
                continue
            try:
                values[r, f] = float(cell)
            except ValueError:
                raise UserError(f"{path} row {r + first_line}: column {column!r} value {cell!r} is not a number") from None
            if not np.isfinite(values[r, f]):
                raise UserError(f"{path} row {r + first_line}: column {column!r} is not finite ({cell})")
    total_missing = sum(missing_per_column)
    if total_missing:
        per = ", ".join(f"{labels[f]!r}: {n}" for f, n in enumerate(missing_per_column) if n)
        if missing == "error":
            raise UserError(f"{path} has {total_missing} missing values ({per}); set data.missing = \"interpolate\" "
                            "to fill them linearly, or fill them in the file")
        if any(n == len(body) for n in missing_per_column):
            raise UserError(f"{path}: a column has no values at all ({per}); choose another column")
        values = interpolate_missing(values)
    dates = step = None
    irregular = 0
    if date_column not in ("", None):
        d_index = column_index(date_column, names, path)
        dates = parse_dates([_cell(row, d_index, path, r + first_line, date_column) for r, row in enumerate(body)],
                            f"{path} column {date_column!r}")
        order = np.argsort(dates, kind="stable")
        if np.any(order != np.arange(len(order))):
            dates, values = dates[order], values[order]
        if len(dates) > 1 and np.any(dates[1:] == dates[:-1]):
            dup = int(np.flatnonzero(dates[1:] == dates[:-1])[0]) + 1
            raise UserError(f"{path}: date {dates[dup]} appears more than once in column {date_column!r}; "
                            "aggregate the duplicate rows first")
        step, irregular = infer_step(dates)
    return SeriesTable(values.astype(np.float32), labels, dates, step, irregular, total_missing)


def load_series_csv(path, column: str | int, header: bool = True, delimiter: str | None = None,
                    encoding: str = "utf-8") -> np.ndarray:
    """One numeric column of a CSV/TSV file as a 1-D float32 array (file order).

    Args:
        path: the file.
        column: header name or 0-based index.
        header: whether the first row names the columns (default True).
        delimiter: default ``"\\t"`` for ``.tsv``/``.tab``, else ``","``.
        encoding: default ``"utf-8"``.

    >>> values = load_series_csv("airline-passengers.csv", "Passengers")  # doctest: +SKIP
    """
    return load_series_table(path, [column], header, delimiter, encoding=encoding).values[:, 0]


def sine_wave(n: int = 1000, start: float = 0.0, stop: float = 50.0, amplitude: float = 0.5,
              noise: float = 0.0, seed: int = 0) -> np.ndarray:
    """``sin(linspace(start, stop, n)) * amplitude`` plus optional seeded Gaussian noise, float32.

    The defaults are the seed notes' example (``x = linspace(0, 50, 1000); y = sin(x) * 0.5``).

    >>> [round(float(v), 3) for v in sine_wave(5, stop=np.pi, amplitude=1.0)]
    [0.0, 0.707, 1.0, 0.707, 0.0]
    """
    if n < 2:
        raise UserError(f"data.n must be at least 2, got {n}")
    x = np.linspace(start, stop, int(n))
    y = np.sin(x) * amplitude
    if noise:
        y = y + np.random.default_rng(seed).normal(0.0, noise, size=y.shape)
    return y.astype(np.float32)


@dataclasses.dataclass
class MinMaxScaler:
    """Scale values linearly so that [min, max] of the training data maps to `feature_range`.

    Fit on the training part only, then transform every split with it.

    >>> s = MinMaxScaler().fit(np.array([0.0, 10.0]))
    >>> s.transform(np.array([0.0, 5.0, 10.0])).tolist()
    [-1.0, 0.0, 1.0]
    >>> MinMaxScaler.from_dict(s.to_dict()).inverse_transform(np.array([1.0])).tolist()
    [10.0]
    """

    min: float | None = None
    max: float | None = None
    feature_range: tuple[float, float] = (-1.0, 1.0)

    def fit(self, values) -> "MinMaxScaler":
        values = np.asarray(values, dtype=np.float64)
        if values.size == 0:
            raise UserError("cannot fit the scaler on an empty series")
        self.min, self.max = float(values.min()), float(values.max())
        return self

    def _scale(self) -> tuple[float, float, float]:
        if self.min is None or self.max is None:
            raise RuntimeError("MinMaxScaler used before fit()")
        lo, hi = self.feature_range
        span = self.max - self.min
        return lo, (hi - lo) / (span if span else 1.0), self.min

    def transform(self, values) -> np.ndarray:
        lo, factor, vmin = self._scale()
        return ((np.asarray(values, dtype=np.float64) - vmin) * factor + lo).astype(np.float32)

    def inverse_transform(self, values) -> np.ndarray:
        lo, factor, vmin = self._scale()
        return ((np.asarray(values, dtype=np.float64) - lo) / factor + vmin).astype(np.float32)

    def to_dict(self) -> dict:
        self._scale()
        return {"kind": "minmax", "min": self.min, "max": self.max, "feature_range": list(self.feature_range)}

    @classmethod
    def from_dict(cls, d: dict) -> "MinMaxScaler":
        if d.get("kind") != "minmax":
            raise UserError(f"unsupported scaler kind {d.get('kind')!r}; expected 'minmax'")
        lo, hi = d.get("feature_range", (-1.0, 1.0))
        return cls(min=float(d["min"]), max=float(d["max"]), feature_range=(float(lo), float(hi)))
