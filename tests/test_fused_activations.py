"""The fused LSTM/GRU loops' own tanh and sigmoid (`fused._tanh`, `fused._sigmoid`) equal TensorFlow's.

They are a rational approximation written out in ops (faster in the loops, see
`fused.RATIONAL_TANH`); the layers' equivalence tests check whole sequences
against the built-ins, these check the functions themselves over the whole
float32 range, compiled as the loops compile them.
"""

import numpy as np
import pytest
import tensorflow as tf

from kerasrnn.layers import fused

GRID = np.concatenate([np.linspace(-30.0, 30.0, 200_001), np.geomspace(1e-30, 1e-3, 1_000),
                       -np.geomspace(1e-30, 1e-3, 1_000), [0.0, np.inf, -np.inf, 88.0, -88.0, 1e30, -1e30]])


@pytest.mark.parametrize("jit", [False, True])
@pytest.mark.parametrize("ours, reference", [(fused._tanh, tf.tanh), (fused._sigmoid, tf.sigmoid)],
                         ids=["tanh", "sigmoid"])
def test_rational_activations_equal_tensorflow_to_float32_round_off(ours, reference, jit):
    x = tf.constant(GRID, tf.float32)
    got = tf.function(ours, jit_compile=jit)(x).numpy()
    want = reference(x).numpy()
    assert np.isfinite(got).all()
    assert np.abs(got - want).max() <= 5e-7  # measured worst: 4.2e-7, tanh(-7.93), 3.5 float32 ulps
    small = np.abs(GRID) < 1e-3  # near 0 tanh(z) ~ z: the error must shrink with z, not stay at 1e-7
    if ours is fused._tanh:
        assert np.all(np.abs(got[small] - want[small]) <= 3e-7 * np.abs(want[small]) + 1e-37)  # worst: 2.0e-7


@pytest.mark.parametrize("dtype", [tf.float16, tf.bfloat16])
def test_half_precision_uses_tensorflows_own_kernels(dtype):
    """In mixed precision the approximation's small coefficients would underflow."""
    x = tf.constant(np.linspace(-8, 8, 101), dtype)
    np.testing.assert_array_equal(fused._tanh(x).numpy(), tf.tanh(x).numpy())
    np.testing.assert_array_equal(fused._sigmoid(x).numpy(), tf.sigmoid(x).numpy())


def test_switching_it_off_gives_tensorflows_kernels(monkeypatch):
    monkeypatch.setattr(fused, "RATIONAL_TANH", False)
    x = tf.constant(GRID[:1000], tf.float32)
    np.testing.assert_array_equal(fused._tanh(x).numpy(), tf.tanh(x).numpy())
    np.testing.assert_array_equal(fused._sigmoid(x).numpy(), tf.sigmoid(x).numpy())


@pytest.mark.parametrize("jit", [False, True])
def test_nan_stays_nan(jit):
    """A diverged model must still show NaN, as with TensorFlow's kernels (the clamp must not hide it)."""
    x = tf.constant([np.nan, 1.0], tf.float32)
    for fn in (fused._tanh, fused._sigmoid):
        got = tf.function(fn, jit_compile=jit)(x).numpy()
        assert np.isnan(got[0]) and np.isfinite(got[1])
