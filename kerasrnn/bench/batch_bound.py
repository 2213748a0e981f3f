"""The arithmetic bound on a LiteRT model's batch speed-up: FLOPs per item over one interpreter's GEMM rate.

However a batch is run, each item still needs its multiply-adds: for every
recurrent cell and time step, ``x_t·W`` and ``h·U`` (and LSTM's projection),
i.e. the sizes of the cell's kernels. At best a batch runs them at the
float32 GEMM rate one LiteRT interpreter (one thread, XNNPACK) reaches, so
with ``t₁`` the seconds per item at batch 1::

    batch-B ÷ batch-1 throughput  ≤  t₁ / (flops_per_item / gemm_rate)

A model whose batch-1 call is already short next to its arithmetic cannot be
sped up much by batching, whatever the loop does; only fewer FLOPs per item
(int8 kernels, a folded embedding) raise the bound. `kerasrnn bench export`
reports it beside the measured speed-up of the classifier.

>>> flops = flops_per_item(model, steps=18.9)  # doctest: +SKIP
>>> round(speedup_bound(133e-6, 2.79e6, 103.0), 1)  # polarity BiGRU: 133 µs at batch 1, 103 GFLOP/s
4.9
"""

from __future__ import annotations

import statistics
import time

import numpy as np


def _cells(model) -> list:
    from kerasrnn.layers.base import recurrent_layers  # lazy: imports Keras

    return [layer.cell for layer in recurrent_layers(model)]


def macs_per_step(model, folded=()) -> int:
    """Multiply-adds per item and time step of `model`'s kerasrnn recurrent layers (both directions).

    The sum of the sizes of each cell's kernels: ``kernel`` (input × gates),
    ``recurrent_kernel`` (units × gates) and, for an LSTM with ``proj_size``,
    ``projection_kernel``; biases (2-D for GRU ``reset_after``) and the gate
    arithmetic are not counted. `folded`: recurrent layers whose input
    projection is a table lookup (`kerasrnn.export.tflite.folded_embedding`),
    so their ``kernel`` is not multiplied.
    """
    skip = {id(layer.cell.kernel) for layer in folded}
    return int(sum(int(np.prod(w.shape)) for cell in _cells(model) for w in cell.weights
                   if w.name.endswith("kernel") and id(w) not in skip))


def input_gemm_shape(model) -> tuple[int, int]:
    """``(k, n)`` of the first recurrent cell's input kernel: the model's largest GEMM, once over all steps.

    Its LiteRT rate is the reference of `speedup_bound` for a folded model too (whose
    remaining GEMMs are smaller, so no faster): the bound stays an upper bound.
    """
    cells = _cells(model)
    if not cells:
        raise ValueError("the model has no kerasrnn recurrent layer, so there is no recurrent GEMM to bound")
    return tuple(int(d) for d in cells[0].kernel.shape)


def flops_per_item(model, steps: float, folded=()) -> float:
    """FLOPs (2 per multiply-add) of `model`'s recurrent GEMMs for one item of `steps` time steps
    (`folded` as in `macs_per_step`)."""
    return 2.0 * macs_per_step(model, folded) * float(steps)


def litert_gemm_gflops(m: int, k: int, n: int, repeats: int = 7, calls: int = 20) -> float:
    """GFLOP/s of one LiteRT interpreter (default delegates, one thread) on an ``(m, k) × (k, n)`` float32 GEMM.

    The median over `repeats` timings of `calls` invocations, after a warm-up;
    the GEMM is a ``FULLY_CONNECTED`` with constant weights, as in the exported models.
    """
    import tensorflow as tf  # lazy: heavy import
    from ai_edge_litert.interpreter import Interpreter  # lazy: heavy import

    from kerasrnn.export import tflite as tflite_mod

    weights = tf.constant(np.random.default_rng(0).standard_normal((k, n)).astype(np.float32))
    gemm = tf.function(lambda x: tf.matmul(x, weights), input_signature=[tf.TensorSpec((m, k), tf.float32)],
                       autograph=False)
    interpreter = Interpreter(model_content=tflite_mod.convert(gemm.get_concrete_function()), num_threads=1)
    interpreter.allocate_tensors()
    index = interpreter.get_input_details()[0]["index"]
    interpreter.set_tensor(index, np.random.default_rng(1).standard_normal((m, k)).astype(np.float32))
    interpreter.invoke()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(calls):
            interpreter.invoke()
        times.append((time.perf_counter() - start) / calls)
    return 2.0 * m * k * n / statistics.median(times) / 1e9


def speedup_bound(seconds_per_item_batch1: float, flops: float, gemm_gflops: float) -> float:
    """The most batching can speed an item up: batch-1 seconds ÷ the seconds its FLOPs take at `gemm_gflops`.

    >>> round(speedup_bound(100e-6, 2e6, 80.0), 2)
    4.0
    """
    return seconds_per_item_batch1 / (flops / (gemm_gflops * 1e9))
