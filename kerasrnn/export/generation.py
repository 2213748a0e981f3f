"""Export contract of char generation runs: vocabulary, step model, signatures, parity, runners.

Artifacts (beside ``manifest.json``):

- ``vocab.json`` — ``{"chars": [...], "unknown_char_policy": "error"|"skip"}``;
  token id = index in ``chars``, one token per Unicode code point.
- SavedModel: ``step(token: int32 (B,), rnn_0_h, [rnn_0_c], ...) -> {"logits":
  (B, V), "next_rnn_0_h", ...}`` (streaming, O(1) per character; start from
  zero states and pass ``next_*`` back), ``generate(seed: string (), length:
  int32 (), temperature: float32 ()) -> {"text"}`` (a fresh random seed per
  call) and ``generate_seeded(seed, length, temperature, top_k: int32 (),
  top_p: float32 (), random_seed: int32 ())`` (reproducible). Both run
  `kerasrnn.sampling.sample_loop` — the one sampler — and apply the run's
  unknown-character policy (`kerasrnn.sampling.encode_in_graph`).
- TFLite: the streaming step model with batch 1 and no loop at all,
  ``(token (1,), *states) -> (logits, *next_states)``; full-integer int8 is
  tried (calibrated on the step inputs seen while feeding ``samples.npz``) and
  kept only if it passes the int8 gate.

Parity: the Keras model's whole-sequence logits on the run's validation
windows vs the artifact fed token by token. `GATES`:

- float32: max :math:`|\\Delta \\text{logit}|` <= 1e-4;
- float16: NLL increase <= 0.005 nats/char and argmax agreement >= 0.99;
- int8: NLL increase <= 0.02 nats/char, argmax agreement >= 0.95 and
  next-character accuracy drop <= 0.02.

>>> sampler = open_runner("tflite", "saved_models/run/export/tflite/model.tflite", manifest)  # doctest: +SKIP
>>> sampler.generate("ROMEO:", length=100, temperature=0.8, seed=1)  # doctest: +SKIP
"""

from __future__ import annotations

# TensorFlow, Keras and LiteRT are imported at the top: only the commands that export or run an
# artifact import this module (`kerasrnn --help` never does).

import json
from pathlib import Path

import numpy as np
import tensorflow as tf

from kerasrnn.export import parity as parity_mod
from kerasrnn.export import tflite as tflite_mod
from kerasrnn.sampling import SAMPLING_FALLBACKS, KerasStep, Sampler, decode, encode_in_graph, sample_loop

PARITY_SEQUENCES = 32
GATES = {
    "float32": {"max_abs_diff": ("<=", 1e-4)},
    "float16": {"loss_increase": ("<=", 0.005), "argmax_agreement": (">=", 0.99)},
    "int8": {"loss_increase": ("<=", 0.02), "argmax_agreement": (">=", 0.95), "accuracy_drop": ("<=", 0.02)},
}


# ------------------------------------------------------------------ step functions


def step_names(step_model) -> tuple[list[str], list[str]]:
    """Input and output names of a step model: ``token, rnn_0_h...`` and ``logits, next_rnn_0_h...``."""
    inputs = ["token"] + [t.name for t in step_model.inputs[1:]]
    return inputs, ["logits"] + ["next_" + n for n in inputs[1:]]


def step_specs(step_model, batch_size: int | None = 1):
    """`tf.TensorSpec`s for a step model's inputs (token int32, then float32 states)."""
    names, _ = step_names(step_model)
    specs = [tf.TensorSpec((batch_size,), tf.int32, name=names[0])]
    for name, t in zip(names[1:], step_model.inputs[1:]):
        specs.append(tf.TensorSpec((batch_size, int(t.shape[-1])), tf.float32, name=name))
    return specs


class TFLiteStep:
    """The exported TFLite step model as a step function (batch 1; a batch of B rows runs row by row).

    Args:
        source: ``.tflite`` path or flatbuffer bytes.
    """

    traceable = False

    def __init__(self, source):
        self.runner = tflite_mod.open_signature(source)
        details = self.runner.get_input_details()
        self.state_names = sorted(n for n in details if n != "token")
        self.state_sizes = [int(details[n]["shape"][-1]) for n in self.state_names]

    def initial_states(self, batch: int) -> list:
        return [np.zeros((batch, s), np.float32) for s in self.state_sizes]

    def __call__(self, tokens, states):
        tokens = np.asarray(tokens, np.int32).reshape(-1)
        states = [np.asarray(s, np.float32) for s in states]
        logits, new = [], [[] for _ in self.state_names]
        for b in range(len(tokens)):
            out = self.runner(token=tokens[b:b + 1], **{n: s[b:b + 1] for n, s in zip(self.state_names, states)})
            logits.append(out["logits"])
            for i, n in enumerate(self.state_names):
                new[i].append(out["next_" + n])
        return np.concatenate(logits), [np.concatenate(v) for v in new]


class SavedModelStep:
    """The SavedModel ``step`` signature as a step function (batched, run eagerly)."""

    traceable = False

    def __init__(self, loaded):
        self.loaded = loaded
        self.fn = loaded.signatures["step"]
        _, inputs = self.fn.structured_input_signature
        self.state_names = sorted(n for n in inputs if n != "token")
        self.state_sizes = [int(inputs[n].shape[-1]) for n in self.state_names]

    def initial_states(self, batch: int) -> list:
        return [np.zeros((batch, s), np.float32) for s in self.state_sizes]

    def __call__(self, tokens, states):
        out = self.fn(token=tf.reshape(tf.cast(tokens, tf.int32), [-1]),
                      **{n: tf.convert_to_tensor(s, tf.float32) for n, s in zip(self.state_names, states)})
        return out["logits"].numpy(), [out["next_" + n].numpy() for n in self.state_names]


def step_logits(step, x: np.ndarray) -> np.ndarray:
    """Feed token sequences `x` (N, T) through `step` from zero states; logits (N, T, V)."""
    states = step.initial_states(len(x))
    out = []
    for t in range(x.shape[1]):
        logits, states = step(x[:, t].astype(np.int32), states)
        out.append(np.asarray(logits))
    return np.stack(out, axis=1)


# ------------------------------------------------------------------ contract


def side_files(run, samples, directory: Path) -> dict:
    """Write ``vocab.json``; return the manifest's vocabulary, tokenisation and sampling fields."""
    vocab = {"chars": list(run.vocab["chars"]), "unknown_char_policy": run.vocab.get("unknown_char_policy", "error")}
    (directory / "vocab.json").write_text(json.dumps(vocab, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return {"vocabulary_file": "vocab.json", "tokenization": {
        "kind": "characters",
        "rule": "one token per Unicode code point; token id = index in vocab.json 'chars'",
        "vocab_size": len(vocab["chars"]),
        "unknown_char_policy": vocab["unknown_char_policy"],
    }, "sampling_defaults": {k: v for k, v in run.info.get("recipe", {}).get("eval", {}).items()
                             if k in SAMPLING_FALLBACKS}}


def keras_parity(run, loaded, samples) -> dict:
    """The reloaded ``.keras`` model's whole-sequence logits vs the run's model."""
    x, y = _parity_data(samples)
    ref, out = np.asarray(run.model(x, training=False)), np.asarray(loaded(x, training=False))
    return parity_mod.distribution_metrics(ref, out, y)


def parity(run, runner, samples) -> dict:
    """The Keras model's whole-sequence logits vs `runner`'s step function fed token by token."""
    x, y = _parity_data(samples)
    ref = np.asarray(run.model(x, training=False))
    return parity_mod.distribution_metrics(ref, step_logits(runner.step, x), y)


def _parity_data(samples):
    return (np.asarray(samples["x"][:PARITY_SEQUENCES], np.int32),
            np.asarray(samples["y"][:PARITY_SEQUENCES], np.int32))


def savedmodel(run) -> tuple[list, list, dict]:
    """SavedModel endpoints (``step``, ``generate``, ``generate_seeded``), tracked objects, manifest notes."""
    step = KerasStep(run.model)
    names, outputs = step_names(step.model)
    chars = list(run.vocab["chars"])
    policy = run.vocab.get("unknown_char_policy", "error")

    def step_fn(*args):
        return dict(zip(outputs, step.model(list(args), training=False)))

    def generate_seeded(seed, length, temperature, top_k, top_p, random_seed):
        ids = encode_in_graph(seed, chars, policy)
        states = [tf.zeros((1, s)) for s in step.state_sizes]
        new = sample_loop(step, ids, states, tf.maximum(length, 0), tf.maximum(temperature, 1e-6), top_k, top_p,
                          random_seed, temperature <= 0.0)
        vocab = tf.constant(chars)
        text = tf.strings.reduce_join(tf.gather(vocab, tf.concat([ids, new[0]], axis=0)))
        return {"text": text}

    def generate(seed, length, temperature):
        random_seed = tf.random.uniform((), 0, 2 ** 31 - 1, dtype=tf.int32)
        return generate_seeded(seed, length, temperature, tf.constant(0), tf.constant(1.0), random_seed)

    scalar = lambda dtype, name: tf.TensorSpec((), dtype, name=name)  # noqa: E731
    endpoints = [
        ("step", step_fn, step_specs(step.model, None)),
        ("generate", generate, [scalar(tf.string, "seed"), scalar(tf.int32, "length"),
                                scalar(tf.float32, "temperature")]),
        ("generate_seeded", generate_seeded, [scalar(tf.string, "seed"), scalar(tf.int32, "length"),
                                              scalar(tf.float32, "temperature"), scalar(tf.int32, "top_k"),
                                              scalar(tf.float32, "top_p"), scalar(tf.int32, "random_seed")]),
    ]
    notes = {"notes": "step: start from zero states, feed one token per call, pass next_* back as the states; "
                      f"generate/generate_seeded: unknown seed characters follow the policy {policy!r}, "
                      "temperature <= 0 is greedy, top_k 0 and top_p 1 are off; generate draws a fresh "
                      "random seed per call, generate_seeded is reproducible (stateless draws seeded by "
                      "(random_seed, step))"}
    return endpoints, [run.model, step.model], notes


def savedmodel_checks(run, samples, loaded) -> dict:
    """``generate_seeded`` gives the Keras sampler's text (greedy, and seeded with top-k)."""
    chars = list(run.vocab["chars"])
    seed_text = decode(samples["x"][0][:8], chars)
    keras_sampler = Sampler(run.model, chars, jit_compile=False)
    fn = loaded.signatures["generate_seeded"]
    same = True
    for temperature, top_k in ((0.0, 0), (0.9, 5)):
        want = keras_sampler.generate(seed_text, 16, 1, temperature, top_k, 1.0, seed=7, unknown="skip")[0]
        got = fn(seed=tf.constant(seed_text), length=tf.constant(16), temperature=tf.constant(temperature),
                 top_k=tf.constant(top_k), top_p=tf.constant(1.0), random_seed=tf.constant(7))["text"]
        same = same and got.numpy().decode("utf-8") == want
    return {"generate_matches_keras": bool(same)}


def tflite(run, samples) -> tuple:
    """``(concrete function, representative dataset, info)``: the batch-1 streaming step model."""
    step = KerasStep(run.model, batch_size=1)
    names, outputs = step_names(step.model)
    concrete = tflite_mod.frozen_function(step.model, step_specs(step.model, 1), outputs)
    examples = _step_trajectories(step, names, np.asarray(samples["x"]))

    def representative():
        yield from examples

    return concrete, representative, {"kind": "step", "batch_size": 1}


def _step_trajectories(step, names, x: np.ndarray, max_examples: int = 256) -> list[dict]:
    """Step-model inputs seen while feeding sample sequences `x` (N, T): calibration data."""
    rows = x[: max(1, min(len(x), 16))].astype(np.int32)
    out = []
    states = step.initial_states(len(rows))
    for t in range(rows.shape[1]):
        token = rows[:, t]
        for b in range(len(rows)):
            out.append({names[0]: token[b:b + 1], **{n: s[b:b + 1] for n, s in zip(names[1:], states)}})
        _, states = step(token, states)
        states = [np.asarray(s) for s in states]
    stride = max(1, len(out) // max_examples)
    return out[::stride][:max_examples]


def open_runner(fmt: str, path, manifest: dict, directory: Path):
    """A `kerasrnn.sampling.Sampler` over the artifact's step function.

    Args:
        fmt: ``"tflite"`` (path = the ``.tflite`` file or its bytes) or ``"savedmodel"`` (path = loaded SavedModel).
        manifest: the export's manifest fields (vocabulary file).
        directory: the export directory.
    """
    vocab = json.loads((Path(directory) / manifest["vocabulary_file"]).read_text(encoding="utf-8"))
    step = TFLiteStep(path) if fmt == "tflite" else SavedModelStep(path)
    return Sampler(step, vocab["chars"])
