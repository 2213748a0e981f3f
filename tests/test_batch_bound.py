"""`kerasrnn.bench.batch_bound`: multiply-adds per step from the cells' kernels, LiteRT's GEMM rate, the bound."""

import math

import keras
import pytest

import kerasrnn.layers as krl
from kerasrnn.bench import batch_bound


def _model(*layers, features=128):
    inputs = keras.Input((None, features))
    x = inputs
    for layer in layers:
        x = layer(x)
    return keras.Model(inputs, x)


def test_macs_per_step_counts_both_directions_and_no_biases():
    # GRU reset_after keeps a 2-D bias (2, 3*units): counted neither as a kernel nor as work.
    model = _model(keras.layers.Bidirectional(krl.GRU(64, reset_after=True)))
    assert batch_bound.macs_per_step(model) == 2 * (128 * 192 + 64 * 192)
    assert batch_bound.input_gemm_shape(model) == (128, 192)


def test_macs_per_step_stacked_lstm_with_projection():
    # kernel 5 x 32, recurrent_kernel 4 x 32 (proj_size), projection_kernel 8 x 4; then a SimpleRNN 3 on the 4-wide output.
    model = _model(krl.LSTM(8, proj_size=4, return_sequences=True), krl.SimpleRNN(3), features=5)
    assert batch_bound.macs_per_step(model) == 5 * 32 + 4 * 32 + 8 * 4 + (4 * 3 + 3 * 3)
    assert batch_bound.flops_per_item(model, steps=10.5) == pytest.approx(2 * 10.5 * (320 + 21))


def test_macs_per_step_leaves_out_folded_input_kernels():
    # A folded embedding (kerasrnn.export.tflite.folded_embedding) reads the first layer's x·W from a table.
    first = keras.layers.Bidirectional(krl.GRU(64, return_sequences=True))
    model = _model(first, krl.LSTM(16))
    full = 2 * (128 * 192 + 64 * 192) + (128 * 64 + 16 * 64)
    assert batch_bound.macs_per_step(model) == full
    folded = [first.forward_layer, first.backward_layer]
    assert batch_bound.macs_per_step(model, folded) == full - 2 * 128 * 192
    assert batch_bound.flops_per_item(model, 3.0, folded) == pytest.approx(6 * (full - 2 * 128 * 192))


def test_model_without_recurrent_layer_is_a_clear_error():
    model = _model(keras.layers.Dense(4), features=3)
    assert batch_bound.macs_per_step(model) == 0
    with pytest.raises(ValueError, match="no kerasrnn recurrent layer"):
        batch_bound.input_gemm_shape(model)


def test_litert_gemm_rate_is_measured():
    rate = batch_bound.litert_gemm_gflops(16, 8, 12, repeats=1, calls=2)
    assert math.isfinite(rate) and rate > 0


def test_speedup_bound_is_batch1_time_over_flop_time():
    # 100 us per item at batch 1; 2 MFLOP at 80 GFLOP/s take 25 us: batching can give at most 4x.
    assert batch_bound.speedup_bound(100e-6, 2e6, 80.0) == pytest.approx(4.0)
    assert batch_bound.speedup_bound(50e-6, 2e6, 80.0) == pytest.approx(2.0)
