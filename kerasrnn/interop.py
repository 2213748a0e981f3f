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

from kerasrnn.layers.stack import RecurrentStack

__all__ = ["from_torch", "to_torch", "torch_verify_cases"]

_TORCH_MODES = {"RNN_TANH": "rnn_tanh", "RNN_RELU": "rnn_relu", "LSTM": "lstm", "GRU": "gru"}


def _gru_blocks(array, axis):
    """Reorder GRU gate blocks r, z, n <-> z, r, n along `axis` (an involution)."""
    r, z, n = np.split(array, 3, axis=axis)
    return np.concatenate([z, r, n], axis=axis)


def _param(module, name):
    return getattr(module, name).detach().cpu().numpy().astype("float32")


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
            w_ih = _param(module, "weight_ih" + suffix).T
            w_hh = _param(module, "weight_hh" + suffix).T
            if mode == "gru":
                w_ih, w_hh = _gru_blocks(w_ih, 1), _gru_blocks(w_hh, 1)
            cell.kernel.assign(w_ih)
            cell.recurrent_kernel.assign(w_hh)
            if module.bias:
                b_ih = _param(module, "bias_ih" + suffix)
                b_hh = _param(module, "bias_hh" + suffix)
                if mode == "gru":
                    cell.bias.assign(np.stack([_gru_blocks(b_ih, 0), _gru_blocks(b_hh, 0)]))
                else:
                    cell.bias.assign(b_ih + b_hh)
            if stack.proj_size:
                cell.projection_kernel.assign(_param(module, "weight_hr" + suffix).T)
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
    import torch

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

# (torch class name, constructor kwargs, options text for the verify table)
VERIFY_CASES = [
    ("RNN", dict(num_layers=2), "num_layers=2 (seed example)"),
    ("RNN", dict(nonlinearity="relu", bidirectional=True), "relu, bidirectional"),
    ("LSTM", dict(num_layers=2), "num_layers=2 (seed example)"),
    ("LSTM", dict(num_layers=2, bidirectional=True, proj_size=3), "num_layers=2, bidirectional, proj_size=3"),
    ("LSTM", dict(bias=False, batch_first=True), "bias=False, batch_first"),
    ("GRU", dict(num_layers=2), "num_layers=2 (seed example)"),
    ("GRU", dict(num_layers=3, bidirectional=True, batch_first=True), "num_layers=3, bidirectional, batch_first"),
]


def compare_with_torch(module, x, initial_state=None, grad=True):
    """Run `module` and ``from_torch(module)`` on the same data; return max abs diffs.

    Args:
        module: a torch RNN/LSTM/GRU (its own ``batch_first`` is honoured).
        x: numpy float32 input in the module's layout.
        initial_state: None, ``h0`` or ``(h0, c0)`` as numpy arrays (PyTorch layout).
        grad: also compare d(sum(outputs * w))/dx for a fixed random ``w``. Default True.

    Returns:
        dict with ``max_out``, ``max_state`` and ``max_grad`` (None when ``grad=False``).

    >>> import torch
    >>> d = compare_with_torch(torch.nn.GRU(3, 4), np.ones((5, 2, 3), "float32"))
    >>> d["max_out"] < 1e-5
    True
    """
    import tensorflow as tf
    import torch

    stack = from_torch(module)
    is_lstm = stack.mode == "lstm"

    tx = torch.tensor(x, requires_grad=grad)
    t_init = None
    if initial_state is not None:
        t_init = tuple(torch.tensor(s) for s in initial_state) if is_lstm else torch.tensor(initial_state)
    with warnings.catch_warnings():  # "LSTM with projections is not supported with oneDNN"
        warnings.simplefilter("ignore", UserWarning)
        t_out, t_state = module(tx, t_init)
    t_states = list(t_state) if is_lstm else [t_state]

    x_bm = x if module.batch_first else np.swapaxes(x, 0, 1)
    kx = tf.constant(x_bm)
    k_init = None
    if initial_state is not None:
        k_init = tuple(tf.constant(s) for s in initial_state) if is_lstm else tf.constant(initial_state)
    with tf.GradientTape() as tape:
        tape.watch(kx)
        k_out, k_state = stack(kx, initial_state=k_init)
        w = np.random.default_rng(0).standard_normal(tuple(k_out.shape)).astype("float32")
        loss = tf.reduce_sum(k_out * w)
    k_states = list(k_state) if is_lstm else [k_state]

    t_out_bm = t_out.detach().numpy()
    if not module.batch_first:
        t_out_bm = np.swapaxes(t_out_bm, 0, 1)
    result = {
        "max_out": float(np.max(np.abs(t_out_bm - k_out.numpy()))),
        "max_state": max(
            float(np.max(np.abs(t.detach().numpy() - k.numpy()))) for t, k in zip(t_states, k_states)
        ),
        "max_grad": None,
    }
    if grad:
        w_t = w if module.batch_first else np.swapaxes(w, 0, 1)
        (t_out * torch.tensor(w_t)).sum().backward()
        t_grad = tx.grad.numpy()
        if not module.batch_first:
            t_grad = np.swapaxes(t_grad, 0, 1)
        result["max_grad"] = float(np.max(np.abs(t_grad - tape.gradient(loss, kx).numpy())))
    return result


def torch_verify_cases(tolerance: float = 1e-5, quick: bool = False) -> list[dict]:
    """Compare `from_torch` stacks with PyTorch on fixed-seed modules, for `kerasrnn verify`.

    Each row: ``{"layer": "nn.LSTM", "options": "...", "max_out", "max_state",
    "max_grad", "against": "torch", "ok"}``; ``ok`` when all three max abs
    diffs are ≤ `tolerance` (default 1e-5). ``quick=True`` (default False)
    runs only the seed notes' three examples. Returns ``[]`` if torch is not installed.

    >>> rows = torch_verify_cases()
    >>> all(row["ok"] for row in rows)
    True
    """
    try:
        import torch
    except ImportError:
        return []
    rows = []
    for i, (kind, options, text) in enumerate(VERIFY_CASES):
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
        diffs = compare_with_torch(module, x, init)
        ok = all(v is not None and v <= tolerance for v in diffs.values())
        rows.append({"layer": f"nn.{kind}", "options": text, **diffs, "against": "torch", "ok": ok})
    return rows
