"""Generated long-memory tasks: the adding problem and copy/recall, length T a parameter.

Both are made on the fly from a seed (NumPy PCG64), so nothing is downloaded and
the same ``(n, T, seed)`` always gives the same arrays.

Adding problem (Hochreiter & Schmidhuber 1997, in the variant of Le et al. 2015):
    ``x`` float32 ``(n, T, 2)``. Channel 0 holds values drawn uniformly from
    [0, 1); channel 1 is the *marker* channel: exactly two positions are 1, the
    first drawn uniformly from the first half ``[0, ceil(T/2))``, the second from
    the second half ``[ceil(T/2), T)``; every other position is 0. The target
    ``y`` float32 ``(n, 1)`` is the sum of the two marked values. The first
    marked value lies at least ``T//2`` steps before the end, so a model must carry
    it that far. ``y`` has mean 1 and variance 1/6: always predicting the mean
    scores MSE ≈ 0.167 (`adding_baseline_mse`).

Copy / recall (the "remember a token seen T steps earlier" task):
    ``x`` int32 ``(n, K + T)`` with ``K = num_tokens``. Positions ``0..K-1`` hold
    tokens drawn uniformly from ``1..vocab``; then come blanks (0); the last
    ``K`` positions hold the recall cue ``vocab + 1``. The model must output, at
    cue position ``T + j``, the token it saw at position ``j`` - exactly T steps
    earlier. ``y`` int32 ``(n, K)`` holds the class ids ``x[:, :K] - 1`` (in
    ``0..vocab-1``), to be predicted at the last ``K`` steps. The input alphabet
    has ``vocab + 2`` symbols (`copy_input_size`); chance accuracy is ``1/vocab``.

>>> x, y = adding_problem(4, 10, seed=0)
>>> x.shape, y.shape, x[..., 1].sum(axis=1).tolist()
((4, 10, 2), (4, 1), [2.0, 2.0, 2.0, 2.0])
>>> x, y = copy_task(3, 6, num_tokens=2, vocab=5, seed=0)
>>> x.shape, y.shape, bool((y == x[:, :2] - 1).all())
((3, 8), (3, 2), True)
"""

from __future__ import annotations

from typing import Iterator

import numpy as np

#: Variance of the adding-problem target (sum of two U(0,1)): the MSE of always predicting 1.
ADDING_TARGET_VARIANCE = 1.0 / 6.0


def _rng(seed) -> np.random.Generator:
    return np.random.default_rng(seed)


def _check(name: str, value: int, minimum: int) -> int:
    if int(value) != value or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def adding_problem(n: int, T: int, seed: int | None = 0) -> tuple[np.ndarray, np.ndarray]:
    """Generate `n` adding-problem sequences of length `T` (see module docstring).

    Args:
        n: number of sequences (>= 1).
        T: sequence length (>= 2).
        seed: NumPy seed (default 0); same seed, same arrays.

    Returns:
        ``(x, y)``: ``x`` float32 ``(n, T, 2)`` = [value, marker], ``y`` float32 ``(n, 1)``
        = sum of the two marked values.

    >>> x, y = adding_problem(2, 6, seed=1)
    >>> bool(np.allclose(y[:, 0], (x[..., 0] * x[..., 1]).sum(axis=1)))
    True
    """
    n, T = _check("n", n, 1), _check("T", T, 2)
    rng = _rng(seed)
    values = rng.random((n, T), dtype=np.float32)
    half = (T + 1) // 2
    first = rng.integers(0, half, size=n)
    second = rng.integers(half, T, size=n)
    marker = np.zeros((n, T), np.float32)
    rows = np.arange(n)
    marker[rows, first] = 1.0
    marker[rows, second] = 1.0
    x = np.stack([values, marker], axis=-1)
    y = (values[rows, first] + values[rows, second]).astype(np.float32)[:, None]
    return x, y


def adding_baseline_mse(y: np.ndarray, mean: float = 1.0) -> float:
    """MSE of always predicting `mean` (default 1.0, the target's expectation).

    >>> round(adding_baseline_mse(np.array([[0.5], [1.5]])), 3)
    0.25
    """
    return float(np.mean((np.asarray(y, np.float64) - mean) ** 2))


def copy_input_size(vocab: int) -> int:
    """Number of input symbols of `copy_task`: blank 0, tokens 1..vocab, cue vocab+1.

    >>> copy_input_size(8)
    10
    """
    return int(vocab) + 2


def copy_task(n: int, T: int, num_tokens: int = 1, vocab: int = 8,
              seed: int | None = 0) -> tuple[np.ndarray, np.ndarray]:
    """Generate `n` copy/recall sequences: recall `num_tokens` tokens after `T` steps.

    Args:
        n: number of sequences (>= 1).
        T: recall distance in steps (>= num_tokens, so cues never overlap tokens).
        num_tokens: K, tokens to remember (default 1).
        vocab: number of distinct tokens (>= 2, default 8).
        seed: NumPy seed (default 0).

    Returns:
        ``(x, y)``: ``x`` int32 ``(n, K + T)`` (tokens, blanks 0, cues ``vocab+1``),
        ``y`` int32 ``(n, K)`` = class ids ``token - 1`` for the last K steps.

    >>> x, y = copy_task(1, 4, num_tokens=1, vocab=3, seed=0)
    >>> x[0, 1:].tolist(), int(y[0, 0]) == int(x[0, 0]) - 1
    ([0, 0, 0, 4], True)
    """
    n, vocab = _check("n", n, 1), _check("vocab", vocab, 2)
    K = _check("num_tokens", num_tokens, 1)
    T = _check("T", T, K)
    rng = _rng(seed)
    tokens = rng.integers(1, vocab + 1, size=(n, K)).astype(np.int32)
    x = np.zeros((n, K + T), np.int32)
    x[:, :K] = tokens
    x[:, T:] = vocab + 1
    return x, tokens - 1


def generate(task: str, n: int, T: int, seed: int | None = 0, *, num_tokens: int = 1,
             vocab: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """Dispatch to `adding_problem` (``task="adding"``) or `copy_task` (``task="copy"``).

    >>> generate("adding", 2, 5)[0].shape
    (2, 5, 2)
    """
    if task == "adding":
        return adding_problem(n, T, seed)
    if task == "copy":
        return copy_task(n, T, num_tokens=num_tokens, vocab=vocab, seed=seed)
    raise ValueError(f"unknown long-memory task {task!r}; expected 'adding' or 'copy'")


def batches(task: str, T: int, batch_size: int, seed: int = 0, **kwargs) -> Iterator[tuple]:
    """Endless fresh training batches; batch i uses seed ``(seed, i)`` so streams are reproducible.

    >>> xb, yb = next(batches("adding", 5, 3, seed=0))
    >>> xb.shape
    (3, 5, 2)
    """
    i = 0
    while True:
        yield generate(task, batch_size, T, seed=(seed, i), **kwargs)
        i += 1


def dataset(task: str, T: int, batch_size: int, seed: int = 0, **kwargs):
    """An endless `tf.data.Dataset` of fresh batches from `batches` (prefetched).

    Args:
        task: ``"adding"`` or ``"copy"``.
        T: sequence length / recall distance.
        batch_size: sequences per batch.
        seed: stream seed (default 0).
        **kwargs: ``num_tokens``, ``vocab`` for the copy task.

    >>> ds = dataset("adding", 5, 4)  # doctest: +SKIP
    >>> next(iter(ds))[0].shape  # doctest: +SKIP
    TensorShape([4, 5, 2])
    """
    import tensorflow as tf  # lazy: heavy import

    x0, y0 = generate(task, 1, T, seed=0, **kwargs)
    spec = (tf.TensorSpec((batch_size,) + x0.shape[1:], tf.as_dtype(x0.dtype)),
            tf.TensorSpec((batch_size,) + y0.shape[1:], tf.as_dtype(y0.dtype)))
    ds = tf.data.Dataset.from_generator(lambda: batches(task, T, batch_size, seed, **kwargs),
                                        output_signature=spec)
    return ds.prefetch(2)
