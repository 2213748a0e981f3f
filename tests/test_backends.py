"""kerasrnn.layers are backend-agnostic: run them under KERAS_BACKEND=torch.

The parent process (TensorFlow backend) runs the *built-in* Keras layers on
fixed inputs and weights, including a padding mask, and stores outputs and the
gradients of ``sum(outputs * R)`` w.r.t. inputs and weights in an .npz. A
fresh subprocess with ``KERAS_BACKEND=torch`` runs ours on the same data,
forward and backward (torch autograd), and reports the max differences.

(Keras' ``numpy`` backend would be the natural inference-only check, but in
Keras 3.15 it imports JAX, which is not installed here; jax is not either.)
"""

import json
import os
import subprocess
import sys

import keras
import numpy as np
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

CHILD = r"""
import json, os, sys
import numpy as np
import keras
assert keras.backend.backend() == "torch", keras.backend.backend()
import torch
import kerasrnn.layers as L
from keras import ops
tensorflow_imported = "tensorflow" in sys.modules  # by importing kerasrnn.layers (Keras may later)

data = np.load(sys.argv[1])
cases = json.loads(sys.argv[2])
report = {}
mask = torch.tensor(data["mask"])
for name, cls, kwargs in cases:
    layer = getattr(L, cls)(4, return_sequences=True, return_state=True, **kwargs)
    x = torch.tensor(data["x"], requires_grad=True)
    layer(x, mask=mask)
    n = sum(1 for k in data.files if k.startswith(name + "/w"))
    layer.set_weights([data[f"{name}/w{i}"] for i in range(n)])
    outs = layer(x, mask=mask)
    loss = sum((o * torch.tensor(data[f"{name}/r{i}"])).sum() for i, o in enumerate(outs))
    weights = [w.value for w in layer.trainable_weights]
    grads = torch.autograd.grad(loss, [x] + weights)
    d_out = max(float(np.abs(ops.convert_to_numpy(o) - data[f"{name}/out{i}"]).max())
                for i, o in enumerate(outs))
    d_grad = max(float(np.abs(g.detach().numpy() - data[f"{name}/grad{i}"]).max())
                 for i, g in enumerate(grads))
    report[name] = {"out": d_out, "grad": d_grad, "n_out": len(outs), "n_grad": len(grads)}

# Bidirectional (forward only) with the same mask.
bi = keras.layers.Bidirectional(L.GRU(4, return_sequences=True))
x = torch.tensor(data["x"])
bi(x, mask=mask)
bi.set_weights([data[f"bi/w{i}"] for i in range(6)])
report["bidirectional_gru"] = {
    "out": float(np.abs(ops.convert_to_numpy(bi(x, mask=mask)) - data["bi/out0"]).max())}
# Without a mask the fused loop would apply: on this backend it must decline ("backend"),
# and importing kerasrnn.layers must not have imported TensorFlow.
plain = L.LSTM(4)
plain(torch.tensor(data["x"]), training=True)
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


def test_torch_backend_forward_and_backward_match_tensorflow_builtins(tmp_path):
    path = tmp_path / "expected.npz"
    _expected(path)
    env = {**os.environ, "KERAS_BACKEND": "torch", "TF_CPP_MIN_LOG_LEVEL": "2",
           "CUDA_VISIBLE_DEVICES": ""}
    result = subprocess.run(
        [sys.executable, "-c", CHILD, str(path), json.dumps(CASES)],
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
