"""Dropout that stays cheap inside XLA-compiled training steps on CPU.

`keras.layers.Dropout` on the TensorFlow backend draws its mask with
`tf.nn.experimental.stateless_dropout` and TensorFlow's default
``rng_alg="auto_select"``. Under XLA on a CPU that algorithm is two orders of
magnitude slower than naming one explicitly (measured, 2-core CPU, a
64×100×256 float32 mask in one ``tf.function(jit_compile=True)``:
auto_select 287 ms, philox 6.5 ms, threefry 1.9 ms). In a char model
(Embedding → LSTM(256) → Dropout(0.25) → Dense, batch 64 × 100, XLA) that is
684 ms per training step instead of 68 ms. (threefry is not used because
TensorFlow's eager CPU kernel rejects its counter shape outside XLA.)

`PhiloxDropout` is `keras.layers.Dropout` with the mask drawn by
``rng_alg="philox"`` on the TensorFlow backend; on other backends, with a
`noise_shape`, or in inference it is exactly Keras' layer. Same arguments,
same statistics (each unit kept with probability ``1 - rate`` and scaled by
``1 / (1 - rate)``), different random stream.

>>> import numpy as np
>>> layer = PhiloxDropout(0.5, seed=0)
>>> layer(np.ones((2, 3), "float32"), training=False).numpy().tolist()
[[1.0, 1.0, 1.0], [1.0, 1.0, 1.0]]
"""

from __future__ import annotations

import keras

__all__ = ["PhiloxDropout"]


@keras.saving.register_keras_serializable(package="kerasrnn")
class PhiloxDropout(keras.layers.Dropout):
    """`keras.layers.Dropout` whose TensorFlow mask uses the Philox RNG (fast under XLA).

    Args:
        rate: fraction of the inputs to drop, in [0, 1].
        noise_shape: as `keras.layers.Dropout` (then Keras' own mask is used).
        seed: seed of the layer's `keras.random.SeedGenerator` (default None).
    """

    def call(self, inputs, training=False):
        if (
            not training
            or self.rate == 0
            or self.noise_shape is not None
            or keras.backend.backend() != "tensorflow"
        ):
            return super().call(inputs, training=training)
        import tensorflow as tf

        # As Keras' TF backend: the generator state is int64, stateless ops want int32.
        seed = tf.cast(tf.math.floormod(self.seed_generator.next(), tf.int32.max - 1), tf.int32)
        return tf.nn.experimental.stateless_dropout(inputs, rate=self.rate, seed=seed, rng_alg="philox")
