"""kerasrnn.layers are backend-agnostic: run them under KERAS_BACKEND=torch and =jax.

The parent process (TensorFlow backend) runs the *built-in* Keras layers on
fixed inputs and weights, including a padding mask, and stores outputs and the
gradients of ``sum(outputs * R)`` w.r.t. inputs and weights in an .npz. A
fresh subprocess per backend runs ours on the same data, forward and backward
(torch autograd; ``jax.grad`` over `Layer.stateless_call`), and reports the max
differences.
"""

import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

TOL = 1e-5

# (name, layer class name, kwargs); all return sequences and states.
CASES = [
    ("simple_rnn", "SimpleRNN", {}),
    ("simple_rnn_relu", "SimpleRNN", {"activation": "relu", "go_backwards": True}),
    ("lstm", "LSTM", {}),
    ("lstm_hard", "LSTM", {"recurrent_activation": "hard_sigmoid", "use_bias": False}),
    ("gru", "GRU", {"reset_after": True}),
    ("gru_v1", "GRU", {"reset_after": False}),
]

# Per backend: imports and ``grad_of(layer, x, mask, rs) -> (outputs, [d/dx, *d/dweights])``
# of ``sum(outputs * rs)``, all as numpy.
CHILD_HEAD = {
    "torch": r"""
import torch
from keras import ops

def grad_of(layer, x, mask, rs):
    x = torch.tensor(x, requires_grad=True)
    outs = layer(x, mask=torch.tensor(mask))
    loss = sum((o * torch.tensor(r)).sum() for o, r in zip(outs, rs))
    grads = torch.autograd.grad(loss, [x] + [w.value for w in layer.trainable_weights])
    return [ops.convert_to_numpy(o) for o in outs], [g.detach().numpy() for g in grads]
""",
    "jax": r"""
import jax
import jax.numpy as jnp

def grad_of(layer, x, mask, rs):
    trainable = [v.value for v in layer.trainable_variables]
    non_trainable = [v.value for v in layer.non_trainable_variables]
    mask = jnp.asarray(mask)

    def loss_fn(x, trainable):
        outs, _ = layer.stateless_call(trainable, non_trainable, x, mask=mask)
        return sum((o * jnp.asarray(r)).sum() for o, r in zip(outs, rs)), outs

    (_, outs), (dx, dw) = jax.value_and_grad(loss_fn, argnums=(0, 1), has_aux=True)(jnp.asarray(x), trainable)
    return [np.asarray(o) for o in outs], [np.asarray(g) for g in [dx, *dw]]
""",
}

CHILD = r"""
import json, os, sys
import numpy as np
import keras
assert keras.backend.backend() == os.environ["KERAS_BACKEND"], keras.backend.backend()
import kerasrnn.layers as L
tensorflow_imported = "tensorflow" in sys.modules  # by importing kerasrnn.layers (Keras may later)
exec(sys.argv[3])  # CHILD_HEAD[backend]: grad_of

data = np.load(sys.argv[1])
cases = json.loads(sys.argv[2])
report = {}
for name, cls, kwargs in cases:
    layer = getattr(L, cls)(4, return_sequences=True, return_state=True, **kwargs)
    layer(data["x"], mask=data["mask"])
    n = sum(1 for k in data.files if k.startswith(name + "/w"))
    layer.set_weights([data[f"{name}/w{i}"] for i in range(n)])
    rs = [data[f"{name}/r{i}"] for i in range(sum(1 for k in data.files if k.startswith(name + "/r")))]
    outs, grads = grad_of(layer, data["x"], data["mask"], rs)
    d_out = max(float(np.abs(o - data[f"{name}/out{i}"]).max()) for i, o in enumerate(outs))
    d_grad = max(float(np.abs(g - data[f"{name}/grad{i}"]).max()) for i, g in enumerate(grads))
    report[name] = {"out": d_out, "grad": d_grad, "n_out": len(outs), "n_grad": len(grads)}

# Bidirectional (forward only) with the same mask.
bi = keras.layers.Bidirectional(L.GRU(4, return_sequences=True))
bi(data["x"], mask=data["mask"])
bi.set_weights([data[f"bi/w{i}"] for i in range(6)])
out = keras.ops.convert_to_numpy(bi(data["x"], mask=data["mask"]))
report["bidirectional_gru"] = {"out": float(np.abs(out - data["bi/out0"]).max())}
# Without a mask the fused loop would apply: on this backend it must decline ("backend"),
# and importing kerasrnn.layers must not have imported TensorFlow.
plain = L.LSTM(4)
plain(data["x"], training=True)
report["no_mask_path"] = [plain.path_record.last, plain.path_record.reason]
report["tensorflow_imported"] = tensorflow_imported
print("REPORT " + json.dumps(report))
"""


def _expected(path):
    """Built-in layers under TensorFlow: outputs and gradients, saved to `path`."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(3, 6, 5)).astype("float32")
    mask = np.ones((3, 6), bool)
    mask[1, 4:] = False          # padding at the end
    mask[2, :2] = False          # ... at the start
    mask[2, 3] = False           # ... and in the middle
    data = {"x": x, "mask": mask}
    for name, cls, kwargs in CASES:
        layer = getattr(keras.layers, cls)(4, return_sequences=True, return_state=True, **kwargs)
        layer(x, mask=mask)
        weights = [rng.normal(0, 0.5, size=w.shape).astype("float32") for w in layer.get_weights()]
        layer.set_weights(weights)
        xt = tf.constant(x)
        with tf.GradientTape() as tape:
            tape.watch(xt)
            outs = layer(xt, mask=mask)
            rs = [rng.normal(size=o.shape).astype("float32") for o in outs]
            loss = tf.add_n([tf.reduce_sum(o * r) for o, r in zip(outs, rs)])
        grads = tape.gradient(loss, [xt] + list(layer.trainable_weights))
        for i, w in enumerate(weights):
            data[f"{name}/w{i}"] = w
        for i, (o, r) in enumerate(zip(outs, rs)):
            data[f"{name}/out{i}"], data[f"{name}/r{i}"] = o.numpy(), r
        for i, g in enumerate(grads):
            data[f"{name}/grad{i}"] = g.numpy()
    bi = keras.layers.Bidirectional(keras.layers.GRU(4, return_sequences=True))
    bi(x, mask=mask)
    bi.set_weights([rng.normal(0, 0.5, size=w.shape).astype("float32") for w in bi.get_weights()])
    for i, w in enumerate(bi.get_weights()):
        data[f"bi/w{i}"] = w
    data["bi/out0"] = bi(x, mask=mask).numpy()
    np.savez(path, **data)


@pytest.mark.parametrize("backend", ["torch", "jax"])
def test_other_backends_forward_and_backward_match_tensorflow_builtins(tmp_path, backend):
    path = tmp_path / "expected.npz"
    _expected(path)
    env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "2",
           "CUDA_VISIBLE_DEVICES": "", "JAX_PLATFORMS": "cpu"}
    result = subprocess.run(
        [sys.executable, "-c", CHILD, str(path), json.dumps(CASES), CHILD_HEAD[backend]],
        capture_output=True, text=True, env=env, timeout=400,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    line = next(l for l in result.stdout.splitlines() if l.startswith("REPORT "))
    report = json.loads(line[len("REPORT "):])
    assert report.pop("no_mask_path") == ["loop", "backend"]
    assert report.pop("tensorflow_imported") is False
    assert set(report) == {name for name, _, _ in CASES} | {"bidirectional_gru"}
    for name, cls, kwargs in CASES:
        row = report[name]
        assert row["n_out"] == (3 if cls == "LSTM" else 2), (name, row)
        assert row["n_grad"] == 1 + (2 if kwargs.get("use_bias") is False else 3), (name, row)
        assert row["out"] <= TOL and row["grad"] <= TOL, (name, row)
    assert report["bidirectional_gru"]["out"] <= TOL, report
