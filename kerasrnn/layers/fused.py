"""The fast path: whole-sequence LSTM/GRU/SimpleRNN with hand-written BPTT.

Autodiff through Keras' step loop does four small matmuls per step on the
way back (dx, dW, dh, dU) and accumulates dW and dU step by step. Here, as
in cuDNN and PyTorch, the backward loop computes only the gate derivatives
``dz_t`` and ``dh_{t-1} = dz_t · Uᵀ``; the weight and input gradients are
formed after the loop with one large GEMM each::

    dW = Xᵀ · DZ      dU = H_{t-1}ᵀ · DZ      db = Σ_t DZ      dX = DZ · Wᵀ

The forward loop is Keras' own step (``x_t·W + h·U``, measured faster on
CPU than hoisting ``X·W`` out of the loop) that also stores the gate
activations the backward loop needs.

Everything is `keras.ops` + `keras.ops.custom_gradient` + Keras' backend
`rnn` loop. This module depends on no kerasrnn layer: each cell class owns its
dispatch (``fused_blocker`` says why a configuration is not covered — masks,
dropout, non-default activations, LSTM projection, mixed precision, a backend
other than TensorFlow — and ``fused_sequence`` calls the function below), and
`kerasrnn.layers.base.RecurrentLayer` records which loop ran. Outputs and
gradients equal the built-in layers' to float32 round-off (tests check 1e-5).
"""

from __future__ import annotations

import keras
from keras import activations, ops

from kerasrnn.layers.compat import backend_rnn

__all__ = ["lstm_sequence", "gru_sequence", "simple_rnn_sequence", "activation_name", "FUSED_ACTIVATIONS"]


# --------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------
def _upstream(grads, n):
    """The n upstream gradients of a custom gradient, as a tuple (None allowed).

    TensorFlow passes one positional argument per output, JAX one tuple.
    """
    if len(grads) == 1 and isinstance(grads[0], (tuple, list)):
        grads = tuple(grads[0])
    if len(grads) != n:
        raise ValueError(f"expected {n} upstream gradients, got {len(grads)}")
    return grads


def _tensors(*args):
    """Read variables before the custom gradient, so it sees tensors only (autodiff reaches
    the variables through the reads)."""
    return [ops.copy(a) if isinstance(a, keras.Variable) else ops.convert_to_tensor(a) for a in args]


def _or_zeros(grad, like):
    return ops.zeros_like(like) if grad is None else grad


def _time_loop(step, inputs, initial_states, go_backwards=False):
    """Keras' backend loop over time-major `inputs` -> (stacked outputs, final states).

    Outputs are stacked in processing order (reversed when `go_backwards`).
    """
    first = inputs[0] if isinstance(inputs, (tuple, list)) else inputs
    _, outputs, states = backend_rnn(
        step,
        inputs,
        list(initial_states),
        go_backwards=go_backwards,
        time_major=True,
        return_all_outputs=True,
        input_length=first.shape[0],
    )
    return outputs, states


def _flat(t):
    """(T, B, F) -> (T*B, F)."""
    return ops.reshape(t, (-1, ops.shape(t)[-1]))


def _outer(a, b):
    """Σ_t a_tᵀ · b_t for time-major a (T, B, F) and b (T, B, G): one GEMM."""
    return ops.matmul(ops.transpose(_flat(a)), _flat(b))


def _shift(hs, h0):
    """[h0, h_0, ..., h_{T-2}]: the state each step started from."""
    return ops.concatenate([h0[None], hs[:-1]], axis=0)


def _input_and_weight_grads(dz, x, kernel, hs, h0):
    """``(dX, dW, dU, db)`` from the gate derivatives: one GEMM each, after the loop.

    ``dX = DZ·Wᵀ``, ``dW = Xᵀ·DZ``, ``dU = H_{t-1}ᵀ·DZ``, ``db = Σ_t DZ`` for a cell
    whose pre-activation is ``x_t·W + h_{t-1}·U + b`` (LSTM, SimpleRNN).
    """
    return (
        ops.matmul(dz, ops.transpose(kernel)),
        _outer(x, dz),
        _outer(_shift(hs, h0), dz),
        ops.sum(_flat(dz), axis=0),
    )


def _reverse_loop(step, inputs, initial_states):
    """Run `step` from t = T-1 down to 0; outputs back in time order."""
    outputs, states = _time_loop(step, inputs, initial_states, go_backwards=True)
    return ops.flip(outputs, axis=0) if not isinstance(outputs, (tuple, list)) else tuple(
        ops.flip(o, axis=0) for o in outputs
    ), states


# --------------------------------------------------------------------------
# LSTM
# --------------------------------------------------------------------------
def lstm_sequence(x, kernel, recurrent_kernel, bias, h0, c0):
    """LSTM over time-major `x` (T, B, I) -> ``(outputs (T, B, H), h_T, c_T)``.

    Weight layout and gate order (i, f, c̃, o) of `keras.layers.LSTM`,
    sigmoid/tanh activations. Differentiable w.r.t. every argument.

    >>> import numpy as np
    >>> x = np.zeros((5, 2, 3), "float32"); h = np.zeros((2, 4), "float32")
    >>> hs, h_t, c_t = lstm_sequence(x, np.ones((3, 16), "float32"),
    ...     np.ones((4, 16), "float32"), np.zeros(16, "float32"), h, h)
    >>> tuple(hs.shape)
    (5, 2, 4)
    """

    @ops.custom_gradient
    def fused(x, kernel, recurrent_kernel, bias, h0, c0):
        def step(x_t, states):
            h, c = states
            z = ops.matmul(x_t, kernel) + ops.matmul(h, recurrent_kernel) + bias
            i, f, g, o = ops.split(z, 4, axis=-1)
            i, f, g, o = ops.sigmoid(i), ops.sigmoid(f), ops.tanh(g), ops.sigmoid(o)
            c = f * c + i * g
            h = o * ops.tanh(c)
            return (h, c, ops.concatenate([i, f, g, o], axis=-1)), [h, c]

        (hs, cs, gates), (h_t, c_t) = _time_loop(step, x, [h0, c0])

        def grad(*upstream, **_):
            d_hs, d_h_t, d_c_t = _upstream(upstream, 3)
            recurrent_t = ops.transpose(recurrent_kernel)

            def back_step(inputs, states):
                d_out, c, c_prev, gate = inputs
                dh, dc = states
                i, f, g, o = ops.split(gate, 4, axis=-1)
                dh = dh + d_out
                tanh_c = ops.tanh(c)
                dc = dc + dh * o * (1.0 - tanh_c * tanh_c)
                dz = ops.concatenate(
                    [
                        dc * g * i * (1.0 - i),
                        dc * c_prev * f * (1.0 - f),
                        dc * i * (1.0 - g * g),
                        dh * tanh_c * o * (1.0 - o),
                    ],
                    axis=-1,
                )
                return dz, [ops.matmul(dz, recurrent_t), dc * f]

            dzs, (dh0, dc0) = _reverse_loop(
                back_step,
                (_or_zeros(d_hs, hs), cs, _shift(cs, c0), gates),
                [_or_zeros(d_h_t, h0), _or_zeros(d_c_t, c0)],
            )
            return (*_input_and_weight_grads(dzs, x, kernel, hs, h0), dh0, dc0)

        return (hs, h_t, c_t), grad

    return fused(*_tensors(x, kernel, recurrent_kernel, bias, h0, c0))


# --------------------------------------------------------------------------
# GRU
# --------------------------------------------------------------------------
def gru_sequence(x, kernel, recurrent_kernel, input_bias, recurrent_bias, h0, reset_after=True):
    """GRU over time-major `x` (T, B, I) -> ``(outputs (T, B, H), h_T)``.

    Layout and gate order (z, r, h̃) of `keras.layers.GRU`; sigmoid/tanh.
    With ``reset_after=False`` pass zeros as `recurrent_bias` (its gradient
    is then meaningless and ignored by the caller).
    """

    @ops.custom_gradient
    def fused(x, kernel, recurrent_kernel, input_bias, recurrent_bias, h0):
        units = recurrent_kernel.shape[0]
        u_zr, u_h = recurrent_kernel[:, : 2 * units], recurrent_kernel[:, 2 * units :]

        def step(x_t, states):
            (h,) = states
            x_z, x_r, x_h = ops.split(ops.matmul(x_t, kernel) + input_bias, 3, axis=-1)
            if reset_after:
                r_z, r_r, r_h = ops.split(ops.matmul(h, recurrent_kernel) + recurrent_bias, 3, axis=-1)
                z, r = ops.sigmoid(x_z + r_z), ops.sigmoid(x_r + r_r)
                n = ops.tanh(x_h + r * r_h)
                saved = ops.concatenate([z, r, n, r_h], axis=-1)
            else:
                r_z, r_r = ops.split(ops.matmul(h, u_zr), 2, axis=-1)
                z, r = ops.sigmoid(x_z + r_z), ops.sigmoid(x_r + r_r)
                n = ops.tanh(x_h + ops.matmul(r * h, u_h))
                saved = ops.concatenate([z, r, n], axis=-1)
            h_new = z * h + (1.0 - z) * n
            return (h_new, saved), [h_new]

        (hs, saved), (h_t,) = _time_loop(step, x, [h0])

        def grad(*upstream, **_):
            d_hs, d_h_t = _upstream(upstream, 2)
            h_prev = _shift(hs, h0)
            recurrent_t = ops.transpose(recurrent_kernel)
            u_zr_t, u_h_t = ops.transpose(u_zr), ops.transpose(u_h)

            def back_step(inputs, states):
                d_out, hp, s = inputs
                (dh,) = states
                dh = dh + d_out
                if reset_after:
                    z, r, n, r_h = ops.split(s, 4, axis=-1)
                else:
                    z, r, n = ops.split(s, 3, axis=-1)
                d_n = dh * (1.0 - z) * (1.0 - n * n)
                d_z = dh * (hp - n) * z * (1.0 - z)
                dh_prev = dh * z
                if reset_after:
                    d_r = d_n * r_h * r * (1.0 - r)
                    d_rec = ops.concatenate([d_z, d_r, d_n * r], axis=-1)
                    dh_prev = dh_prev + ops.matmul(d_rec, recurrent_t)
                else:
                    d_rh = ops.matmul(d_n, u_h_t)
                    d_r = d_rh * hp * r * (1.0 - r)
                    d_rec = ops.concatenate([d_z, d_r], axis=-1)
                    dh_prev = dh_prev + d_rh * r + ops.matmul(d_rec, u_zr_t)
                return (ops.concatenate([d_z, d_r, d_n], axis=-1), d_rec), [dh_prev]

            (d_gates, d_recs), (dh0,) = _reverse_loop(
                back_step, (_or_zeros(d_hs, hs), h_prev, saved), [_or_zeros(d_h_t, h0)]
            )
            if reset_after:
                d_recurrent = _outer(h_prev, d_recs)
                d_recurrent_bias = ops.sum(_flat(d_recs), axis=0)
            else:
                r = saved[..., units : 2 * units]
                d_recurrent = ops.concatenate(
                    [_outer(h_prev, d_recs), _outer(r * h_prev, d_gates[..., 2 * units :])], axis=-1
                )
                d_recurrent_bias = ops.zeros_like(recurrent_bias)
            return (
                ops.matmul(d_gates, ops.transpose(kernel)),
                _outer(x, d_gates),
                d_recurrent,
                ops.sum(_flat(d_gates), axis=0),
                d_recurrent_bias,
                dh0,
            )

        return (hs, h_t), grad

    return fused(*_tensors(x, kernel, recurrent_kernel, input_bias, recurrent_bias, h0))


# --------------------------------------------------------------------------
# SimpleRNN
# --------------------------------------------------------------------------
_DERIVATIVE_FROM_OUTPUT = {
    "tanh": lambda h: 1.0 - h * h,
    "relu": lambda h: ops.cast(h > 0, h.dtype),
    "linear": lambda h: ops.ones_like(h),
}

#: The activation *functions* the fused loops implement, by identity: a user
#: function that happens to be called ``tanh`` (e.g. a scaled tanh) is not one of
#: them, so it runs Keras' loop with the user's function.
FUSED_ACTIVATIONS = {
    activations.tanh: "tanh",
    activations.sigmoid: "sigmoid",
    activations.relu: "relu",
    activations.linear: "linear",
}


def activation_name(fn):
    """``"tanh"``/``"sigmoid"``/``"relu"``/``"linear"`` if `fn` *is* that Keras activation, else None.

    >>> activation_name(keras.activations.get("tanh")), activation_name(lambda x: x)
    ('tanh', None)
    """
    try:
        return FUSED_ACTIVATIONS.get(fn)
    except TypeError:  # unhashable callable
        return None


def simple_rnn_sequence(x, kernel, recurrent_kernel, bias, h0, activation="tanh"):
    """SimpleRNN ``h_t = act(x_t·W + h_{t-1}·U + b)`` over time-major `x` -> ``(outputs, h_T)``.

    `activation` is ``"tanh"``, ``"relu"`` or ``"linear"``.
    """
    act = activations.get(activation)
    derivative = _DERIVATIVE_FROM_OUTPUT[activation]

    @ops.custom_gradient
    def fused(x, kernel, recurrent_kernel, bias, h0):
        def step(x_t, states):
            (h,) = states
            h = act(ops.matmul(x_t, kernel) + bias + ops.matmul(h, recurrent_kernel))
            return h, [h]

        hs, (h_t,) = _time_loop(step, x, [h0])

        def grad(*upstream, **_):
            d_hs, d_h_t = _upstream(upstream, 2)
            recurrent_t = ops.transpose(recurrent_kernel)

            def back_step(inputs, states):
                d_out, h = inputs
                (dh,) = states
                da = (dh + d_out) * derivative(h)
                return da, [ops.matmul(da, recurrent_t)]

            das, (dh0,) = _reverse_loop(back_step, (_or_zeros(d_hs, hs), hs), [_or_zeros(d_h_t, h0)])
            return (*_input_and_weight_grads(das, x, kernel, hs, h0), dh0)

        return (hs, h_t), grad

    return fused(*_tensors(x, kernel, recurrent_kernel, bias, h0))
