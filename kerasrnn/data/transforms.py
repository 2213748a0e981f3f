"""Scaling and differencing for forecasting: what the model sees, and how predictions map back.

A forecaster gets windows ``x`` of shape (B, W, F) in the series' own units
(feature 0 = the target) and predicts the next H target values ``y`` (B, H).
`SeriesScaling` holds the constants, fit on the *training part only*:

- inputs, per feature f: ``x̃ = (x - c_f) / s_f`` where the reference ``c_f`` is

  * ``scaling = "window"`` (default): the window's own last value ``x[:, -1, f]``
    (per-window normalisation: a trend that leaves the training range still gives
    inputs of the usual size), ``s_f`` = RMS of the training part's one-step changes;
  * ``"standard"``: the training mean, ``s_f`` = the training standard deviation;
  * ``"minmax"``: the middle of the training range, ``s_f`` = half the range
    (the seeds' scaling to [-1, 1]);

- outputs: ``y = b + s_y · z`` where ``z`` is the network's output and

  * ``target = "change"`` (default; always the case with ``"window"``): ``b`` is the
    last observed target value, ``s_y`` the RMS one-step change, so ``z = 0`` is the
    persistence forecast and the network learns the change from the last value;
  * ``target = "level"``: ``b = c_0``, ``s_y = s_0`` (the value itself, scaled).

The same maps run inside the saved model (`kerasrnn.tasks.forecast_layers`), so the
model takes and returns original units.

>>> train = np.array([[10.0], [11.0], [13.0], [12.0]])
>>> s = SeriesScaling.fit(train, "window", "change")
>>> round(s.output_scale, 4), s.output_relative_to_last
(1.4142, True)
>>> x = np.array([[[11.0], [13.0]]])
>>> z = s.transform_targets(x, np.array([[15.0]]))
>>> s.inverse_targets(x, z).tolist()
[[15.0]]
"""

from __future__ import annotations

import dataclasses

import numpy as np

from kerasrnn.errors import UserError

SCALINGS = ("window", "standard", "minmax")
TARGETS = ("change", "level")


def difference(values, order: int = 1) -> np.ndarray:
    """`order`-th differences along axis 0: ``d_t = v_t - v_{t-1}`` (applied `order` times).

    >>> difference([1.0, 4.0, 9.0, 16.0]).tolist()
    [3.0, 5.0, 7.0]
    """
    values = np.asarray(values, dtype=np.float64)
    for _ in range(order):
        values = np.diff(values, axis=0)
    return values


def undifference(first, diffs) -> np.ndarray:
    """Invert `difference` (order 1): ``v_0 = first``, ``v_t = v_{t-1} + d_t``.

    >>> undifference(1.0, [3.0, 5.0, 7.0]).tolist()
    [1.0, 4.0, 9.0, 16.0]
    """
    diffs = np.asarray(diffs, dtype=np.float64)
    first = np.asarray(first, dtype=np.float64)
    return np.concatenate([first[None, ...], first[None, ...] + np.cumsum(diffs, axis=0)], axis=0)


def change_scale(values) -> np.ndarray:
    """Per column, the RMS of one-step changes (1 where the series is constant).

    >>> change_scale(np.array([[0.0, 5.0], [2.0, 5.0], [4.0, 5.0]])).tolist()
    [2.0, 1.0]
    """
    d = difference(np.asarray(values, dtype=np.float64).reshape(len(values), -1))
    rms = np.sqrt(np.mean(d ** 2, axis=0)) if len(d) else np.ones(np.asarray(values).reshape(len(values), -1).shape[1])
    return np.where(rms > 0, rms, 1.0)


@dataclasses.dataclass
class SeriesScaling:
    """Input and output scaling constants of a forecaster (see the module docstring).

    Attributes:
        scaling: "window", "standard" or "minmax".
        target: "change" or "level" (``"window"`` implies "change").
        input_center: c_f per feature (unused with "window").
        input_scale: s_f per feature.
        output_offset: b when the output is not relative to the last value.
        output_scale: s_y.
    """

    scaling: str
    target: str
    input_center: list[float]
    input_scale: list[float]
    output_offset: float
    output_scale: float

    @property
    def input_relative_to_last(self) -> bool:
        return self.scaling == "window"

    @property
    def output_relative_to_last(self) -> bool:
        return self.scaling == "window" or self.target == "change"

    @classmethod
    def fit(cls, train_values, scaling: str = "window", target: str = "change") -> "SeriesScaling":
        """Fit on the training part `train_values` (N,) or (N, F); column 0 is the target."""
        if scaling not in SCALINGS:
            raise UserError(f"data.scaling must be one of {', '.join(SCALINGS)}, got {scaling!r}")
        if target not in TARGETS:
            raise UserError(f"model.target must be one of {', '.join(TARGETS)}, got {target!r}")
        v = np.asarray(train_values, dtype=np.float64)
        v = v.reshape(len(v), -1)
        if len(v) < 2:
            raise UserError("cannot fit the scaling on fewer than 2 training values")
        steps = change_scale(v)
        if scaling == "window":
            center, scale = np.zeros(v.shape[1]), steps
        elif scaling == "standard":
            center, scale = v.mean(axis=0), v.std(axis=0)
        else:
            lo, hi = v.min(axis=0), v.max(axis=0)
            center, scale = (lo + hi) / 2, (hi - lo) / 2
        scale = np.where(scale > 0, scale, 1.0)
        relative = scaling == "window" or target == "change"
        return cls(scaling, "change" if scaling == "window" else target, [float(c) for c in center],
                   [float(s) for s in scale], 0.0 if relative else float(center[0]),
                   float(steps[0] if relative else scale[0]))

    # -------------------------------------------------------------- numpy maps (float64)

    def _reference(self, windows: np.ndarray) -> np.ndarray:
        if self.input_relative_to_last:
            return windows[:, -1:, :]
        return np.asarray(self.input_center, np.float64)[None, None, :]

    def transform_inputs(self, windows) -> np.ndarray:
        """``x̃ = (x - c) / s`` for windows (B, W, F)."""
        w = np.asarray(windows, dtype=np.float64)
        return (w - self._reference(w)) / np.asarray(self.input_scale, np.float64)

    def inverse_inputs(self, windows, scaled) -> np.ndarray:
        """Undo `transform_inputs` (with ``"window"`` the reference comes from `windows`)."""
        w = np.asarray(windows, dtype=np.float64)
        return np.asarray(scaled, np.float64) * np.asarray(self.input_scale, np.float64) + self._reference(w)

    def base(self, windows) -> np.ndarray:
        """b (B, 1): the last target value of each window, or the fixed offset."""
        w = np.asarray(windows, dtype=np.float64)
        if self.output_relative_to_last:
            return w[:, -1, :1]
        return np.full((len(w), 1), self.output_offset)

    def transform_targets(self, windows, y) -> np.ndarray:
        """``z = (y - b) / s_y`` for targets y (B, H)."""
        return (np.asarray(y, np.float64) - self.base(windows)) / self.output_scale

    def inverse_targets(self, windows, z) -> np.ndarray:
        """``y = b + s_y · z``."""
        return self.base(windows) + self.output_scale * np.asarray(z, np.float64)

    # -------------------------------------------------------------- files

    def to_dict(self) -> dict:
        """The ``scaler.json`` content (kind "in_model": informative, the model applies it)."""
        return {"kind": "in_model", **dataclasses.asdict(self),
                "input_relative_to_last": self.input_relative_to_last,
                "output_relative_to_last": self.output_relative_to_last}

    @classmethod
    def from_dict(cls, d: dict) -> "SeriesScaling":
        if d.get("kind") != "in_model":
            raise UserError(f"unsupported scaler kind {d.get('kind')!r}; expected 'in_model'")
        return cls(**{f.name: d[f.name] for f in dataclasses.fields(cls)})
