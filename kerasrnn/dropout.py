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

__all__ = ["PhiloxDropout", "TokenDropout"]


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
        import tensorflow as tf  # lazy: heavy import

        # As Keras' TF backend: the generator state is int64, stateless ops want int32.
        seed = tf.cast(tf.math.floormod(self.seed_generator.next(), tf.int32.max - 1), tf.int32)
        return tf.nn.experimental.stateless_dropout(inputs, rate=self.rate, seed=seed, rng_alg="philox")


@keras.saving.register_keras_serializable(package="kerasrnn")
class TokenDropout(keras.layers.Layer):
    """Drop whole token vectors of a (B, T, D) sequence: embedding dropout for small data.

    In training each time step is zeroed with probability `rate` (one draw per
    example and step, shared by all D features) and the kept steps are scaled by
    ``1 / (1 - rate)``::

        m_bt ~ Bernoulli(1 - rate),   y_btd = m_bt · x_btd / (1 - rate)

    so the recurrent layer learns not to rely on any single word (Gal &
    Ghahramani 2016's word dropout; AWD-LSTM's embedding dropout drops rows of
    the embedding matrix, which for one sentence is the same up to repeated
    words). In inference it is the identity. The mask is drawn with Philox on
    the TensorFlow backend (cheap under XLA, see `PhiloxDropout`) and with
    `keras.random` elsewhere. A Keras mask (padding) passes through unchanged.

    Args:
        rate: probability of dropping a token, in [0, 1) (default 0.1).
        seed: seed of the layer's `keras.random.SeedGenerator` (default None).

    >>> import numpy as np
    >>> layer = TokenDropout(0.5, seed=0)
    >>> y = layer(np.ones((4, 6, 3), "float32"), training=True).numpy()
    >>> bool(((y == 0).all(-1) | (y == 2).all(-1)).all())   # whole tokens dropped or scaled
    True
    """

    def __init__(self, rate: float = 0.1, seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        if not 0 <= rate < 1:
            raise ValueError(f"TokenDropout rate must be in [0, 1), got {rate!r}")
        self.rate = float(rate)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.supports_masking = True

    def call(self, inputs, training=False):
        if not training or self.rate == 0:
            return inputs
        shape = keras.ops.shape(inputs)
        mask_shape = (shape[0], shape[1], 1)
        if keras.backend.backend() == "tensorflow":
            import tensorflow as tf  # lazy: heavy import

            seed = tf.cast(tf.math.floormod(self.seed_generator.next(), tf.int32.max - 1), tf.int32)
            uniform = tf.random.stateless_uniform(tf.stack(mask_shape), seed=seed, alg="philox",
                                                  dtype=inputs.dtype)
        else:
            uniform = keras.random.uniform(mask_shape, seed=self.seed_generator, dtype=inputs.dtype)
        keep = keras.ops.cast(uniform >= self.rate, inputs.dtype)
        return inputs * keep / (1.0 - self.rate)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "rate": self.rate, "seed": self.seed}
