"""Run exported artifacts (TFLite / SavedModel) with the same interface as the Keras path.

- `StepSampler` has `kerasrnn.sampling.Sampler`'s ``generate(...)``: same
  options, same per-step filtering (`kerasrnn.sampling.filter_logits`) and the
  same seeded draw (``stateless_categorical`` seeded by ``(seed, step)``), so a
  seed gives the same text from the TFLite file, the SavedModel and
  ``Sampler(..., jit_compile=False)`` (up to float rounding of near-ties). The
  default XLA-compiled Sampler draws other random numbers for the same seed
  (XLA's stateless RNG differs from the eager kernel), so its text differs.
  Its step function is the TFLite step model (via
  ``ai_edge_litert.interpreter.Interpreter``) or the SavedModel ``step``
  signature (via ``tf.saved_model.load``).
- `Classifier.predict_proba(texts)` and `Forecaster.predict(windows)` likewise.

Every export directory holds a ``manifest.json``; `open_artifact` reads it to
find the task, the vocabulary and the tokenisation.

>>> sampler = open_artifact("saved_models/run/export/tflite/model.tflite")  # doctest: +SKIP
>>> sampler.generate("ROMEO:", length=100, temperature=0.8, seed=1)  # doctest: +SKIP
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from kerasrnn.errors import UserError

MANIFEST = "manifest.json"


# ------------------------------------------------------------------ steps


class TFLiteStep:
    """The TFLite step model: ``(tokens (B,), states) -> (logits (B, V), states)``.

    The flatbuffer has batch 1; a batch of B rows is run row by row.
    """

    def __init__(self, path):
        from ai_edge_litert.interpreter import Interpreter

        self.interpreter = Interpreter(model_path=str(path))
        self.runner = self.interpreter.get_signature_runner("serving_default")
        details = self.runner.get_input_details()
        self.state_names = sorted(n for n in details if n != "token")
        self.state_sizes = {n: int(details[n]["shape"][-1]) for n in self.state_names}

    def initial_states(self, batch: int) -> dict:
        return {n: np.zeros((batch, s), np.float32) for n, s in self.state_sizes.items()}

    def __call__(self, tokens, states: dict):
        tokens = np.asarray(tokens, np.int32).reshape(-1)
        logits, new = [], {n: [] for n in self.state_names}
        for b in range(len(tokens)):
            out = self.runner(token=tokens[b:b + 1], **{n: states[n][b:b + 1] for n in self.state_names})
            logits.append(out["logits"])
            for n in self.state_names:
                new[n].append(out["next_" + n])
        return np.concatenate(logits), {n: np.concatenate(v) for n, v in new.items()}


class SavedModelStep:
    """The SavedModel ``step`` signature, batched."""

    def __init__(self, directory):
        import tensorflow as tf

        self.loaded = tf.saved_model.load(str(directory))
        self.fn = self.loaded.signatures["step"]
        _, inputs = self.fn.structured_input_signature
        self.state_names = sorted(n for n in inputs if n != "token")
        self.state_sizes = {n: int(inputs[n].shape[-1]) for n in self.state_names}

    def initial_states(self, batch: int) -> dict:
        return {n: np.zeros((batch, s), np.float32) for n, s in self.state_sizes.items()}

    def __call__(self, tokens, states: dict):
        import tensorflow as tf

        out = self.fn(token=tf.constant(np.asarray(tokens, np.int32).reshape(-1)),
                      **{n: tf.constant(states[n]) for n in self.state_names})
        return out["logits"].numpy(), {n: out["next_" + n].numpy() for n in self.state_names}


class KerasStep:
    """The Keras step model (`kerasrnn.streaming.build_step_model`) with the runners' step interface."""

    def __init__(self, model):
        from kerasrnn.export.tflite import step_model, step_names

        self.model = step_model(model, batch_size=None)
        names, _ = step_names(self.model)
        self.state_names = names[1:]
        self.state_sizes = {n: int(t.shape[-1]) for n, t in zip(names[1:], self.model.inputs[1:])}

    def initial_states(self, batch: int) -> dict:
        return {n: np.zeros((batch, s), np.float32) for n, s in self.state_sizes.items()}

    def __call__(self, tokens, states: dict):
        out = self.model([np.asarray(tokens, np.int32).reshape(-1), *(states[n] for n in self.state_names)],
                         training=False)
        return np.asarray(out[0]), {n: np.asarray(v) for n, v in zip(self.state_names, out[1:])}


def step_logits(step, x: np.ndarray) -> np.ndarray:
    """Feed token sequences `x` (N, T) through `step` from zero states; logits (N, T, V)."""
    states = step.initial_states(len(x))
    out = []
    for t in range(x.shape[1]):
        logits, states = step(x[:, t], states)
        out.append(logits)
    return np.stack(out, axis=1)


class StepSampler:
    """`kerasrnn.sampling.Sampler`'s interface over an exported step model.

    Args:
        step: a `TFLiteStep` or `SavedModelStep`.
        chars: the vocabulary (index = token id).
    """

    def __init__(self, step, chars: list[str]):
        self.step = step
        self.chars = list(chars)

    def sample_ids(self, seed_ids, length: int, num_samples: int = 1, temperature: float = 1.0,
                   top_k: int = 0, top_p: float = 1.0, seed: int = 0) -> np.ndarray:
        """Token ids (num_samples, length) after `seed_ids` (as `Sampler.sample_ids`)."""
        import tensorflow as tf

        from kerasrnn.sampling import filter_logits, validate_options

        if not seed_ids:
            raise UserError("the seed text is empty (after dropping unknown characters); give at least one "
                            "character that is in the vocabulary")
        validate_options(length, num_samples, temperature, top_k, top_p)
        states = self.step.initial_states(num_samples)
        for token in seed_ids[:-1]:
            _, states = self.step(np.full(num_samples, token, np.int32), states)
        token = np.full(num_samples, seed_ids[-1], np.int32)
        out = np.zeros((num_samples, length), np.int32)
        temp = np.float32(max(temperature, 1e-6))
        for i in range(length):
            logits, states = self.step(token, states)
            if temperature <= 0:
                token = np.argmax(logits, axis=-1).astype(np.int32)
            else:
                filtered = filter_logits(tf.constant(logits, tf.float32) / temp, top_k, top_p)
                token = tf.random.stateless_categorical(filtered, 1, seed=tf.constant([seed, i], tf.int32),
                                                        dtype=tf.int32)[:, 0].numpy()
            out[:, i] = token
        return out

    def generate(self, seed_text: str, length: int = 200, num_samples: int = 1, temperature: float = 1.0,
                 top_k: int = 0, top_p: float = 1.0, seed: int = 0, unknown: str = "error") -> list[str]:
        """Seed + continuation strings, exactly like `kerasrnn.sampling.Sampler.generate`."""
        from kerasrnn.sampling import decode, encode

        ids = encode(seed_text, self.chars, unknown)
        kept = decode(ids, self.chars)
        out = self.sample_ids(ids, length, num_samples, temperature, top_k, top_p, seed)
        return [kept + decode(row, self.chars) for row in out]


# ------------------------------------------------------------- classifier


class Classifier:
    """``predict_proba(texts) -> (N, C)`` over an exported classifier.

    TFLite: texts are tokenised in Python with the exported vocabulary and rule
    (`kerasrnn.export.tokenizer`), then run one by one (batch 1).
    SavedModel: raw strings go to the ``classify`` signature.
    """

    def __init__(self, kind: str, path, manifest: dict):
        self.kind = kind
        self.class_names = list(manifest.get("class_names") or [])
        if kind == "tflite":
            self.max_len = int(manifest["tokenization"]["max_len"])
            from ai_edge_litert.interpreter import Interpreter

            from kerasrnn.export.tokenizer import Tokenizer

            self.tokenizer = Tokenizer.from_file(Path(path).parent / manifest["vocabulary_file"], self.max_len)
            self.interpreter = Interpreter(model_path=str(path))
            self.runner = self.interpreter.get_signature_runner("serving_default")
        else:
            import tensorflow as tf

            self.loaded = tf.saved_model.load(str(path))
            self.fn = self.loaded.signatures["classify"]

    def predict_ids(self, ids: np.ndarray) -> np.ndarray:
        """TFLite only: probabilities for token ids (N, max_len)."""
        ids = np.asarray(ids, np.int32)
        return np.concatenate([self.runner(token_ids=ids[i:i + 1])["probs"] for i in range(len(ids))])

    def predict_proba(self, texts) -> np.ndarray:
        """Class probabilities (N, C) for raw strings."""
        texts = [str(t) for t in texts]
        if self.kind == "tflite":
            return self.predict_ids(np.array(self.tokenizer.encode_batch(texts), np.int32).reshape(-1, self.max_len))
        import tensorflow as tf

        return self.fn(text=tf.constant(texts, tf.string))["probs"].numpy()


# ------------------------------------------------------------- forecaster


class Forecaster:
    """``predict(windows (N, W, 1) scaled) -> (N, 1) scaled`` over an exported forecaster."""

    def __init__(self, kind: str, path, manifest: dict):
        self.kind = kind
        self.scaler = manifest.get("scaler")
        if kind == "tflite":
            from ai_edge_litert.interpreter import Interpreter

            self.interpreter = Interpreter(model_path=str(path))
            self.runner = self.interpreter.get_signature_runner("serving_default")
        else:
            import tensorflow as tf

            self.loaded = tf.saved_model.load(str(path))
            self.fn = self.loaded.signatures["forecast"]

    def predict(self, windows) -> np.ndarray:
        windows = np.asarray(windows, np.float32)
        if self.kind == "tflite":
            return np.concatenate([self.runner(window=windows[i:i + 1])["forecast"] for i in range(len(windows))])
        import tensorflow as tf

        return self.fn(window=tf.constant(windows))["forecast"].numpy()


# ------------------------------------------------------------------ open


def read_manifest(directory) -> dict:
    """The ``manifest.json`` of an export directory (`UserError` if missing)."""
    path = Path(directory) / MANIFEST
    if not path.is_file():
        raise UserError(f"{Path(directory)} has no {MANIFEST}; pass a file or folder written by "
                        "`kerasrnn export RUN_DIR --format tflite|savedmodel`")
    return json.loads(path.read_text(encoding="utf-8"))


def open_artifact(path, expect_task: str | None = None, manifest: dict | None = None):
    """A runner for an exported ``.tflite`` file or SavedModel directory.

    Args:
        path: ``.../export/tflite*/model.tflite`` or ``.../export/savedmodel/``.
        expect_task: if given, the artifact must be of this task (else `UserError`).
        manifest: the manifest dict (default: read from beside `path`).

    Returns:
        `StepSampler` (generation), `Classifier` or `Forecaster`.
    """
    path = Path(path)
    if path.is_dir():
        kind, directory = "savedmodel", path
        if not (path / "saved_model.pb").is_file():
            raise UserError(f"{path} is not a SavedModel directory (no saved_model.pb); pass "
                            "saved_models/<run>/export/savedmodel")
    elif path.suffix == ".tflite" and path.is_file():
        kind, directory = "tflite", path.parent
    else:
        raise UserError(f"{path} is neither a .tflite file nor a SavedModel directory; pass "
                        "saved_models/<run>/export/tflite/model.tflite or .../export/savedmodel")
    manifest = manifest if manifest is not None else read_manifest(directory)
    task = manifest.get("task")
    if expect_task and task != expect_task:
        raise UserError(f"{path} is a {task!r} export, not a {expect_task!r} one; pass an export of a "
                        f"{expect_task} run")
    if task == "generation":
        vocab = json.loads((directory / manifest["vocabulary_file"]).read_text(encoding="utf-8"))
        step = TFLiteStep(path) if kind == "tflite" else SavedModelStep(path)
        return StepSampler(step, vocab["chars"])
    if task == "classification":
        return Classifier(kind, path, manifest)
    if task == "forecasting":
        return Forecaster(kind, path, manifest)
    raise UserError(f"{path}: manifest task {task!r} is not one of generation, classification, forecasting")


# ------------------------------------------------------------------ CLI glue


def cli_artifact(run_dir, tflite, savedmodel, task: str):
    """For `kerasrnn generate|classify`: the runner and manifest of ``--tflite``/``--savedmodel``, or None.

    Raises:
        UserError: both options given, or neither an artifact nor a RUN_DIR.
    """
    if tflite and savedmodel:
        raise UserError("give --tflite or --savedmodel, not both")
    if not (tflite or savedmodel):
        if not run_dir:
            raise UserError("give a RUN_DIR (saved_models/<run>), or an exported artifact with --tflite FILE "
                            "or --savedmodel DIR")
        return None
    path = Path(tflite or savedmodel)
    directory = path if savedmodel else path.parent
    manifest = read_manifest(directory)
    return open_artifact(path, expect_task=task, manifest=manifest), manifest


def generate_with_artifact(sampler: StepSampler, manifest: dict, seed_text, length, temperature, top_k, top_p,
                           num_samples, seed, unknown) -> list[str]:
    """`kerasrnn generate --tflite/--savedmodel`: the Keras path's options and defaults, on the artifact."""
    from kerasrnn.sampling import encode, validate_options

    defaults = manifest.get("sampling_defaults", {})
    seed_text = defaults.get("seed_text", "\n") if seed_text is None else seed_text
    temperature = defaults.get("temperature", 1.0) if temperature is None else temperature
    unknown = unknown or manifest.get("tokenization", {}).get("unknown_char_policy", "error")
    validate_options(length, num_samples, temperature, top_k, top_p)
    encode(seed_text, sampler.chars, unknown)
    return sampler.generate(seed_text, length, num_samples, temperature, top_k, top_p, seed, unknown)
