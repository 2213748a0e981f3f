"""tf.data input pipelines: character windows, labelled texts, series windows.

All three shuffle with a fixed seed (reshuffled each epoch) and prefetch with
AUTOTUNE; nothing is materialised as Python lists of windows.
"""

from __future__ import annotations

import numpy as np

from kerasrnn.errors import UserError

SHUFFLE_BUFFER = 10_000


def _tf():
    import tensorflow as tf  # lazy: heavy import

    return tf


def _split_window(w):
    return w[:-1], w[1:]


def char_dataset(ids: np.ndarray, seq_len: int, batch_size: int, shuffle: bool = True, seed: int = 0,
                 repeat: bool = False):
    """Next-character training batches from a corpus of token ids.

    The corpus is cut into non-overlapping windows of ``seq_len + 1`` ids;
    each window gives ``x = window[:-1]`` and ``y = window[1:]`` (y is x
    shifted by one). Batches are full (``drop_remainder=True``).

    Args:
        ids: 1-D int token ids of the whole corpus.
        seq_len: steps per training sequence.
        batch_size: sequences per batch.
        shuffle: shuffle windows (default True; reshuffled each epoch).
        seed: shuffle seed (default 0).
        repeat: repeat forever (default False).

    Returns:
        A `tf.data.Dataset` of ``(x, y)``, both int32 of shape (batch_size, seq_len).

    >>> ds = char_dataset(np.arange(100), seq_len=9, batch_size=2, shuffle=False)
    >>> x, y = next(iter(ds))
    >>> x.shape, int(x[0, 1]), int(y[0, 0])
    (TensorShape([2, 9]), 1, 1)
    """
    tf = _tf()
    ids = np.asarray(ids)
    if ids.ndim != 1:
        raise UserError(f"char_dataset expects 1-D token ids, got shape {ids.shape}")
    if seq_len < 1 or batch_size < 1:
        raise UserError(f"seq_len and batch_size must be positive, got seq_len={seq_len}, batch_size={batch_size}")
    window = seq_len + 1
    n_windows = len(ids) // window
    if n_windows == 0:
        raise UserError(
            f"text of {len(ids)} characters is shorter than one window of seq_len+1 = {window} characters; "
            "use a longer text or a smaller seq_len"
        )
    if n_windows < batch_size:
        raise UserError(
            f"text of {len(ids)} characters makes only {n_windows} windows of seq_len+1 = {window}, fewer than "
            f"one batch of {batch_size}; use a longer text or a smaller batch_size/seq_len"
        )
    # Same windows as from_tensor_slices(ids).batch(window, drop_remainder=True), but
    # slicing a (n_windows, window) tensor is ~4x faster per epoch (1M chars: 0.4 s vs 1.5-2.5 s).
    windows = tf.reshape(tf.constant(ids[: n_windows * window], dtype=tf.int32), (n_windows, window))
    ds = tf.data.Dataset.from_tensor_slices(windows)
    ds = ds.map(_split_window, num_parallel_calls=tf.data.AUTOTUNE)
    if shuffle:
        ds = ds.shuffle(min(n_windows, SHUFFLE_BUFFER), seed=seed, reshuffle_each_iteration=True)
    ds = ds.batch(batch_size, drop_remainder=True)
    if repeat:
        ds = ds.repeat()
    return ds.prefetch(tf.data.AUTOTUNE)


def text_dataset(texts, labels, batch_size: int, shuffle: bool = True, seed: int = 0):
    """Batches of ``(text string, int32 label)`` for classifiers whose model vectorises text.

    The last batch may be smaller (nothing is dropped, so evaluation sees every example).

    >>> ds = text_dataset(["good", "bad", "fine"], [1, 0, 1], batch_size=2, shuffle=False)
    >>> [int(t.shape[0]) for t, _ in ds]
    [2, 1]
    """
    tf = _tf()
    texts, labels = list(texts), np.asarray(labels, dtype=np.int32)
    if len(texts) != len(labels):
        raise UserError(f"{len(texts)} texts but {len(labels)} labels")
    if not texts:
        raise UserError("no examples to make a dataset from; check the data paths and split")
    if batch_size < 1:
        raise UserError(f"batch_size must be positive, got {batch_size}")
    ds = tf.data.Dataset.from_tensor_slices((tf.constant(texts, dtype=tf.string), labels))
    if shuffle:
        ds = ds.shuffle(min(len(texts), SHUFFLE_BUFFER * 5), seed=seed, reshuffle_each_iteration=True)
    return ds.batch(batch_size).prefetch(tf.data.AUTOTUNE)


def series_windows(values: np.ndarray, window: int, batch_size: int, shuffle: bool = True, seed: int = 0):
    """Next-value windows over a 1-D series.

    Window i is ``x = values[i:i+window]`` (shape (window, 1)) with target
    ``y = values[i+window]`` (shape (1,)); there are ``len(values) - window``
    windows. The last batch may be smaller.

    >>> ds = series_windows(np.arange(6, dtype="float32"), window=3, batch_size=8, shuffle=False)
    >>> x, y = next(iter(ds))
    >>> x.shape, y.numpy().ravel().tolist()
    (TensorShape([3, 3, 1]), [3.0, 4.0, 5.0])
    """
    tf = _tf()
    values = np.asarray(values, dtype=np.float32)
    if values.ndim != 1:
        raise UserError(f"series_windows expects a 1-D series, got shape {values.shape}")
    if window < 1 or batch_size < 1:
        raise UserError(f"window and batch_size must be positive, got window={window}, batch_size={batch_size}")
    n_windows = len(values) - window
    if n_windows <= 0:
        raise UserError(
            f"series of {len(values)} values is too short for window={window} (needs at least {window + 1}); "
            "use a longer series or a smaller window"
        )
    ds = tf.data.Dataset.from_tensor_slices(values)
    ds = ds.window(window + 1, shift=1, drop_remainder=True)
    ds = ds.flat_map(lambda w: w.batch(window + 1, drop_remainder=True))
    ds = ds.map(lambda w: (w[:-1, tf.newaxis], w[-1:]), num_parallel_calls=tf.data.AUTOTUNE)
    ds = ds.apply(tf.data.experimental.assert_cardinality(n_windows))
    if shuffle:
        ds = ds.shuffle(min(n_windows, SHUFFLE_BUFFER), seed=seed, reshuffle_each_iteration=True)
    return ds.batch(batch_size).prefetch(tf.data.AUTOTUNE)
