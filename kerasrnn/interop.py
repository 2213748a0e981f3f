"""Weights from PyTorch: ``torch.nn.RNN/LSTM/GRU`` -> `RecurrentStack` (and back).

Layout conversion, per layer ``k`` and direction (suffix ``_reverse``):

- kernels: PyTorch stores ``weight_ih`` (G*H, in) and ``weight_hh`` (G*H, H);
  Keras stores the transposes, ``kernel`` (in, G*H) and ``recurrent_kernel``.
- RNN/LSTM: one bias in Keras, ``bias = bias_ih + bias_hh``; LSTM gate order
  i, f, g, o is the same in both; ``weight_hr`` (P, H) -> ``projection_kernel`` (H, P).
- GRU: PyTorch gate order r, z, n -> Keras z, r, h (blocks reordered); Keras'
  ``reset_after=True`` GRU keeps both biases in ``bias`` (2, 3H): row 0 from
  ``bias_ih``, row 1 from ``bias_hh`` (the reset gate multiplies
  ``W_hn h + b_hn`` in both). PyTorch's ``h = (1-z)*n + z*h`` is Keras'
  ``h = z*h + (1-z)*h~`` with the same z.

`torch` is imported lazily: this module imports without it.
"""

from __future__ import annotations

import warnings

import numpy as np

from kerasrnn.cells import CELL_SPECS
from kerasrnn.layers.stack import RecurrentStack

__all__ = ["from_torch", "to_torch", "torch_verify_cases", "compare_with_torch"]

# PyTorch's module.mode -> RecurrentStack mode, from the one cell registry.
_TORCH_MODES = {spec.torch_mode: spec.torch_mode.lower() for spec in CELL_SPECS.values()}


def _gru_blocks(array, axis):
    """Reorder GRU gate blocks r, z, n <-> z, r, n along `axis` (an involution)."""
    r, z, n = np.split(array, 3, axis=axis)
    return np.concatenate([z, r, n], axis=axis)


def _param(module, name):
    return getattr(module, name).detach().cpu().numpy().astype("float32")


def _grad(module, name):
    return getattr(module, name).grad.detach().cpu().numpy().astype("float32")


def _keras_layout(read, suffix, mode, bias, proj, gradients=False):
    """One direction of one layer of a torch RNN in Keras' layout.

    `read(name)` returns a torch parameter (or its gradient) as numpy. Returns
    ``{"kernel", "recurrent_kernel", ["bias"], ["projection_kernel"]}``. Keras'
    single RNN/LSTM bias is ``bias_ih + bias_hh`` for weights; its gradient
    equals either one's (``gradients=True``).
    """
    w_ih, w_hh = read("weight_ih" + suffix).T, read("weight_hh" + suffix).T
    if mode == "gru":
        w_ih, w_hh = _gru_blocks(w_ih, 1), _gru_blocks(w_hh, 1)
    out = {"kernel": w_ih, "recurrent_kernel": w_hh}
    if bias:
        b_ih, b_hh = read("bias_ih" + suffix), read("bias_hh" + suffix)
        if mode == "gru":
            out["bias"] = np.stack([_gru_blocks(b_ih, 0), _gru_blocks(b_hh, 0)])
        else:
            out["bias"] = b_ih if gradients else b_ih + b_hh
    if proj:
        out["projection_kernel"] = read("weight_hr" + suffix).T
    return out


def from_torch(module, **kwargs) -> RecurrentStack:
    """Build a `RecurrentStack` with the configuration and weights of a PyTorch RNN.

    Supports ``torch.nn.RNN`` (tanh and relu), ``nn.LSTM`` (incl.
    ``proj_size``) and ``nn.GRU`` with any ``num_layers``, ``bidirectional``,
    ``bias`` and ``dropout``. The returned stack always takes **batch-major**
    input ``(batch, time, features)``: for a module with ``batch_first=False``
    transpose the input (``x.transpose(0, 1)``) and the outputs; final states
    have PyTorch's layout either way.

    Args:
        module: a ``torch.nn.RNN``, ``nn.LSTM`` or ``nn.GRU`` (any RNNBase).
        **kwargs: extra `RecurrentStack` arguments (e.g. ``name``, ``seed``).

    Returns:
        A built `RecurrentStack` whose outputs and final states match the module's.

    >>> import torch
    >>> stack = from_torch(torch.nn.GRU(10, 20, 2, batch_first=True))
    >>> out, h_n = stack(np.zeros((3, 5, 10), "float32"))
    >>> tuple(out.shape), tuple(h_n.shape)
    ((3, 5, 20), (2, 3, 20))
    """
    mode = _TORCH_MODES.get(getattr(module, "mode", None))
    if mode is None:
        raise TypeError(
            f"from_torch expects a torch.nn.RNN, nn.LSTM or nn.GRU, got {type(module).__name__}."
        )
    stack = RecurrentStack(
        mode,
        module.hidden_size,
        num_layers=module.num_layers,
        bidirectional=module.bidirectional,
        dropout=float(module.dropout),
        proj_size=getattr(module, "proj_size", 0),
        use_bias=module.bias,
        **kwargs,
    )
    stack.build((None, None, module.input_size))
    directions = 2 if module.bidirectional else 1
    for k in range(module.num_layers):
        for d in range(directions):
            suffix = f"_l{k}" + ("_reverse" if d else "")
            cell = stack.rnns[k * directions + d].cell
            weights = _keras_layout(lambda name: _param(module, name), suffix, mode, module.bias, stack.proj_size)
            for name, value in weights.items():
                getattr(cell, name).assign(value)
    return stack


def to_torch(stack: RecurrentStack, batch_first: bool = True):
    """The inverse of `from_torch`: a ``torch.nn.RNN/LSTM/GRU`` with the stack's weights.

    The stack must be built. Keras' single RNN/LSTM bias goes to ``bias_ih``
    (``bias_hh`` is zero), which gives the same outputs.

    Args:
        stack: a built `RecurrentStack`.
        batch_first: Default True (the stack's own layout).

    >>> stack = RecurrentStack("lstm", 8, num_layers=2)
    >>> stack.build((None, None, 4))
    >>> to_torch(stack).hidden_size
    8
    """
    import torch  # lazy: optional dependency

    if not stack.built:
        raise ValueError("to_torch needs a built RecurrentStack; call it on data or .build() it first.")
    in_dim = stack.rnns[0].cell.kernel.shape[0]
    common = dict(
        num_layers=stack.num_layers, bias=stack.use_bias, batch_first=batch_first,
        dropout=stack.dropout, bidirectional=stack.bidirectional,
    )
    if stack.mode == "lstm":
        module = torch.nn.LSTM(in_dim, stack.units, proj_size=stack.proj_size, **common)
    elif stack.mode == "gru":
        module = torch.nn.GRU(in_dim, stack.units, **common)
    else:
        module = torch.nn.RNN(in_dim, stack.units, nonlinearity=stack.mode[4:], **common)
    directions = stack.num_directions
    with torch.no_grad():
        for k in range(stack.num_layers):
            for d in range(directions):
                suffix = f"_l{k}" + ("_reverse" if d else "")
                cell = stack.rnns[k * directions + d].cell
                w_ih = np.asarray(cell.kernel.numpy())
                w_hh = np.asarray(cell.recurrent_kernel.numpy())
                if stack.mode == "gru":
                    w_ih, w_hh = _gru_blocks(w_ih, 1), _gru_blocks(w_hh, 1)
                getattr(module, "weight_ih" + suffix).copy_(torch.from_numpy(w_ih.T.copy()))
                getattr(module, "weight_hh" + suffix).copy_(torch.from_numpy(w_hh.T.copy()))
                if stack.use_bias:
                    bias = np.asarray(cell.bias.numpy())
                    if stack.mode == "gru":
                        b_ih, b_hh = _gru_blocks(bias[0], 0), _gru_blocks(bias[1], 0)
                    else:
                        b_ih, b_hh = bias, np.zeros_like(bias)
                    getattr(module, "bias_ih" + suffix).copy_(torch.from_numpy(b_ih.copy()))
                    getattr(module, "bias_hh" + suffix).copy_(torch.from_numpy(b_hh.copy()))
                if stack.proj_size:
                    w_hr = np.asarray(cell.projection_kernel.numpy()).T.copy()
                    getattr(module, "weight_hr" + suffix).copy_(torch.from_numpy(w_hr))
    return module


# -- verification -------------------------------------------------------------

# (torch class name, constructor kwargs, options text for the verify table, fused)
# ``fused=None`` keeps each sub-layer's default (the fused loop, except LSTM with proj_size,
# which runs Keras' loop); ``True``/``False`` force it. Every row
# checks that each sub-layer ran the loop it had to, so the fused loop is proved against
# PyTorch in training, with the gradients of every weight and initial state, and so is
# Keras' loop with our cells.
VERIFY_CASES = [
    ("RNN", dict(num_layers=2), "num_layers=2 (seed example)", None),
    ("RNN", dict(num_layers=2), "num_layers=2, Keras loop", False),
    ("RNN", dict(nonlinearity="relu", bidirectional=True), "relu, bidirectional, fused", True),
    ("LSTM", dict(num_layers=2), "num_layers=2 (seed example)", None),
    ("LSTM", dict(num_layers=2), "num_layers=2, Keras loop", False),
    ("LSTM", dict(num_layers=2, bidirectional=True, proj_size=3), "num_layers=2, bidirectional, proj_size=3", None),
    ("LSTM", dict(bias=False, batch_first=True), "bias=False, batch_first", None),
    ("GRU", dict(num_layers=2), "num_layers=2 (seed example)", None),
    ("GRU", dict(num_layers=2), "num_layers=2, Keras loop", False),
    ("GRU", dict(num_layers=3, bidirectional=True, batch_first=True), "num_layers=3, bidirectional, batch_first, fused", True),
    ("GRU", dict(bidirectional=True, bias=False), "bias=False, bidirectional, fused", True),
]


def _max_abs(a, b) -> float:
    return float(np.max(np.abs(np.asarray(a) - np.asarray(b))))


def expected_path(rnn) -> str:
    """The loop a sub-layer of a `RecurrentStack` must run in training without a mask."""
    return "fused" if rnn.wants_fused(training=True) and not getattr(rnn.cell, "proj_size", 0) else "loop"


def compare_with_torch(module, x, initial_state=None, grad=True, fused=None):
    """Run `module` and ``from_torch(module)`` on the same data in training mode; return max abs diffs.

    Both run with ``training=True`` (PyTorch's module in ``train()`` mode, ours
    called with ``training=True``, which takes the fused BPTT path where it
    applies). The loss is ``sum(outputs * w) + Σ sum(state_k * v_k)`` for fixed
    random ``w``, ``v_k``; its gradients are compared w.r.t. the input, the initial
    states and **every weight** of every layer and direction (PyTorch's gradients
    mapped to Keras' layout as `from_torch` maps the weights).

    Args:
        module: a torch RNN/LSTM/GRU with ``dropout=0`` (its own ``batch_first`` is honoured);
            a stacked module with inter-layer dropout raises `ValueError`.
        x: numpy float32 input in the module's layout.
        initial_state: None, ``h0`` or ``(h0, c0)`` as numpy arrays (PyTorch layout).
        grad: also compare gradients. Default True.
        fused: None (each layer's default), True or False: sets ``fused`` on every
            sub-layer of the Keras stack.

    Returns:
        dict with ``max_out``, ``max_state``, ``max_grad`` (worst of the three gradient
        groups), ``max_grad_input``, ``max_grad_state`` and ``max_grad_weights``
        (gradient entries None when ``grad=False``), ``path`` (the sub-layers'
        `PathRecord.last`, e.g. ``["fused", "fused"]``) and ``expected_path`` (what
        each had to run, `expected_path`).

    >>> import torch
    >>> d = compare_with_torch(torch.nn.GRU(3, 4), np.ones((5, 2, 3), "float32"))
    >>> d["max_grad_weights"] < 1e-5
    True
    """
    if module.dropout and module.num_layers > 1:
        raise ValueError(
            f"compare_with_torch needs a module with dropout=0, got dropout={module.dropout}: in training mode "
            "PyTorch and Keras draw different inter-layer dropout masks, so their outputs cannot agree; "
            "compare a copy built with dropout=0 (the weights are the same)"
        )
    import tensorflow as tf  # lazy: interop imports without TensorFlow-only code paths
    import torch  # lazy: torch is an optional dependency

    stack = from_torch(module)
    if fused is not None:
        for rnn in stack.rnns:
            rnn.fused = fused
    is_lstm = stack.mode == "lstm"
    rng = np.random.default_rng(0)
    module.train()

    tx = torch.tensor(x, requires_grad=grad)
    init = [] if initial_state is None else (list(initial_state) if is_lstm else [initial_state])
    t_init = [torch.tensor(s, requires_grad=grad) for s in init]
    with warnings.catch_warnings():  # "LSTM with projections is not supported with oneDNN"
        warnings.simplefilter("ignore", UserWarning)
        t_out, t_state = module(tx, (tuple(t_init) if is_lstm else t_init[0]) if t_init else None)
    t_states = list(t_state) if is_lstm else [t_state]

    x_bm = x if module.batch_first else np.swapaxes(x, 0, 1)
    kx = tf.constant(x_bm)
    k_init = [tf.constant(s) for s in init]
    weights = [[getattr(rnn.cell, name) for name in ("kernel", "recurrent_kernel", "bias", "projection_kernel")
                if getattr(rnn.cell, name, None) is not None] for rnn in stack.rnns]
    with tf.GradientTape() as tape:
        tape.watch([kx, *k_init])
        k_out, k_state = stack(kx, initial_state=(tuple(k_init) if is_lstm else k_init[0]) if k_init else None,
                               training=True)
        k_states = list(k_state) if is_lstm else [k_state]
        w = rng.standard_normal(tuple(k_out.shape)).astype("float32")
        v = [rng.standard_normal(tuple(s.shape)).astype("float32") for s in k_states]
        loss = tf.reduce_sum(k_out * w) + sum(tf.reduce_sum(s * v_k) for s, v_k in zip(k_states, v))

    t_out_bm = t_out.detach().numpy()
    if not module.batch_first:
        t_out_bm = np.swapaxes(t_out_bm, 0, 1)
    result = {
        "max_out": _max_abs(t_out_bm, k_out.numpy()),
        "max_state": max(_max_abs(t.detach().numpy(), k.numpy()) for t, k in zip(t_states, k_states)),
        "max_grad": None, "max_grad_input": None, "max_grad_state": None, "max_grad_weights": None,
        "path": [rnn.path_record.last for rnn in stack.rnns],
        "expected_path": [expected_path(rnn) for rnn in stack.rnns],
    }
    if not grad:
        return result
    w_t = w if module.batch_first else np.swapaxes(w, 0, 1)
    t_loss = (t_out * torch.tensor(w_t)).sum() + sum((s * torch.tensor(v_k)).sum() for s, v_k in zip(t_states, v))
    t_loss.backward()
    k_grads = tape.gradient(loss, [kx, k_init, weights])
    t_grad_x = tx.grad.numpy()
    if not module.batch_first:
        t_grad_x = np.swapaxes(t_grad_x, 0, 1)
    result["max_grad_input"] = _max_abs(t_grad_x, k_grads[0].numpy())
    result["max_grad_state"] = max(
        [_max_abs(t.grad.numpy(), k.numpy()) for t, k in zip(t_init, k_grads[1])], default=0.0
    )
    directions = stack.num_directions
    worst = 0.0
    for index, (rnn, layer_grads) in enumerate(zip(stack.rnns, k_grads[2])):
        k, d = divmod(index, directions)
        suffix = f"_l{k}" + ("_reverse" if d else "")
        expected = _keras_layout(lambda name: _grad(module, name), suffix, stack.mode, module.bias,
                                 stack.proj_size, gradients=True)
        names = [n for n in ("kernel", "recurrent_kernel", "bias", "projection_kernel")
                 if getattr(rnn.cell, n, None) is not None]
        for name, got in zip(names, layer_grads):
            worst = max(worst, _max_abs(expected[name], got.numpy()))
    result["max_grad_weights"] = worst
    result["max_grad"] = max(result["max_grad_input"], result["max_grad_state"], worst)
    return result


def torch_verify_cases(tolerance: float = 1e-5, quick: bool = False) -> list[dict]:
    """Compare `from_torch` stacks with PyTorch on fixed-seed modules, for `kerasrnn verify`.

    Each row: ``{"layer": "nn.LSTM", "options": "...", "max_out", "max_state",
    "max_grad", ..., "against": "torch", "ok"}`` (see `compare_with_torch`: training
    mode, gradients of input, initial states and every weight); ``ok`` when outputs,
    states and every gradient are within `tolerance` (default 1e-5) and every sub-layer
    ran the loop it had to (`expected_path`). ``quick=True`` (default False) runs only the
    seed notes' three examples. Returns ``[]`` if torch is not installed.

    >>> rows = torch_verify_cases()
    >>> all(row["ok"] for row in rows)
    True
    """
    try:
        import torch  # lazy: torch is an optional dependency
    except ImportError:
        return []
    rows = []
    for i, (kind, options, text, fused) in enumerate(VERIFY_CASES):
        if quick and "seed example" not in text:
            continue
        torch.manual_seed(i)
        module = getattr(torch.nn, kind)(10, 20, **options)
        x = torch.randn(5, 3, 10)  # (time=5, batch=3, features=10), the seed examples' input
        x = (x.transpose(0, 1) if module.batch_first else x).contiguous().numpy()
        d = 2 if module.bidirectional else 1
        h_size = getattr(module, "proj_size", 0) or module.hidden_size
        h0 = torch.randn(module.num_layers * d, 3, h_size).numpy()
        init = (h0, torch.randn(module.num_layers * d, 3, module.hidden_size).numpy()) if kind == "LSTM" else h0
        diffs = compare_with_torch(module, x, init, fused=fused)
        ok = all(diffs[key] is not None and diffs[key] <= tolerance
                 for key in ("max_out", "max_state", "max_grad"))
        ok = ok and diffs["path"] == diffs["expected_path"]
        rows.append({"layer": f"nn.{kind}", "options": text, **diffs, "against": "torch", "ok": ok})
    return rows
