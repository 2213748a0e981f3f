"""The two layers that put a forecaster's scaling inside the saved model.

`SeriesScaling` (first layer) and `SeriesUnscaling` (last layer) apply the maps of
`kerasrnn.data.transforms.SeriesScaling` with constants fit on the training part,
so a saved forecaster takes windows in the series' own units and returns
forecasts in the same units (no side file to apply, in Keras, SavedModel or
TFLite). Both use only slicing and elementwise arithmetic (TFLite builtins).

>>> import numpy as np
>>> x = np.array([[[10.0], [12.0]]], "float32")
>>> SeriesScaling([0.0], [2.0], relative_to_last=True)(x).numpy().ravel().tolist()
[-1.0, 0.0]
>>> SeriesUnscaling(0.0, 2.0, relative_to_last=True)([np.array([[0.5]], "float32"), x]).numpy().tolist()
[[13.0]]
"""

from __future__ import annotations

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="kerasrnn")
class SeriesScaling(keras.layers.Layer):
    """Scale input windows: ``x̃[b, t, f] = (x[b, t, f] - r[b, f]) / s_f``.

    ``r[b, f] = x[b, W-1, f]`` (the window's last value) when `relative_to_last`,
    else the constant ``center[f]``.

    Args:
        center: c_f per feature (list of F floats; ignored when `relative_to_last`).
        scale: s_f > 0 per feature (list of F floats).
        relative_to_last: subtract each window's last value (default False).

    Input (B, W, F) → output (B, W, F).
    """

    def __init__(self, center, scale, relative_to_last: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.center = [float(c) for c in center]
        self.scale = [float(s) for s in scale]
        if len(self.center) != len(self.scale) or not all(s > 0 for s in self.scale):
            raise ValueError(f"center and scale need one value per feature and scale > 0, got center={center}, "
                             f"scale={scale}")
        self.relative_to_last = bool(relative_to_last)

    def call(self, x):
        ref = x[:, -1:, :] if self.relative_to_last else ops.convert_to_tensor(self.center, x.dtype)
        return (x - ref) * ops.convert_to_tensor([1.0 / s for s in self.scale], x.dtype)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "center": self.center, "scale": self.scale,
                "relative_to_last": self.relative_to_last}


@keras.saving.register_keras_serializable(package="kerasrnn")
class SeriesUnscaling(keras.layers.Layer):
    """Map network outputs back to the series' units: ``y[b, h] = base[b] + scale · z[b, h]``.

    ``base[b] = window[b, W-1, 0]`` (the last observed target value: ``z = 0`` is
    the persistence forecast) when `relative_to_last`, else the constant `offset`.

    Args:
        offset: base when not `relative_to_last`.
        scale: the output scale s_y > 0.
        relative_to_last: forecast the change from the window's last target value (default False).

    Inputs ``[z (B, H), window (B, W, F)]`` → output (B, H).
    """

    def __init__(self, offset: float, scale: float, relative_to_last: bool = False, **kwargs):
        super().__init__(**kwargs)
        if not scale > 0:
            raise ValueError(f"scale must be > 0, got {scale}")
        self.offset, self.scale, self.relative_to_last = float(offset), float(scale), bool(relative_to_last)

    def call(self, inputs):
        z, window = inputs
        base = window[:, -1, :1] if self.relative_to_last else self.offset
        return base + z * self.scale

    def compute_output_shape(self, input_shapes):
        return input_shapes[0]

    def get_config(self):
        return {**super().get_config(), "offset": self.offset, "scale": self.scale,
                "relative_to_last": self.relative_to_last}
