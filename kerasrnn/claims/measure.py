"""Speed, memory and gradient measurements of SimpleRNN / LSTM / GRU at equal hidden size.

How each number is measured (also printed under the bench table):

- **Time** (`time_cells`): a model ``Input(T, d) -> <cell>(u) -> Dense(1)``; the forward
  pass and one training step (MSE, Adam, `tf.GradientTape`) are each wrapped in one
  `tf.function`, every cell in the same setting (`SETTINGS`): ``xla_fused`` (XLA and the
  fused BPTT path) or ``keras_loop`` (Keras' loop without XLA); `kerasrnn bench claims`
  reports both.
  Every function is warmed up (traced/compiled) first, then the cells are timed
  *interleaved* (rep 1: rnn, lstm, gru; rep 2: ...) so machine noise hits all alike;
  the median over reps is reported.
- **Peak memory** (`peak_memory`): TensorFlow's CPU allocator is invisible to
  `tracemalloc`, and ``tf.config.experimental.get_memory_info("CPU:0")`` returns
  zeros on CPU (checked with TF 2.21), so each cell runs in a fresh subprocess
  that trains a few steps at a small batch and then at the measured batch, reading
  the process high-water RSS (``VmHWM`` in /proc/self/status, else
  ``resource.getrusage``) after each. The reported number is the *increase* of
  peak RSS from the small to the large batch: memory that scales with the batch
  (activations kept for backprop, gradients of activations), with the import,
  weights and compiler overhead subtracted out.
- **Gradient vs distance** (`gradient_norm_profile`): ``‖∂h_T/∂x_t‖_F`` for every
  input step t, estimated with one Gaussian probe vector per sequence
  (``E‖Jᵀv‖² = ‖J‖_F²`` for v ~ N(0, I)), root-mean-square over the batch, indexed
  by distance ``d = T-1-t`` from the last step.

>>> res = time_cells(["rnn"], T=5, input_dim=2, units=4, batch_size=2, reps=2)  # doctest: +SKIP
>>> sorted(res["simple_rnn"])  # doctest: +SKIP
['forward_ms', 'jit_compile', 'train_ms']
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time

import numpy as np

from kerasrnn.claims.params import canonical_cell


def build_regressor(cell: str, T: int | None, input_dim: int, units: int, **layer_kwargs):
    """``Input((T, input_dim), name="x") -> rnn_0 = <cell>(units) -> Dense(1, name="y")``.

    Uses `kerasrnn.layers`. Extra keyword arguments go to the recurrent layer.

    >>> build_regressor("gru", 10, 2, 8).count_params()  # doctest: +SKIP
    681
    """
    import keras  # lazy: Keras/TensorFlow load in seconds; imported only when measuring

    from kerasrnn.layers import get_layer_class  # lazy: imports Keras

    inputs = keras.Input((T, input_dim), name="x")
    h = get_layer_class(canonical_cell(cell))(units, name="rnn_0", **layer_kwargs)(inputs)
    return keras.Model(inputs, keras.layers.Dense(1, name="y")(h), name=f"{canonical_cell(cell)}_regressor")


def make_step_functions(model, jit_compile: bool, learning_rate: float = 1e-3):
    """Compiled ``forward(x)`` and ``train_step(x, y) -> loss`` (MSE, Adam) for `model`.

    `model` is any Keras model or layer (`kerasrnn bench layers` times bare layers with it).
    """
    import keras  # lazy: Keras/TensorFlow load in seconds; imported only when measuring
    import tensorflow as tf  # lazy: TensorFlow loads in seconds; imported only when measuring

    optimizer = keras.optimizers.Adam(learning_rate)
    optimizer.build(model.trainable_variables)

    @tf.function(jit_compile=jit_compile, reduce_retracing=True)
    def forward(x):
        return model(x, training=False)

    @tf.function(jit_compile=jit_compile, reduce_retracing=True)
    def train_step(x, y):
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(tf.square(model(x, training=True) - y))
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply(grads, model.trainable_variables)
        return loss

    return forward, train_step


def _timed(fn, *args) -> float:
    start = time.perf_counter()
    out = fn(*args)
    np.asarray(out)  # wait for the result
    return (time.perf_counter() - start) * 1000.0


#: Execution settings for timing, the same for every cell: name -> (jit_compile, fused).
SETTINGS = {"xla_fused": (True, True), "keras_loop": (False, False)}


def time_cells(cells, *, T: int = 100, input_dim: int = 32, units: int = 128,
               batch_size: int = 64, reps: int = 10, warmup: int = 2, seed: int = 0,
               setting: str = "xla_fused") -> dict:
    """Median forward and training-step time per batch for each cell, interleaved.

    Every cell runs in the same `setting` (a key of `SETTINGS`): ``"xla_fused"`` (XLA and
    the fused BPTT path) or ``"keras_loop"`` (Keras' loop, no XLA).

    Args:
        cells: cell names (``"simple_rnn"``/``"rnn"``, ``"lstm"``, ``"gru"``).
        T: sequence length (default 100).
        input_dim: input size d (default 32).
        units: hidden size u, equal for all cells (default 128).
        batch_size: default 64.
        reps: timed repetitions per cell (default 10; medians reported).
        warmup: untimed calls per function after compiling (default 2).
        seed: seed for weights and data (default 0).
        setting: default ``"xla_fused"``.

    Returns:
        ``{cell: {"forward_ms", "train_ms", "jit_compile", "fused", "path", "forward_all_ms",
        "train_all_ms"}}`` (``path``: the loop the training step ran, from `PathRecord`).
    """
    import keras  # lazy: Keras/TensorFlow load in seconds; imported only when measuring
    import tensorflow as tf  # lazy: TensorFlow loads in seconds; imported only when measuring

    jit, fused = SETTINGS[setting]
    keras.utils.set_random_seed(seed)
    rng = np.random.default_rng(seed)
    x = tf.constant(rng.standard_normal((batch_size, T, input_dim)).astype(np.float32))
    y = tf.constant(rng.standard_normal((batch_size, 1)).astype(np.float32))
    funcs, paths = {}, {}
    for cell in map(canonical_cell, cells):
        model = build_regressor(cell, T, input_dim, units, fused=fused)
        forward, train_step = make_step_functions(model, jit)
        np.asarray(train_step(x, y))
        paths[cell] = model.get_layer("rnn_0").path_record.last
        for _ in range(1 + warmup):
            np.asarray(forward(x))
            np.asarray(train_step(x, y))
        funcs[cell] = (forward, train_step, jit)
    times = {cell: {"forward": [], "train": []} for cell in funcs}
    for _ in range(reps):
        for cell, (forward, train_step, _) in funcs.items():
            times[cell]["forward"].append(_timed(forward, x))
            times[cell]["train"].append(_timed(train_step, x, y))
    return {
        cell: {
            "forward_ms": statistics.median(times[cell]["forward"]),
            "train_ms": statistics.median(times[cell]["train"]),
            "jit_compile": funcs[cell][2],
            "fused": fused,
            "path": paths[cell],
            "forward_all_ms": [round(t, 3) for t in times[cell]["forward"]],
            "train_all_ms": [round(t, 3) for t in times[cell]["train"]],
        }
        for cell in funcs
    }


# ----------------------------------------------------------------------------- memory


def peak_rss_mb() -> float:
    """This process's peak resident set size in MiB (VmHWM, else getrusage)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024.0 * 1024.0) if sys.platform == "darwin" else peak / 1024.0


def _memory_child(cell: str, T: int, input_dim: int, units: int, batch_sizes, steps: int = 3,
                  setting: str = "xla_fused") -> dict:
    """Run in a fresh process: peak RSS after training at each batch size, in order."""
    import keras  # lazy: heavy, and this runs in a child process
    import tensorflow as tf  # lazy: TensorFlow loads in seconds; imported only when measuring

    keras.utils.set_random_seed(0)
    jit, fused = SETTINGS[setting]
    _, train_step = make_step_functions(build_regressor(cell, T, input_dim, units, fused=fused), jit)
    peaks = []
    for b in batch_sizes:
        x = tf.random.normal((b, T, input_dim), seed=1)
        y = tf.zeros((b, 1))
        for _ in range(steps):
            np.asarray(train_step(x, y))
        peaks.append(peak_rss_mb())
    return {"cell": cell, "batch_sizes": list(batch_sizes), "peak_rss_mb": peaks, "jit_compile": jit}


def peak_memory(cells, *, T: int = 100, input_dim: int = 32, units: int = 128,
                batch_size: int = 64, small_batch: int = 4, timeout: float = 300.0) -> dict:
    """Batch-dependent peak memory of a training step, one fresh subprocess per cell.

    Returns:
        ``{cell: {"peak_delta_mb", "peak_rss_mb": [small, large], "batch_sizes", "jit_compile"}}``
        where ``peak_delta_mb`` = peak RSS at `batch_size` minus peak RSS at `small_batch`.
    """
    out = {}
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="")
    for cell in map(canonical_cell, cells):
        args = [cell, T, input_dim, units, [small_batch, batch_size]]
        code = ("import json, sys; from kerasrnn.claims.measure import _memory_child; "
                f"print('RESULT ' + json.dumps(_memory_child(*{args!r})))")
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                              env=env, timeout=timeout)
        lines = [l for l in proc.stdout.splitlines() if l.startswith("RESULT ")]
        if proc.returncode != 0 or not lines:
            raise RuntimeError(f"memory subprocess for {cell} failed (rc {proc.returncode}): "
                               f"{proc.stderr.strip().splitlines()[-1:]}")
        res = json.loads(lines[-1][len("RESULT "):])
        res["peak_delta_mb"] = res["peak_rss_mb"][1] - res["peak_rss_mb"][0]
        out[cell] = res
    return out


# ----------------------------------------------------------------------------- gradients


def gradient_norm_profile(rnn_layer, inputs, seed: int = 0) -> np.ndarray:
    """``‖∂h_T/∂x_t‖`` by distance ``d = T-1-t`` (index d), RMS over the batch.

    Args:
        rnn_layer: a built recurrent layer; if it returns sequences the last step is used.
        inputs: float array ``(B, T, d)`` fed to the layer.
        seed: seed of the Gaussian probe vectors (default 0).

    Returns:
        float64 array of length T: entry d is the gradient norm w.r.t. ``x_{T-1-d}``.

    >>> import kerasrnn.layers as L  # doctest: +SKIP
    >>> layer = L.SimpleRNN(8); _ = layer(np.zeros((1, 5, 2), "float32"))  # doctest: +SKIP
    >>> gradient_norm_profile(layer, np.ones((4, 5, 2), "float32")).shape  # doctest: +SKIP
    (5,)
    """
    import tensorflow as tf  # lazy: TensorFlow loads in seconds; imported only when measuring

    x = tf.constant(np.asarray(inputs, np.float32))

    @tf.function
    def grads(x, probe):
        with tf.GradientTape() as tape:
            tape.watch(x)
            out = rnn_layer(x, training=False)
            if isinstance(out, (list, tuple)):
                out = out[0]
            if len(out.shape) == 3:
                out = out[:, -1]
            total = tf.reduce_sum(out * probe)
        return tape.gradient(total, x)

    first = rnn_layer(x[:1], training=False)
    units = int((first[0] if isinstance(first, (list, tuple)) else first).shape[-1])
    rng = np.random.default_rng(seed)
    probe = tf.constant(rng.standard_normal((x.shape[0], units)).astype(np.float32))
    g = grads(x, probe).numpy().astype(np.float64)  # (B, T, d)
    per_step = np.sqrt(np.mean(np.sum(g**2, axis=-1), axis=0))  # RMS over batch, (T,)
    return per_step[::-1].copy()


def gradient_profiles_at_init(cells, *, T: int = 100, input_dim: int = 2, units: int = 128,
                              batch_size: int = 32, seed: int = 0) -> dict:
    """`gradient_norm_profile` of freshly initialised layers (Keras default initialisers).

    Inputs are standard-normal; every cell gets the same inputs and seed.

    Returns:
        ``{cell: list of T floats}`` (index = distance).
    """
    import keras  # lazy: Keras/TensorFlow load in seconds; imported only when measuring

    from kerasrnn.layers import get_layer_class  # lazy: imports Keras

    x = np.random.default_rng(seed).standard_normal((batch_size, T, input_dim)).astype(np.float32)
    out = {}
    for cell in map(canonical_cell, cells):
        keras.utils.set_random_seed(seed)
        layer = get_layer_class(cell)(units)
        layer(x[:1])
        out[cell] = gradient_norm_profile(layer, x, seed=seed).tolist()
    return out
