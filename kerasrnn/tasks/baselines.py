"""Naive forecasts every forecaster is compared with (in ``metrics.json`` and on the plot).

For a forecast made at origin ``t`` (the last known index) of the value ``h`` steps
ahead, with ``y`` the target series:

- persistence: ``ŷ_{t+h} = y_t``;
- seasonal naive (period ``m``): ``ŷ_{t+h} = y_{t+h-m·k}``, ``k = ⌊(h-1)/m⌋ + 1``
  (the value one season earlier);
- drift: ``ŷ_{t+h} = y_t + h · (y_t - y_0) / t`` (the line through the first and last
  observations).

>>> y = np.array([1.0, 2.0, 3.0, 4.0])
>>> forecasts(y, np.array([3]), 2, season=2)["drift"].tolist()
[[5.0, 6.0]]
"""

from __future__ import annotations

import numpy as np

NAMES = ("persistence", "seasonal_naive", "drift")


def persistence(y, origins, horizon: int) -> np.ndarray:
    """(len(origins), horizon): the last value repeated.

    >>> persistence(np.array([1.0, 5.0, 7.0]), np.array([1, 2]), 2).tolist()
    [[5.0, 5.0], [7.0, 7.0]]
    """
    y = np.asarray(y, np.float64)
    return np.repeat(y[np.asarray(origins)][:, None], horizon, axis=1)


def seasonal_naive(y, origins, horizon: int, season: int) -> np.ndarray:
    """(len(origins), horizon): the value one season (`season` steps) before each target.

    >>> seasonal_naive(np.array([1.0, 2.0, 3.0, 4.0, 5.0]), np.array([4]), 3, season=2).tolist()
    [[4.0, 5.0, 4.0]]
    """
    y = np.asarray(y, np.float64)
    h = np.arange(1, horizon + 1)
    k = (h - 1) // season + 1
    index = np.asarray(origins)[:, None] + h[None, :] - season * k[None, :]
    if index.min(initial=0) < 0:
        raise ValueError(f"seasonal naive needs {season} values before the first origin")
    return y[index]


def drift(y, origins, horizon: int) -> np.ndarray:
    """(len(origins), horizon): the line through ``y_0`` and ``y_t`` extended ``h`` steps.

    >>> drift(np.array([0.0, 1.0, 4.0]), np.array([2]), 2).tolist()
    [[6.0, 8.0]]
    """
    y = np.asarray(y, np.float64)
    origins = np.asarray(origins)
    slope = (y[origins] - y[0]) / np.maximum(origins, 1)
    return y[origins][:, None] + slope[:, None] * np.arange(1, horizon + 1)[None, :]


def forecasts(y, origins, horizon: int, season: int = 0) -> dict[str, np.ndarray]:
    """Every baseline's forecasts; seasonal naive only when ``season > 0`` and history allows."""
    out = {"persistence": persistence(y, origins, horizon), "drift": drift(y, origins, horizon)}
    if season > 0 and np.min(origins) + 1 >= season:
        out["seasonal_naive"] = seasonal_naive(y, origins, horizon, season)
    return out
