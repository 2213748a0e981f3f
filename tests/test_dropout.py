"""kerasrnn.dropout.PhiloxDropout: Keras' Dropout semantics, a mask that is cheap under XLA."""

import keras
import numpy as np
import tensorflow as tf

from kerasrnn.dropout import PhiloxDropout


def test_training_keeps_one_minus_rate_scaled_and_inference_is_identity():
    keras.utils.set_random_seed(0)
    layer = PhiloxDropout(0.25, seed=3)
    x = np.ones((64, 100, 32), "float32")
    y = layer(x, training=True).numpy()
    kept = y != 0
    assert abs(kept.mean() - 0.75) < 0.01
    np.testing.assert_allclose(y[kept], 1 / 0.75, rtol=1e-6)
    np.testing.assert_array_equal(layer(x, training=False).numpy(), x)
    # a fresh mask every call, also inside an XLA-compiled function
    step = tf.function(lambda t: layer(t, training=True), jit_compile=True)
    a, b = step(x).numpy(), step(x).numpy()
    assert not np.array_equal(a != 0, b != 0) and abs((a != 0).mean() - 0.75) < 0.01


def test_same_seed_same_masks_and_noise_shape_falls_back_to_keras():
    x = np.ones((4, 10, 8), "float32")
    first = [PhiloxDropout(0.5, seed=7)(x, training=True).numpy() for _ in range(2)]
    np.testing.assert_array_equal(first[0], first[1])
    layer = PhiloxDropout(0.5, noise_shape=(4, 1, 8), seed=1)
    y = layer(x, training=True).numpy()
    assert np.all(y == y[:, :1, :])  # Keras' own mask, shared along the time axis


def test_serialization_round_trip_safe_mode(tmp_path):
    inp = keras.Input((5,))
    model = keras.Model(inp, PhiloxDropout(0.3, seed=2, name="drop")(inp))
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras", safe_mode=True)
    layer = loaded.get_layer("drop")
    assert type(layer) is PhiloxDropout and layer.rate == 0.3 and layer.seed == 2
    assert layer.get_config() == model.get_layer("drop").get_config()
