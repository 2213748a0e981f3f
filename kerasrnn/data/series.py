"""Numeric time series for forecasting: CSV columns, the seeds' sine wave, min-max scaling."""

from __future__ import annotations

import dataclasses
import os

import numpy as np

from kerasrnn.data.labeled import column_index, read_rows
from kerasrnn.errors import UserError


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
    path = os.fspath(path)
    rows = read_rows(path, delimiter, True, encoding)
    names = rows[0] if header and rows else None
    body = rows[1:] if header else rows
    if not body:
        raise UserError(f"{path} has no data rows; check the file and data.header")
    index = column_index(column, names, path)
    values = []
    for line, row in enumerate(body, 2 if header else 1):
        try:
            cell = row[index]
        except IndexError:
            raise UserError(f"{path} row {line} has {len(row)} fields, no column {column!r}; check data.delimiter") from None
        try:
            values.append(float(cell))
        except ValueError:
            raise UserError(f"{path} row {line}: column {column!r} value {cell!r} is not a number") from None
    values = np.asarray(values, dtype=np.float32)
    if not np.all(np.isfinite(values)):
        bad = int(np.flatnonzero(~np.isfinite(values))[0])
        raise UserError(f"{path} row {bad + (2 if header else 1)}: column {column!r} is not finite ({values[bad]})")
    return values


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
