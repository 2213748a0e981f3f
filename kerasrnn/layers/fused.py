"""The fast path: whole-sequence LSTM/GRU/SimpleRNN loops with hand-written BPTT, compiled with XLA.

This is the one TensorFlow-specific module under `kerasrnn.layers`: TensorFlow is
imported only when Keras runs on the TensorFlow backend (on the other backends the
cells never call it and run Keras' loop). Each ``*_sequence`` function runs the
whole sequence in a `tf.function` compiled with XLA **whatever the caller's
setting**: a model compiled with Keras' default ``jit_compile="auto"`` (which turns
XLA off on CPU-only machines) still gets XLA's recurrent loop, and inside a model
compiled with XLA the loop is simply part of the model's XLA program.

Measured choices (CPU, TF 2.21; numbers in the README's benchmarks):

* **Feature-major loop.** Inside the loop the state is kept transposed, ``(H, B)``,
  and an LSTM or SimpleRNN step is one GEMM ``[W; U]ᵀ · [x_t; h_{t-1}]`` of shape
  ``(G·H, I+H) × (I+H, B)``: XLA's CPU dot is faster with the long gate dimension as
  rows, and the gate blocks become contiguous row blocks that cost nothing to split
  or concatenate.
* **Hand-written BPTT.** Autodiff through a step loop does four small matmuls per
  step on the way back and accumulates dW and dU step by step. Here, as in cuDNN and
  PyTorch, the backward loop computes only the gate derivatives ``dz_t`` and
  ``dh_{t-1} = U·dz_t``; the weight gradients are formed after the loop with one
  large GEMM each: ``dW = Xᵀ·DZ``, ``dU = H_{t-1}ᵀ·DZ``, ``db = Σ_t DZ``.
  ``dX = DZ·Wᵀ`` is computed outside the XLA program, so TensorFlow prunes it when
  nothing asks for the input's gradient (a first layer).
* **Two loops per batch.** An XLA loop of small GEMMs uses about one core, but
  TensorFlow's graph executor runs independent XLA calls at the same time: where
  that holds (`batch_parts`), `_fused` runs the two halves of the batch as two
  loops (forward and backward) and concatenates them; inference 1.2x (LSTM, GRU)
  to 1.6x (SimpleRNN) faster, training 1.2-1.6x (B64 T100 128->256, 2 cores).
* **Our own tanh and sigmoid** (LSTM, GRU; `RATIONAL_TANH`): a rational tanh written out
  in plain arithmetic, and sigmoid as ``½·tanh(z/2) + ½``, within 5e-7 of TensorFlow's;
  user path, two loops: LSTM training and inference ~1.14x faster, GRU inference 1.14x.
* **Inference stores nothing.** With ``training=False`` the forward keeps nothing for
  a backward pass (and no per-step outputs without ``sequences``); should a gradient
  still be asked for (gradients in inference mode), the backward recomputes the
  forward with its stores first.

Every function takes and returns **batch-major** tensors: ``x`` is ``(B, T, I)``,
the outputs ``(B, T, H)`` in processing order (time reversed for
``go_backwards=True``, as Keras' loop returns them), states ``(B, H)``. Weight
layouts and gate orders are Keras' (LSTM i, f, c̃, o; GRU z, r, h̃). Activations are
fixed (sigmoid/tanh; SimpleRNN tanh, relu or linear): each cell's ``fused_blocker``
checks, by function identity, that its activations are Keras' own, otherwise the
layer runs Keras' loop with the user's functions. Outputs and gradients equal the
built-in layers' to float32 round-off (the tests check 1e-5).
"""

from __future__ import annotations

import functools
import os

import keras

from kerasrnn.layers.compat import load_private

if keras.backend.backend() == "tensorflow":
    import tensorflow as tf
else:  # pragma: no cover - the cells do not call this module on other backends
    tf = None

__all__ = ["lstm_sequence", "gru_sequence", "simple_rnn_sequence", "batch_parts", "in_xla_context", "JIT_COMPILE", "BATCH_PARTS",
           "MIN_SPLIT_BATCH", "SIMPLE_RNN_ACTIVATIONS"]

#: Compile the loops with XLA. False runs the very same loops as plain TensorFlow
#: graphs (slower on CPU); meant for debugging and for measuring what XLA brings.
JIT_COMPILE = True

#: Run a batch of at least `MIN_SPLIT_BATCH` sequences as this many independent loops (in
#: inference and training) where they can run at the same time (see `batch_parts`). On
#: 2 cores, B64 T100 128->256, Sequential + compile defaults: inference 1.2x (LSTM, GRU)
#: to 1.6x (SimpleRNN) faster, training 1.2x (LSTM) to 1.6x (GRU); 1 turns it off.
BATCH_PARTS = 2
MIN_SPLIT_BATCH = 16

#: SimpleRNN activations the fused loop implements.
SIMPLE_RNN_ACTIVATIONS = ("tanh", "relu", "linear")


#: LSTM and GRU evaluate tanh as a rational function written out in multiplies, adds and
#: one divide (`_tanh`), and sigmoid as ``½·tanh(z/2) + ½``, instead of XLA's own
#: ``tanh``/``logistic``; float32 only, within 5e-7 of them. Measured (2 cores, B64 T100
#: 128->256, medians of 20-25 interleaved rounds): through the user path (Sequential +
#: compile defaults, two half-batch loops) LSTM training 139.4 -> 121.6 ms and inference
#: 45.3 -> 39.6 ms, GRU inference 35.8 -> 31.5 ms, GRU training unchanged (109.2 ->
#: 108.1 ms). With the intra-op pool at one thread the gain shrinks to 2-5%, which suggests
#: it lies in how XLA runs its transcendental kernels beside a concurrent loop rather than
#: in the arithmetic. SimpleRNN keeps ``tf.tanh`` (slower with `_tanh`, see `_ACTIVATION`).
#: False: ``tf.tanh``/``tf.sigmoid`` everywhere.
RATIONAL_TANH = True

# Eigen's `generic_fast_tanh_float` (a [13/6] rational fit on [-7.99, 7.99], beyond which tanh
# rounds to ±1 in float32): numerator coefficients of z, z³, …, z¹³ and denominator of 1, z², …, z⁶.
_TANH_CLAMP = 7.99881172180175781
_TANH_P = (4.89352455891786e-03, 6.37261928875436e-04, 1.48572235717979e-05, 5.12229709037114e-08,
           -8.60467152213735e-11, 2.00018790482477e-13, -2.76076847742355e-16)
_TANH_Q = (4.89352518554385e-03, 2.26843463243900e-03, 1.18534705686654e-04, 1.19825839466702e-06)


def _polynomial(x, coefficients):
    """``c_0 + c_1·x + c_2·x² + …`` by Horner's rule."""
    out = coefficients[-1]
    for c in coefficients[-2::-1]:
        out = out * x + c
    return out


def _tanh(z):
    """tanh(z) = p(z)/q(z) for |z| <= 7.99 (clamped beyond), within 5e-7 of ``tf.tanh``
    (measured worst 4.2e-7, near saturation; below 3e-7 for |z| < 4).

    float32 only: in float16/bfloat16 (mixed precision) the small coefficients underflow, so
    other dtypes get ``tf.tanh``.
    """
    if not RATIONAL_TANH or z.dtype != tf.float32:
        return tf.tanh(z)
    z = tf.clip_by_value(z, -_TANH_CLAMP, _TANH_CLAMP)
    z2 = z * z
    return z * _polynomial(z2, _TANH_P) / _polynomial(z2, _TANH_Q)


def _sigmoid(z):
    """σ(z) = ½·tanh(z/2) + ½ (with `_tanh`), or ``tf.sigmoid`` when `RATIONAL_TANH` is off."""
    if not RATIONAL_TANH or z.dtype != tf.float32:
        return tf.sigmoid(z)
    return 0.5 * _tanh(0.5 * z) + 0.5


# --------------------------------------------------------------------------
# plumbing shared by the three recurrences
# --------------------------------------------------------------------------
@functools.lru_cache(maxsize=None)
def _compiled(fn, **static):
    """`fn` with its static keyword arguments bound, as one cached (XLA-)compiled tf.function."""
    # One trace per input signature (XLA compiles per shape anyway); shapes are never
    # relaxed, so the feature sizes the loops slice by stay static.
    return tf.function(functools.partial(fn, **static), jit_compile=JIT_COMPILE, autograph=False)


def _steps(x):
    """Time steps of batch-major `x`: the static length when known, else a scalar tensor."""
    return x.shape[1] if x.shape[1] is not None else tf.shape(x)[1]


def _arrays(steps, dtype, n):
    return [tf.TensorArray(dtype, size=steps) for _ in range(n)]


def _loop(body, loop_vars, steps):
    """``for t in range(steps): loop_vars = body(t, *loop_vars)``; TensorArrays allowed."""
    result = tf.while_loop(
        lambda t, *_: t < steps,
        lambda t, *v: [t + 1, *body(t, *v)],
        [tf.constant(0), *loop_vars],
        maximum_iterations=steps,
    )
    return result[1:]


def _reverse_loop(body, loop_vars, steps):
    """``for t in reversed(range(steps)): loop_vars = body(t, *loop_vars)``."""
    return _loop(lambda k, *v: body(steps - 1 - k, *v), loop_vars, steps)


def _feature_major_inputs(x, go_backwards):
    """Batch-major `x` (B, T, I) -> (T, I, B) in processing order."""
    xt = tf.transpose(x, (1, 2, 0))
    return tf.reverse(xt, [0]) if go_backwards else xt


def _flat(t):
    """(T, B, F) -> (T·B, F)."""
    return tf.reshape(t, (-1, t.shape[-1] if t.shape[-1] is not None else tf.shape(t)[-1]))


def _inputs_flat(x, go_backwards):
    """Batch-major `x` -> (T·B, I), time-major in processing order (for ``dW = Xᵀ·DZ``)."""
    xt = tf.transpose(x, (1, 0, 2))
    return _flat(tf.reverse(xt, [0]) if go_backwards else xt)


def _previous_flat(hs, h0):
    """(T·B, H): the state each step started from, ``[h0, h_0, ..., h_{T-2}]``."""
    return _flat(tf.concat([h0[None], hs[:-1]], 0))


def _previous(stacked, t, first):
    """``stacked[t - 1]``, or `first` at ``t = 0``."""
    return tf.where(t > 0, stacked[tf.maximum(t - 1, 0)], first)


def _outputs(sequence_array):
    """The stacked (T, B, H) per-step outputs -> batch-major (B, T, H), and the stack itself."""
    hs = sequence_array.stack()
    return tf.transpose(hs, (1, 0, 2)), hs


def _forward_result(states, arrays, sequences, store):
    """What a forward returns: ``[outputs (B, T, H)]`` when `sequences`, the final states
    (feature-major inside the loop, batch-major here), then with `store` the stacked
    (T, B, H) outputs and the other stored arrays, stacked (`store` implies `sequences`)."""
    result = [tf.transpose(s) for s in states]
    if sequences:
        outputs, hs = _outputs(arrays[0])
        result = [outputs, *result]
    if store:
        result += [hs, *[a.stack() for a in arrays[1:]]]
    return result


def _record(arrays, t, h, sequences, stored):
    """Write step t into the forward's arrays: the batch-major output (when `sequences`), then each
    of `stored` (the tensors the backward reads; empty when not storing). Returns the arrays."""
    arrays = list(arrays)
    if sequences:
        arrays[0] = arrays[0].write(t, tf.transpose(h))
    for k, value in enumerate(stored, start=1):
        arrays[k] = arrays[k].write(t, value)
    return arrays


def _weight_gradients(dz_flat, x, h0, hs, *, go_backwards, **_):
    """``(dW, dU, db) = (Xᵀ·DZ, H_{t-1}ᵀ·DZ, Σ DZ)`` of LSTM and SimpleRNN, after the backward loop.

    Like every cell's weight gradients, plain TensorFlow ops outside the compiled
    backward loop (see `_fused_loop`). dW and dU are one GEMM, ``[X, H_{t-1}]ᵀ·DZ``,
    split by rows: for the LSTM's ``(3200, 128 + 256)ᵀ × (3200, 1024)`` on 2 cores
    14.3 ms against 18.2 ms as two GEMMs (176 vs 138 GFLOP/s), the concatenation included.
    """
    inputs = _inputs_flat(x, go_backwards)
    both = tf.matmul(tf.concat([inputs, _previous_flat(hs, h0)], 1), dz_flat, transpose_a=True)
    n_inputs = tf.shape(inputs)[1]
    return both[:n_inputs], both[n_inputs:], tf.reduce_sum(dz_flat, 0)


def _input_gradient(dz_flat, kernel, x, go_backwards):
    """``dX = DZ·Wᵀ`` in `x`'s batch-major layout (plain TF ops: pruned when unused)."""
    batch, steps = tf.shape(x)[0], _steps(x)
    dx = tf.reshape(tf.matmul(dz_flat, kernel, transpose_b=True), (steps, batch, tf.shape(x)[-1]))
    if go_backwards:
        dx = tf.reverse(dx, [0])
    return tf.transpose(dx, (1, 0, 2))


def batch_parts(x) -> int:
    """How many independent loops `_fused` runs the batch of `x` as: `BATCH_PARTS` or 1.

    Split only where the parts can run at the same time: in a TensorFlow graph
    (eagerly, ops run one after another) that is not itself compiled with XLA
    (inside one XLA program the loops run one after the other: measured slower),
    with a static batch of at least `MIN_SPLIT_BATCH` that `BATCH_PARTS` divides, at least two CPU cores
    for this process and TensorFlow's inter-op pool not limited to one thread.
    """
    batch = x.shape[0]
    if BATCH_PARTS < 2 or tf.executing_eagerly() or batch is None or batch < MIN_SPLIT_BATCH or batch % BATCH_PARTS:
        return 1
    if _usable_cores() < 2 or tf.config.threading.get_inter_op_parallelism_threads() == 1:
        return 1
    return 1 if in_xla_context() else BATCH_PARTS


def in_xla_context() -> bool:
    """Whether the TensorFlow graph now being traced is compiled with XLA as a whole.

    True inside ``tf.function(jit_compile=True)`` (and the functions it calls),
    False in a plain graph function and eagerly. TensorFlow has no public API
    for this: the private function comes through `compat.load_private`.

    >>> bool(tf.function(lambda: tf.constant(in_xla_context()), jit_compile=True)())
    True
    """
    return bool(load_private("GraphOrParentsInXlaContext")(tf.compat.v1.get_default_graph()))


def _usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def _fused(forward_fn, backward_fn, weights_fn, args, n_states, training, sequences, go_backwards, parts, **static):
    """`_fused_loop` over the batch as `parts` independent loops (the layers pass `batch_parts`).

    Batch rows do not interact, so the parts' outputs and final states are
    concatenated back; the weights' gradients (each part has its own backward
    loop) are summed by autodiff, since every part reads the same weights.
    ``args[0]`` and the last `n_states` args are batch-major, the rest weights.
    The batch must divide into `parts` (`batch_parts` sees to it).
    """
    args = [tf.convert_to_tensor(a) for a in args]
    if parts == 1:
        return _fused_loop(forward_fn, backward_fn, weights_fn, args, n_states, training, sequences, go_backwards,
                           **static)
    weights, states = args[1:len(args) - n_states], args[len(args) - n_states:]
    xs = tf.split(args[0], parts, 0)
    state_parts = [tf.split(s, parts, 0) for s in states]
    results = [
        _fused_loop(forward_fn, backward_fn, weights_fn, [xs[p], *weights, *[s[p] for s in state_parts]],
                    n_states, training, sequences, go_backwards, **static)
        for p in range(parts)
    ]
    return [None if same[0] is None else tf.concat(list(same), 0) for same in zip(*results)]


def _fused_loop(forward_fn, backward_fn, weights_fn, args, n_states, training, sequences, go_backwards, **static):
    """One recurrence with hand-written gradient; returns ``(outputs or None, *final states)``.

    ``forward_fn(*args, go_backwards, sequences, store, **static)`` returns
    ``[outputs (B, T, H)]`` (when `sequences`), the `n_states` final states and, with
    `store`, the tensors the backward reads, the stacked outputs ``hs (T, B, H)``
    first. ``backward_fn(*args, *stores, d_outputs, *d_states, go_backwards, **static)``
    runs the reverse loop and returns ``(DZ (T·B, G·H), *extras, *gradients of the
    initial states)``. ``weights_fn(DZ, *extras, x, h0, hs, go_backwards, **static)``
    returns the gradients of the weights (``args[1:-n_states]``); ``args[0]`` is the
    input, ``args[1]`` the input kernel and ``args[-n_states]`` the initial output state.

    The forward and backward loops are compiled with XLA; the weight gradients
    (``Xᵀ·DZ``, ``H_{t-1}ᵀ·DZ``, K = T·B) and ``dX = DZ·Wᵀ`` are plain TensorFlow
    GEMMs after them, which TensorFlow runs on its own multi-threaded kernels and
    can overlap with the other half-batch's loop. Measured against computing the
    weight gradients inside the compiled backward (commit 8dd5c64), B64 T100
    128->256, Sequential + compile defaults, medians of 15-20 interleaved rounds,
    2 cores: training GRU 104.9 -> 98.6, 98.1 -> 92.3 and 106.1 -> 96.1 ms,
    SimpleRNN 49.1 -> 42.1, 41.0 -> 37.0 and 39.8 -> 35.1 ms, LSTM 119.0 -> 116.1,
    109.5 -> 106.9, 116.5 -> 113.1 and 108.3 -> 108.2 ms; the gradients agree within
    5e-6 (the GEMM libraries round differently). Joining dW and dU into one GEMM
    (`_weight_gradients`) then took LSTM 110.4 -> 105.4, 104.7 -> 101.8 and 114.7 -> 106.4
    ms, SimpleRNN 36.2 -> 30.3, 37.6 -> 31.5 and 39.8 -> 35.6 ms (against commit 3c34580).
    """
    store_forward = _compiled(forward_fn, go_backwards=go_backwards, sequences=True, store=True, **static)
    forward = store_forward if training else _compiled(
        forward_fn, go_backwards=go_backwards, sequences=sequences, store=False, **static)
    backward = _compiled(backward_fn, go_backwards=go_backwards, **static)
    with_sequence = sequences or training
    n_outputs = n_states + int(with_sequence)

    @tf.custom_gradient
    def run(*tensors):
        # The compiled functions are opaque to autodiff: this function is their gradient,
        # so none must be traced through them (their TensorArrays cannot leave XLA).
        tensors = [tf.stop_gradient(t) for t in tensors]
        result = forward(*tensors)
        outputs, stores = list(result[:n_outputs]), list(result[n_outputs:])

        def grad(*upstream, **_):
            x = tensors[0]
            upstream = list(upstream)
            refs = list(outputs)
            if not with_sequence:  # nothing can flow into a sequence the caller never got
                zeros = tf.zeros((tf.shape(x)[0], _steps(x), outputs[0].shape[-1]), x.dtype)
                upstream, refs = [zeros, *upstream], [zeros, *refs]
            upstream = [tf.stop_gradient(tf.zeros_like(r) if g is None else g) for g, r in zip(upstream, refs)]
            saved = stores if training else list(store_forward(*tensors)[n_states + 1:])
            dz_flat, *rest = backward(*tensors, *saved, *upstream)
            extras, d_states = rest[: len(rest) - n_states], rest[len(rest) - n_states:]
            weight_grads = weights_fn(dz_flat, *extras, x, tensors[len(tensors) - n_states], saved[0],
                                      go_backwards=go_backwards, **static)
            return [_input_gradient(dz_flat, tensors[1], x, go_backwards), *weight_grads, *d_states]

        return outputs, grad

    outputs = run(*[tf.convert_to_tensor(a) for a in args])
    return outputs if with_sequence else [None, *outputs]


# --------------------------------------------------------------------------
# LSTM
# --------------------------------------------------------------------------
def _lstm_forward(x, kernel, recurrent_kernel, bias, h0, c0, *, go_backwards, sequences, store):
    steps = _steps(x)
    xs = _feature_major_inputs(x, go_backwards)                      # (T, I, B)
    weights = tf.transpose(tf.concat([kernel, recurrent_kernel], 0))  # (4H, I+H)
    bias = bias[:, None]

    def body(t, h, c, *arrays):
        z = tf.matmul(weights, tf.concat([xs[t], h], 0)) + bias
        i, f, g, o = tf.split(z, 4, 0)
        i, f, g, o = _sigmoid(i), _sigmoid(f), _tanh(g), _sigmoid(o)
        c = f * c + i * g
        h = o * _tanh(c)
        return [h, c, *_record(arrays, t, h, sequences, [tf.concat([i, f, g, o], 0), c] if store else [])]

    n_arrays = 3 if store else int(sequences)
    h, c, *arrays = _loop(body, [tf.transpose(h0), tf.transpose(c0), *_arrays(steps, x.dtype, n_arrays)], steps)
    return _forward_result([h, c], arrays, sequences, store)


def _lstm_backward(x, kernel, recurrent_kernel, bias, h0, c0, hs, gates, cs, d_outputs, d_h, d_c,
                   *, go_backwards):
    steps = _steps(x)
    d_hs = tf.transpose(d_outputs, (1, 2, 0))  # (T, H, B)
    c_first = tf.transpose(c0)

    def body(t, dh, dc, array):
        i, f, g, o = tf.split(gates[t], 4, 0)
        c_prev = _previous(cs, t, c_first)
        tanh_c = _tanh(cs[t])
        dh = dh + d_hs[t]
        dc = dc + dh * o * (1.0 - tanh_c * tanh_c)
        dz = tf.concat(
            [dc * g * i * (1.0 - i), dc * c_prev * f * (1.0 - f), dc * i * (1.0 - g * g),
             dh * tanh_c * o * (1.0 - o)],
            0,
        )
        return [tf.matmul(recurrent_kernel, dz), dc * f, array.write(t, tf.transpose(dz))]

    dh0, dc0, array = _reverse_loop(body, [tf.transpose(d_h), tf.transpose(d_c), *_arrays(steps, x.dtype, 1)],
                                    steps)
    return _flat(array.stack()), tf.transpose(dh0), tf.transpose(dc0)


def lstm_sequence(x, kernel, recurrent_kernel, bias, h0, c0, *, training=True, sequences=True,
                  go_backwards=False, parts=1):
    """LSTM over batch-major `x` (B, T, I) -> ``(outputs (B, T, H) or None, h_T, c_T)``.

    Weight layout and gate order (i, f, c̃, o) of `keras.layers.LSTM`, sigmoid/tanh.
    Differentiable w.r.t. every argument. `training` keeps what the backward pass reads;
    ``sequences=False`` (inference only) skips the per-step outputs.

    >>> import numpy as np
    >>> x = np.zeros((2, 5, 3), "float32"); h = np.zeros((2, 4), "float32")
    >>> hs, h_t, c_t = lstm_sequence(x, np.ones((3, 16), "float32"),
    ...     np.ones((4, 16), "float32"), np.zeros(16, "float32"), h, h)
    >>> tuple(hs.shape)
    (2, 5, 4)
    """
    return _fused(_lstm_forward, _lstm_backward, _weight_gradients, (x, kernel, recurrent_kernel, bias, h0, c0), 2,
                  training, sequences, go_backwards, parts)


# --------------------------------------------------------------------------
# GRU
# --------------------------------------------------------------------------
def _gru_forward(x, kernel, recurrent_kernel, input_bias, recurrent_bias, h0, *, go_backwards, sequences,
                 store, reset_after):
    steps = _steps(x)
    units = recurrent_kernel.shape[0]
    xs = _feature_major_inputs(x, go_backwards)
    w = tf.transpose(kernel)             # (3H, I)
    u = tf.transpose(recurrent_kernel)   # (3H, H)
    input_bias, recurrent_bias = input_bias[:, None], recurrent_bias[:, None]

    def body(t, h, *arrays):
        x_z, x_r, x_h = tf.split(tf.matmul(w, xs[t]) + input_bias, 3, 0)
        if reset_after:
            r_z, r_r, r_h = tf.split(tf.matmul(u, h) + recurrent_bias, 3, 0)
            z, r = _sigmoid(x_z + r_z), _sigmoid(x_r + r_r)
            n = _tanh(x_h + r * r_h)
        else:
            r_z, r_r = tf.split(tf.matmul(u[: 2 * units], h), 2, 0)
            z, r = _sigmoid(x_z + r_z), _sigmoid(x_r + r_r)
            n = _tanh(x_h + tf.matmul(u[2 * units:], r * h))
        h_new = z * h + (1.0 - z) * n
        stored = [tf.concat([z, r, n, r_h] if reset_after else [z, r, n], 0)] if store else []
        return [h_new, *_record(arrays, t, h_new, sequences, stored)]

    n_arrays = 2 if store else int(sequences)
    h, *arrays = _loop(body, [tf.transpose(h0), *_arrays(steps, x.dtype, n_arrays)], steps)
    return _forward_result([h], arrays, sequences, store)


def _gru_backward(x, kernel, recurrent_kernel, input_bias, recurrent_bias, h0, hs, saved,
                  d_outputs, d_h, *, go_backwards, reset_after):
    steps = _steps(x)
    units = recurrent_kernel.shape[0]
    d_hs = tf.transpose(d_outputs, (1, 2, 0))
    u_zr, u_h = recurrent_kernel[:, : 2 * units], recurrent_kernel[:, 2 * units:]

    def body(t, dh, *arrays):
        if reset_after:
            z, r, n, r_h = tf.split(saved[t], 4, 0)
        else:
            z, r, n = tf.split(saved[t], 3, 0)
        hp = tf.transpose(_previous(hs, t, h0))  # the step's starting state, feature-major
        dh = dh + d_hs[t]
        d_n = dh * (1.0 - z) * (1.0 - n * n)
        d_z = dh * (hp - n) * z * (1.0 - z)
        dh_prev = dh * z
        if reset_after:
            d_r = d_n * r_h * r * (1.0 - r)
            d_nr = d_n * r
            dh_prev += tf.matmul(recurrent_kernel, tf.concat([d_z, d_r, d_nr], 0))
            extra = d_nr          # dU's candidate block pairs h_{t-1} with d_n ⊙ r
        else:
            d_rh = tf.matmul(u_h, d_n)
            d_r = d_rh * hp * r * (1.0 - r)
            dh_prev += d_rh * r + tf.matmul(u_zr, tf.concat([d_z, d_r], 0))
            extra = r * hp        # dU's candidate block pairs r ⊙ h_{t-1} with d_n
        gates_array, extra_array = arrays
        return [dh_prev, gates_array.write(t, tf.transpose(tf.concat([d_z, d_r, d_n], 0))),
                extra_array.write(t, tf.transpose(extra))]

    dh0, gates_array, extra_array = _reverse_loop(body, [tf.transpose(d_h), *_arrays(steps, x.dtype, 2)], steps)
    return _flat(gates_array.stack()), _flat(extra_array.stack()), tf.transpose(dh0)


def _gru_weight_gradients(d_gates, extra, x, h0, hs, *, go_backwards, reset_after):
    """``(dW, dU, d_input_bias, d_recurrent_bias)`` of a GRU: one GEMM per block, after the backward.

    `d_gates` is ``(T·B, 3H)`` = ``[d_z, d_r, d_n]``; `extra` is ``d_n ⊙ r``
    (``reset_after``, paired with ``h_{t-1}``) or ``r ⊙ h_{t-1}`` (paired with ``d_n``).
    """
    units = hs.shape[-1]
    d_zr, d_n = d_gates[:, : 2 * units], d_gates[:, 2 * units:]
    h_prev = _previous_flat(hs, h0)
    d_input_bias = tf.reduce_sum(d_gates, 0)
    if reset_after:
        d_recurrent = tf.concat([tf.matmul(h_prev, d_zr, transpose_a=True),
                                 tf.matmul(h_prev, extra, transpose_a=True)], 1)
        d_recurrent_bias = tf.concat([d_input_bias[: 2 * units], tf.reduce_sum(extra, 0)], 0)
    else:
        d_recurrent = tf.concat([tf.matmul(h_prev, d_zr, transpose_a=True),
                                 tf.matmul(extra, d_n, transpose_a=True)], 1)
        d_recurrent_bias = tf.zeros((3 * units,), d_gates.dtype)
    d_kernel = tf.matmul(_inputs_flat(x, go_backwards), d_gates, transpose_a=True)
    return d_kernel, d_recurrent, d_input_bias, d_recurrent_bias


def gru_sequence(x, kernel, recurrent_kernel, input_bias, recurrent_bias, h0, *, reset_after=True,
                 training=True, sequences=True, go_backwards=False, parts=1):
    """GRU over batch-major `x` (B, T, I) -> ``(outputs (B, T, H) or None, h_T)``.

    Layout and gate order (z, r, h̃) of `keras.layers.GRU`; sigmoid/tanh. With
    ``reset_after=False`` pass zeros as `recurrent_bias` (its gradient is then zero).
    """
    return _fused(_gru_forward, _gru_backward, _gru_weight_gradients,
                  (x, kernel, recurrent_kernel, input_bias, recurrent_bias, h0), 1,
                  training, sequences, go_backwards, parts, reset_after=bool(reset_after))


# --------------------------------------------------------------------------
# SimpleRNN
# --------------------------------------------------------------------------
# XLA's own tanh here: after the step's GEMM alone it is faster than `_tanh` (bare SimpleRNN B64 T100
# 128->256, 25 interleaved rounds: inference 12.0 vs 13.8 ms, training 42.1 vs 46.4 ms).
_ACTIVATION = {"tanh": lambda z: tf.tanh(z), "relu": lambda z: tf.nn.relu(z), "linear": lambda z: z}
_DERIVATIVE_FROM_OUTPUT = {
    "tanh": lambda h: 1.0 - h * h,
    "relu": lambda h: tf.cast(h > 0, h.dtype),
    "linear": lambda h: tf.ones_like(h),
}


def _simple_forward(x, kernel, recurrent_kernel, bias, h0, *, go_backwards, sequences, store, activation):
    steps = _steps(x)
    xs = _feature_major_inputs(x, go_backwards)
    weights = tf.transpose(tf.concat([kernel, recurrent_kernel], 0))  # (H, I+H)
    bias = bias[:, None]
    act = _ACTIVATION[activation]

    def body(t, h, *arrays):
        h = act(tf.matmul(weights, tf.concat([xs[t], h], 0)) + bias)
        return [h, *_record(arrays, t, h, sequences, [h] if store else [])]

    n_arrays = 2 if store else int(sequences)
    h, *arrays = _loop(body, [tf.transpose(h0), *_arrays(steps, x.dtype, n_arrays)], steps)
    return _forward_result([h], arrays, sequences, store)


def _simple_backward(x, kernel, recurrent_kernel, bias, h0, hs, hs_feature_major, d_outputs, d_h,
                     *, go_backwards, activation):
    steps = _steps(x)
    d_hs = tf.transpose(d_outputs, (1, 2, 0))
    derivative = _DERIVATIVE_FROM_OUTPUT[activation]

    def body(t, dh, array):
        da = (dh + d_hs[t]) * derivative(hs_feature_major[t])
        return [tf.matmul(recurrent_kernel, da), array.write(t, tf.transpose(da))]

    dh0, array = _reverse_loop(body, [tf.transpose(d_h), *_arrays(steps, x.dtype, 1)], steps)
    return _flat(array.stack()), tf.transpose(dh0)


def simple_rnn_sequence(x, kernel, recurrent_kernel, bias, h0, *, activation="tanh", training=True,
                        sequences=True, go_backwards=False, parts=1):
    """SimpleRNN ``h_t = act(x_t·W + h_{t-1}·U + b)`` over batch-major `x` -> ``(outputs or None, h_T)``.

    `activation` is ``"tanh"``, ``"relu"`` or ``"linear"``.
    """
    if activation not in SIMPLE_RNN_ACTIVATIONS:
        raise ValueError(f"activation must be one of {SIMPLE_RNN_ACTIVATIONS}, got {activation!r}")
    return _fused(_simple_forward, _simple_backward, _weight_gradients, (x, kernel, recurrent_kernel, bias, h0), 1,
                  training, sequences, go_backwards, parts, activation=activation)
