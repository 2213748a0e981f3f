"""`kerasrnn verify`: prove that kerasrnn.layers equal the built-in Keras layers.

Every *case* builds a built-in layer (e.g. `keras.layers.LSTM`) and ours
(`kerasrnn.layers.LSTM`) with identical arguments, gives the source random
weights, copies them across with ``set_weights`` (built-in -> ours, and for
the ``ours->keras`` scenario the other way round), runs both on the same
float32 inputs and compares

* the outputs and every returned state (max |Δ|),
* the gradients of ``loss = Σ_k sum(output_k * R_k)`` (R_k fixed random
  weights) w.r.t. the inputs (and initial states) and every trainable weight,
  computed with `tf.GradientTape`.

Layers are called with ``training=True`` (the fused loop's hand-written BPTT)
except in the ``inference`` and ``dropout(inference)`` scenarios (its
forward-only loop; their gradients recompute the stores); with dropout and
the same ``seed`` Keras draws the same masks for both layers, so even
training-mode dropout is compared exactly.

A case passes when all three maxima are ≤ `TOLERANCE` (1e-5) and our layer
ran the loop it should (the ``path`` column, from `PathRecord`: ``fused``
wherever the fused loop applies — no mask, no dropout in training, no
unroll, Keras' own activations — and the layer asks for it: ``fused=True``
variants, and by default LSTM always and GRU in inference
(`RecurrentLayer.fused_defaults`); ``loop`` elsewhere, which checks our
cells in Keras' own loop). The same case
runner backs the test-suite (`tests/test_layers_equivalence.py`) so the CLI
and the tests can never drift apart. When PyTorch is importable the table
also gets the rows of `kerasrnn.interop.torch_verify_cases()` (``from_torch``
vs `torch.nn.RNN/LSTM/GRU`).

>>> rows = keras_verify_cases(quick=True)   # doctest: +SKIP
>>> all(row["ok"] for row in rows)           # doctest: +SKIP
True
"""

from __future__ import annotations

import inspect
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

__all__ = [
    "TOLERANCE", "KerasCase", "VARIANTS", "SCENARIOS", "keras_cases",
    "run_keras_case", "parts_taken", "keras_verify_cases", "torch_rows", "format_table",
    "json_safe", "KERAS_TEST_FILES", "run_keras_test_files",
]

TOLERANCE = 1e-5
BATCH, STEPS, FEATURES, UNITS, VOCAB = 3, 6, 5, 4, 11
# The graph scenarios' batch: large enough for the fused loop to split it (`fused.batch_parts`).
GRAPH_BATCH = 16

# layer -> list of (variant label, constructor kwargs). The first is the default.
VARIANTS: dict[str, list[tuple[str, dict]]] = {
    "SimpleRNN": [
        ("tanh", {}),
        ("relu", {"activation": "relu"}),
        ("tanh no-bias", {"use_bias": False}),
        ("relu no-bias", {"activation": "relu", "use_bias": False}),
        ("tanh fused=False", {"fused": False}),
        ("relu no-bias fused=False", {"activation": "relu", "use_bias": False, "fused": False}),
    ],
    "LSTM": [
        ("default", {}),
        ("no-bias", {"use_bias": False}),
        ("unit_forget_bias=False", {"unit_forget_bias": False}),
        ("hard_sigmoid", {"recurrent_activation": "hard_sigmoid"}),
        ("default fused=False", {"fused": False}),
    ],
    "GRU": [
        ("reset_after=True", {"reset_after": True}),
        ("reset_after=False", {"reset_after": False}),
        ("no-bias", {"use_bias": False}),
        ("reset_after=False no-bias", {"reset_after": False, "use_bias": False}),
        ("reset_after=True fused=False", {"reset_after": True, "fused": False}),
        ("reset_after=False no-bias fused=False", {"reset_after": False, "use_bias": False, "fused": False}),
    ],
}

# Options only kerasrnn's layers take (never passed to the built-in).
OURS_ONLY = ("fused",)
# Scenarios in which the fused loop never applies (masks, dropout in training, unroll,
# a bare cell in keras.layers.RNN); everywhere else it must run unless ``fused=False``.
LOOP_SCENARIOS = {"mask-end", "mask-middle", "bidirectional+mask", "unroll", "rnn(cell)",
                  "dropout(training)", "input-dropout(training)"}

# Scenarios called with training=False (every other one uses training=True).
INFERENCE_SCENARIOS = {"inference", "dropout(inference)", "graph(inference)"}
# Scenarios run in a plain (not XLA) tf.function at GRAPH_BATCH, with a random initial_state.
GRAPH_SCENARIOS = {"graph", "graph(inference)"}

# Scenario name -> what it exercises (the runner below implements each).
SCENARIOS: dict[str, str] = {
    "last": "return_sequences=False, return_state=False (last output only)",
    "seq+state": "return_sequences=True, return_state=True",
    "inference": "seq+state called with training=False (every other scenario uses training=True)",
    "mask-end": "Embedding(mask_zero=True) mask, padding at the end",
    "mask-middle": "Embedding(mask_zero=True) mask, padding at the start and in the middle",
    "go_backwards": "go_backwards=True, return_sequences+return_state",
    "initial_state": "random initial_state (its gradient compared too)",
    "bidirectional": "keras.layers.Bidirectional(merge_mode='concat'), sequences+states",
    "bidirectional+mask": "Bidirectional(return_sequences=True) with an Embedding mask",
    "stateful": "stateful=True: two consecutive batches, then reset_state() and the first again",
    "unroll": "unroll=True with a fixed sequence length",
    "rnn(cell)": "our cell vs the built-in cell, each in keras.layers.RNN",
    "dropout(inference)": "dropout=0.3, recurrent_dropout=0.3 called with training=False",
    "dropout(training)": "dropout=0.3, recurrent_dropout=0.3, training=True, same seed=7 (same masks)",
    "input-dropout(training)": "dropout=0.3 only, training=True, same seed=7",
    "ours->keras": "weights copied ours -> built-in (the reverse direction)",
    "xla": "seq+state forward and backward inside tf.function(jit_compile=True)",
    "graph": ("seq+state with a random initial_state, batch 16, forward and backward inside a plain "
              "tf.function (as model.fit with compile defaults): the fused loop runs the batch as "
              "two concurrent loops on 2+ cores (fused.batch_parts; the path column says ×2)"),
    "graph(inference)": "the graph scenario called with training=False",
}

QUICK_SCENARIOS = ("seq+state", "inference")


@dataclass(frozen=True)
class KerasCase:
    """One equivalence case: a layer, one of its option variants, one scenario."""

    layer: str
    variant: str
    scenario: str
    options: dict = field(default_factory=dict, compare=False, hash=False)

    @property
    def id(self) -> str:
        return f"{self.layer}[{self.variant}]-{self.scenario}"

    @property
    def label(self) -> str:
        return f"{self.variant} · {self.scenario}"


def keras_cases(quick: bool = False) -> list[KerasCase]:
    """All equivalence cases, in table order.

    Args:
        quick: Default False: every variant × every scenario. True: every
            variant in ``seq+state`` plus the default variant in every scenario.

    >>> len(keras_cases()) > len(keras_cases(quick=True))
    True
    """
    cases = []
    for layer, variants in VARIANTS.items():
        for index, (variant, options) in enumerate(variants):
            for scenario in SCENARIOS:
                if quick and index > 0 and scenario not in QUICK_SCENARIOS:
                    continue
                cases.append(KerasCase(layer, variant, scenario, dict(options)))
    return cases


# -- the case runner ----------------------------------------------------------


def _rng(case: KerasCase):

    return np.random.default_rng(zlib.crc32(case.id.encode()))


def _flatten(outputs) -> list:
    return list(outputs) if isinstance(outputs, (list, tuple)) else [outputs]


def _max_diff(a_list, b_list) -> float:

    if len(a_list) != len(b_list):
        return math.inf
    worst = 0.0
    for a, b in zip(a_list, b_list):
        if a is None or b is None:
            if a is None and b is None:
                continue
            return math.inf
        a, b = np.asarray(a), np.asarray(b)
        if a.shape != b.shape:
            return math.inf
        if a.size:
            diff = float(np.max(np.abs(a.astype("float64") - b.astype("float64"))))
            worst = max(worst, diff if math.isfinite(diff) else math.inf)
    return worst


def _masked_ids(rng, pattern: str):
    """Token ids (B, T) for Embedding(mask_zero=True); 0 = padding."""
    ids = rng.integers(1, VOCAB, size=(BATCH, STEPS))
    if pattern == "end":
        ids[1, 4:] = 0
        ids[2, 1:] = 0
    else:  # start and middle
        ids[1, :2] = 0
        ids[1, 4] = 0
        ids[2, 0] = 0
        ids[2, 2:4] = 0
    return ids.astype("int32")


def _make_layers(case: KerasCase, **extra):
    """(built-in, ours) sequence layers (or RNN(cell) pairs) with identical args."""
    import keras  # lazy: Keras/TensorFlow load in seconds; imported only when measuring

    import kerasrnn.layers as ours_lib  # lazy: imports Keras

    kwargs = {**case.options, **extra}
    ours_only = {k: kwargs.pop(k) for k in OURS_ONLY if k in kwargs}
    if case.scenario == "rnn(cell)":
        rnn_kwargs = {k: kwargs.pop(k) for k in ("return_sequences", "return_state") if k in kwargs}
        builtin_cell = getattr(keras.layers, case.layer + "Cell")(UNITS, **kwargs)
        our_cell = getattr(ours_lib, case.layer + "Cell")(UNITS, **kwargs)
        return (keras.layers.RNN(builtin_cell, **rnn_kwargs),
                keras.layers.RNN(our_cell, **rnn_kwargs))
    return (getattr(keras.layers, case.layer)(UNITS, **kwargs),
            getattr(ours_lib, case.layer)(UNITS, **kwargs, **ours_only))


def expected_path(case: KerasCase) -> str | None:
    """The loop our layer must run in `case`: ``"fused"``, ``"loop"``, or None (a bare cell)."""
    import kerasrnn.layers as ours_lib  # lazy: imports Keras

    if case.scenario == "rnn(cell)":
        return None
    training = case.scenario not in INFERENCE_SCENARIOS
    fused = getattr(ours_lib, case.layer).fused_choice(case.options.get("fused"), training)
    default_activations = case.options.get("recurrent_activation", "sigmoid") == "sigmoid"
    if not fused or not default_activations or case.scenario in LOOP_SCENARIOS:
        return "loop"
    return "fused"


def _recorded_layers(layer) -> list:
    """Our layer's sequence layers that keep a `PathRecord`: both directions of a Bidirectional,
    else the layer itself; none for a bare cell."""
    directions = [getattr(layer, name, None) for name in ("forward_layer", "backward_layer")]
    return [p for p in ([d for d in directions if d is not None] or [layer]) if hasattr(p, "path_record")]


def path_taken(layer) -> str | None:
    """`PathRecord.last` of our layer (both directions of a Bidirectional), None for a bare cell."""
    paths = {p.path_record.last for p in _recorded_layers(layer)}
    if not paths:
        return None
    return paths.pop() if len(paths) == 1 else "mixed"


def parts_taken(layer) -> int:
    """`PathRecord.parts` of our layer: how many concurrent loops its fused path ran the batch as."""
    return max([p.path_record.parts for p in _recorded_layers(layer)], default=1)


def _randomize(layer, rng) -> None:
    """Give `layer` random weights (non-zero biases make the copy check meaningful)."""
    layer.set_weights([rng.normal(0.0, 0.5, size=w.shape).astype("float32")
                       for w in layer.get_weights()])


def _forward_and_grads(layer, call, watched, jit=False, graph=False):
    """Run ``call(layer, *watched)`` under a tape; return (outputs, grads wrt watched + weights).

    The loss is ``Σ_k sum(output_k * R_k)`` with R_k drawn from a fixed seed
    (the same for both layers, since their output shapes agree). With `jit`
    the forward and backward pass run in one XLA-compiled `tf.function`, as
    in ``model.compile(jit_compile=True)`` training; with `graph` in a plain
    `tf.function`, as ``model.fit`` with Keras' compile defaults on CPU.
    """
    import tensorflow as tf  # lazy: TensorFlow loads in seconds; imported only when measuring

    def run(*tensors):
        loss_rng = np.random.default_rng(1)
        with tf.GradientTape() as tape:
            for tensor in tensors:
                tape.watch(tensor)
            outputs = _flatten(call(layer, *tensors))
            loss = tf.add_n([
                tf.reduce_sum(out * loss_rng.normal(size=tuple(out.shape)).astype("float32"))
                for out in outputs
            ])
        grads = tape.gradient(loss, list(tensors) + list(layer.trainable_weights))
        return outputs, grads

    if jit or graph:
        run = tf.function(run, jit_compile=jit)
    outputs, grads = run(*watched)
    return [o.numpy() for o in outputs], [None if g is None else g.numpy() for g in grads]


def run_keras_case(case: KerasCase) -> dict:
    """Run one case; return its table row.

    Returns:
        ``{"layer", "options", "max_out", "max_state", "max_grad", "against":
        "keras", "ok", "id"}`` where ``max_out`` compares the main output,
        ``max_state`` every returned state (0.0 when none are returned),
        ``max_grad`` the input and weight gradients, ``path`` the loop our layer
        ran and ``expected_path`` the one it had to run (`expected_path`).
    """
    import keras  # lazy: Keras/TensorFlow load in seconds; imported only when measuring
    import tensorflow as tf  # lazy: TensorFlow loads in seconds; imported only when measuring

    rng = _rng(case)
    keras.utils.set_random_seed(zlib.crc32(case.id.encode()) % (2**31))
    batch = GRAPH_BATCH if case.scenario in GRAPH_SCENARIOS else BATCH
    x = tf.constant(rng.normal(size=(batch, STEPS, FEATURES)).astype("float32"))
    scenario = case.scenario
    # training=True takes our training-only code paths (the fused loop); the
    # built-in computes the same function in both modes when nothing is dropped.
    training = scenario not in INFERENCE_SCENARIOS
    watched = [x]
    layer_kwargs = {"return_sequences": True, "return_state": True}
    wrap = None
    mask = None

    if scenario == "last":
        layer_kwargs = {}
    elif scenario in ("mask-end", "mask-middle", "bidirectional+mask"):
        embedding = keras.layers.Embedding(VOCAB, FEATURES, mask_zero=True)
        ids = _masked_ids(rng, "end" if scenario == "mask-end" else "middle")
        x = embedding(ids)
        mask = embedding.compute_mask(ids)
        watched = [x]
        if scenario == "bidirectional+mask":
            layer_kwargs = {"return_sequences": True}
            wrap = "bidirectional"
    elif scenario == "go_backwards":
        layer_kwargs["go_backwards"] = True
    elif scenario == "bidirectional":
        wrap = "bidirectional"
    elif scenario == "stateful":
        layer_kwargs["stateful"] = True
    elif scenario == "unroll":
        layer_kwargs["unroll"] = True
    elif scenario == "dropout(inference)":
        layer_kwargs.update(dropout=0.3, recurrent_dropout=0.3, seed=7)
    elif scenario == "dropout(training)":
        # Same seed and same call sequence -> Keras draws the same masks for both.
        layer_kwargs.update(dropout=0.3, recurrent_dropout=0.3, seed=7)
        training = True
    elif scenario == "input-dropout(training)":
        layer_kwargs.update(dropout=0.3, seed=7)
        training = True

    builtin, ours = _make_layers(case, **layer_kwargs)
    if wrap == "bidirectional":
        builtin = keras.layers.Bidirectional(builtin, merge_mode="concat")
        ours = keras.layers.Bidirectional(ours, merge_mode="concat")

    initial_state = None
    if scenario == "initial_state" or scenario in GRAPH_SCENARIOS:
        sizes = builtin.cell.state_size
        sizes = list(sizes) if isinstance(sizes, (list, tuple)) else [sizes]
        initial_state = [tf.constant(rng.normal(size=(batch, s)).astype("float32"))
                         for s in sizes]
        watched = [x, *initial_state]

    def call(layer, inputs, *states):
        kwargs = {"training": training}
        if mask is not None:
            kwargs["mask"] = mask
        if states:
            kwargs["initial_state"] = list(states)
        return layer(inputs, **kwargs)

    # Build both, then randomize the source and copy into the target.
    for layer in (builtin, ours):
        call(layer, *watched)
        if scenario == "stateful":
            layer.reset_state()
    source, target = (ours, builtin) if scenario == "ours->keras" else (builtin, ours)
    _randomize(source, rng)
    target.set_weights(source.get_weights())

    if scenario == "stateful":
        x2 = tf.constant(rng.normal(size=x.shape).astype("float32"))
        results = []
        for layer in (builtin, ours):
            first = [o.numpy() for o in _flatten(layer(x, training=True))]
            outs2, grads = _forward_and_grads(layer, lambda l, x_: l(x_, training=True), [x2])
            layer.reset_state()
            again = [o.numpy() for o in _flatten(layer(x, training=True))]
            results.append((first + outs2 + again, grads, len(first)))
        (b_out, b_grad, n), (o_out, o_grad, _) = results
        main = [0, n, 2 * n]
        return _row(case, [b_out[i] for i in main], [o_out[i] for i in main],
                    [v for i, v in enumerate(b_out) if i not in main],
                    [v for i, v in enumerate(o_out) if i not in main], b_grad, o_grad, path_taken(ours))

    jit, graph = scenario == "xla", scenario in GRAPH_SCENARIOS
    b_out, b_grad = _forward_and_grads(builtin, call, watched, jit=jit, graph=graph)
    o_out, o_grad = _forward_and_grads(ours, call, watched, jit=jit, graph=graph)
    if len(b_grad) != len(o_grad):
        o_grad = o_grad + [None]  # different number of weights: forces a failure
    return _row(case, b_out[:1], o_out[:1], b_out[1:], o_out[1:], b_grad, o_grad, path_taken(ours),
                parts_taken(ours))


def _row(case, b_main, o_main, b_states, o_states, b_grad, o_grad, path, parts=1) -> dict:
    max_out = _max_diff(b_main, o_main)
    max_state = _max_diff(b_states, o_states)
    max_grad = _max_diff(b_grad, o_grad)
    expected = expected_path(case)
    ok = all(v <= TOLERANCE for v in (max_out, max_state, max_grad)) and path == expected
    return {
        "layer": case.layer,
        "options": case.label,
        "max_out": max_out,
        "max_state": max_state,
        "max_grad": max_grad,
        "path": path,
        "parts": parts,
        "expected_path": expected,
        "against": "keras",
        "ok": ok,
        "id": case.id,
    }


def keras_verify_cases(quick: bool = False) -> list[dict]:
    """Run every Keras equivalence case and return the table rows.

    Args:
        quick: Default False. True runs the smaller set (see `keras_cases`).

    >>> rows = keras_verify_cases(quick=True)  # doctest: +SKIP
    >>> {row["against"] for row in rows}       # doctest: +SKIP
    {'keras'}
    """
    return [run_keras_case(case) for case in keras_cases(quick)]


def torch_rows(quick: bool = False) -> tuple[list[dict], str | None]:
    """Rows from `kerasrnn.interop.torch_verify_cases()`, or ``([], note)`` when unavailable."""
    try:
        import torch  # noqa: F401  (lazy: optional dependency)
    except ImportError:
        return [], "PyTorch is not installed: the from_torch rows were skipped (pip install torch)."
    try:
        from kerasrnn.interop import torch_verify_cases  # lazy: only when torch is installed
    except ImportError as exc:
        return [], f"kerasrnn.interop.torch_verify_cases is not available ({exc}): torch rows skipped."
    params = inspect.signature(torch_verify_cases).parameters
    rows = torch_verify_cases(quick=quick) if "quick" in params else torch_verify_cases()
    return [dict(row, against=row.get("against", "torch")) for row in rows], None


# -- Keras' own test files ------------------------------------------------------

#: The test files of the installed keras wheel that exercise the three layers.
KERAS_TEST_FILES = ("lstm_test.py", "gru_test.py", "simple_rnn_test.py")

_SWAP_CONFTEST = """\
# Written by kerasrnn.verify.run_keras_test_files: Keras' tests, kerasrnn's layers.
import keras.src.layers as keras_layers

import kerasrnn.layers as ours

for name in ("LSTM", "GRU", "SimpleRNN"):
    setattr(keras_layers, name, getattr(ours, name))
"""


def run_keras_test_files(select: str | None = None, files=KERAS_TEST_FILES) -> dict:
    """Run Keras' own ``lstm_test.py``/``gru_test.py``/``simple_rnn_test.py`` against our layers.

    The files shipped in the installed keras wheel (``keras/src/layers/rnn/``) are
    copied to a temporary directory next to a ``conftest.py`` that replaces
    ``keras.src.layers.LSTM/GRU/SimpleRNN`` (the names the tests call) by
    `kerasrnn.layers`' classes, and run with pytest in a subprocess.

    Args:
        select: optional pytest ``-k`` expression (default None: every test).
        files: the test file names (default `KERAS_TEST_FILES`).

    Returns:
        ``{"passed": n, "failed": n, "skipped": n, "failures": [test ids], "keras": version}``.

    >>> result = run_keras_test_files()  # doctest: +SKIP
    >>> result["failed"]                  # doctest: +SKIP
    0
    """
    import keras  # lazy: the verify CLI imports Keras only when it runs

    source = Path(keras.__file__).parent / "src" / "layers" / "rnn"
    missing = [name for name in files if not (source / name).is_file()]
    if missing:
        raise FileNotFoundError(f"the installed keras {keras.__version__} has no {missing} under {source}")
    with tempfile.TemporaryDirectory(prefix="kerasrnn-keras-tests-") as tmp:
        for name in files:
            shutil.copy(source / name, Path(tmp) / name)
        (Path(tmp) / "conftest.py").write_text(_SWAP_CONFTEST)
        command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-rfE", tmp]
        if select:
            command += ["-k", select]
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
        done = subprocess.run(command, capture_output=True, text=True, cwd=tmp, env=env)
    out = done.stdout
    counts = {key: int(n) for n, key in re.findall(r"(\d+) (passed|failed|skipped|error)", out.splitlines()[-1])} \
        if out.strip() else {}
    return {
        "passed": counts.get("passed", 0),
        "failed": counts.get("failed", 0) + counts.get("error", 0),
        "skipped": counts.get("skipped", 0),
        "failures": re.findall(r"^(?:FAILED|ERROR) (\S+)", out, re.M),
        "keras": keras.__version__,
        "returncode": done.returncode,
    }


# -- output -------------------------------------------------------------------


def _path_text(row) -> str:
    def text(path):
        if isinstance(path, list):  # torch rows: one entry per sub-layer
            return "/".join(sorted(set(path)))
        return path

    path, expected = text(row.get("path")), text(row.get("expected_path"))
    if path is None:
        return "—"
    shown = f"{path} ×{row['parts']}" if row.get("parts", 1) > 1 else path
    return shown if expected in (None, path) else f"{shown} (want {expected})"


def _fmt(value) -> str:
    if value is None:
        return "—"
    if isinstance(value, float) and not math.isfinite(value):
        return "inf"
    return f"{value:.1e}"


def format_table(rows: list[dict]) -> str:
    """An aligned text table: layer | options | max|Δ| out | state | grad | path | vs | ok."""
    header = ["layer", "options", "max|Δ| out", "max|Δ| state", "max|Δ| grad", "path", "vs", "ok"]
    body = [
        [str(r["layer"]), str(r["options"]), _fmt(r.get("max_out")), _fmt(r.get("max_state")),
         _fmt(r.get("max_grad")), _path_text(r), str(r.get("against", "")), "ok" if r["ok"] else "FAIL"]
        for r in rows
    ]
    widths = [max(len(line[i]) for line in [header, *body]) for i in range(len(header))]
    numeric = {2, 3, 4}

    def line(cells):
        return "  ".join(c.rjust(w) if i in numeric else c.ljust(w)
                         for i, (c, w) in enumerate(zip(cells, widths))).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(header), rule, *(line(c) for c in body)])


def json_safe(value):
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
