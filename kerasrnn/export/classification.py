"""Export contract of text classification runs: vocabulary + rule, batched TFLite, signatures, parity.

The saved classifier takes raw strings and has a ``TextVectorization`` layer
named ``vectorizer`` (the classification task's contract). Artifacts:

- ``vocabulary.txt`` (line i = token id i) and, in the manifest, the exact
  tokenisation rule (`kerasrnn.export.tokenizer`): string lookup has no builtin
  TFLite kernel, so the TFLite model takes token ids and an app tokenises in
  its own language; the export proves the rule reproduces the
  ``TextVectorization`` ids on every sample text (else nothing is written).
- SavedModel: ``classify(text: string (B,)) -> {"probs": (B, C)}`` — raw
  strings in, the model's own ``TextVectorization`` inside the graph.
- TFLite: ``token_ids (B, L) int32 -> probs (B, C)`` with a **dynamic batch
  and length** L <= max_len (the recurrent loops are traced as builtins-only
  while loops, `kerasrnn.export.tflite.while_loops`): everything from the
  vectorizer's output to the model's output, whatever the architecture in
  between. Right padding (id 0) is masked, so trailing padding may be cut:
  the runner sorts sentences by length, batches them and trims each batch to
  its longest sentence (same probabilities, far fewer loop steps). With
  ``fold_embedding`` (``kerasrnn export --fold-embedding``) the embedding and
  the first recurrent layer's input projection are one table per direction:
  the same signature and probabilities, faster at every batch size, a larger file.

Parity: class probabilities on the run's sample texts (the TFLite path
tokenises in plain Python, so the whole app pipeline is checked). `GATES`:

- float32: max :math:`|\\Delta p|` <= 1e-4;
- float16: max :math:`|\\Delta p|` <= 0.01, argmax agreement >= 0.99, accuracy drop <= 0.005;
- int8: argmax agreement >= 0.95, accuracy drop <= 0.02, loss (NLL) increase <= 0.02.

>>> clf = open_runner("tflite", "export/tflite/model.tflite", manifest, "export/tflite")  # doctest: +SKIP
>>> clf.predict_proba(["a gorgeous, witty film", "tedious and flat"])  # doctest: +SKIP
"""

from __future__ import annotations

# TensorFlow, Keras and LiteRT are imported at the top: only the commands that export or run an
# artifact import this module (`kerasrnn --help` never does).

import contextlib
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from kerasrnn.errors import UserError
from kerasrnn.export import parity as parity_mod
from kerasrnn.export import tflite as tflite_mod
from kerasrnn.export.interpreter_pool import InterpreterPool
from kerasrnn.export.tokenizer import RULE, Tokenizer, write_vocabulary

BATCH_SIZE = 32
#: Keyword options of `tflite` that `kerasrnn export` accepts for classification runs.
TFLITE_OPTIONS = ("fold_embedding",)
GATES = {
    "float32": {"max_abs_diff": ("<=", 1e-4)},
    "float16": {"max_abs_diff": ("<=", 0.01), "argmax_agreement": (">=", 0.99), "accuracy_drop": ("<=", 0.005)},
    "int8": {"argmax_agreement": (">=", 0.95), "accuracy_drop": ("<=", 0.02), "loss_increase": ("<=", 0.02)},
}


def _contract_layer(model, name: str, kind: str, fix: str, context: str = ""):
    """`model`'s layer `name` that the classification task's contract promises, else a one-line `UserError`."""
    try:
        return model.get_layer(name)
    except ValueError:
        raise UserError(f"{context}classifier model {model.name!r} has no {kind} layer named {name!r}; {fix}") from None


def _vectorizer(model):
    return _contract_layer(model, "vectorizer", "TextVectorization",
                           "re-train it with a kerasrnn classification recipe")


def _texts(samples) -> list[str]:
    return np.asarray(samples["text"]).astype(str).tolist()


def side_files(run, samples, directory: Path) -> dict:
    """Write ``vocabulary.txt``; check the tokenisation rule on the samples; return manifest fields.

    Raises:
        UserError: the exported vocabulary and rule do not reproduce the model's ids.
    """
    vectorizer = _vectorizer(run.model)
    vocabulary = [str(t) for t in vectorizer.get_vocabulary()]
    write_vocabulary(directory / "vocabulary.txt", vocabulary)
    max_len = int(run.info["max_len"])
    labels = (run.labels or {}).get("class_names") or [str(i) for i in range(int(run.info["num_classes"]))]
    check = tokenizer_agreement(vectorizer, Tokenizer(vocabulary, max_len), _texts(samples))
    if check["agreement"] < 1.0:
        raise UserError(f"the exported vocabulary and rule do not reproduce the model's tokenisation "
                        f"(e.g. {check['first_mismatch']!r}); nothing was written; report this with the run directory")
    return {"vocabulary_file": "vocabulary.txt", "class_names": list(labels),
            "tokenization": {**RULE, "max_len": max_len, "vocab_size": len(vocabulary), "padding_id": 0, "oov_id": 1},
            "tokenizer_check": check}


def tokenizer_agreement(vectorizer, tokenizer: Tokenizer, texts: list[str]) -> dict:
    """Fraction of `texts` whose pure-Python ids equal the ``TextVectorization`` ids."""
    ref = np.asarray(vectorizer(texts))
    mine = np.array(tokenizer.encode_batch(texts), dtype=ref.dtype).reshape(ref.shape)
    same = (mine == ref).all(axis=1)
    return {"n": len(texts), "agreement": float(same.mean()),
            "first_mismatch": None if same.all() else texts[int(np.argmin(same))][:200]}


def _metrics(run, predict_proba, samples) -> dict:
    texts = _texts(samples)
    ref = np.asarray(run.model(tf.constant(texts), training=False))
    out = np.asarray(predict_proba(texts))
    return parity_mod.distribution_metrics(ref, out, np.asarray(samples["y"], np.int32), parity_mod.nll_from_probs,
                                           "probabilities")


def keras_parity(run, loaded, samples) -> dict:
    """The reloaded ``.keras`` model's probabilities vs the run's model."""
    return _metrics(run, lambda texts: loaded(np.asarray(texts), training=False), samples)


def parity(run, runner, samples) -> dict:
    """The run's model vs `runner.predict_proba` on the sample texts."""
    return _metrics(run, runner.predict_proba, samples)


def savedmodel(run) -> tuple[list, list, dict]:
    """The ``classify`` endpoint, tracked objects and manifest notes."""
    model = run.model

    def classify(text):
        return {"probs": model(text, training=False)}

    return [("classify", classify, [tf.TensorSpec((None,), tf.string, name="text")])], [model], {}


def ids_model(model, max_len: int, batch_size: int | None = None):
    """The classifier after its vectorizer: ``token_ids (B, max_len) int32 -> probs``.

    The subgraph from the vectorizer's output to the model's output, reusing the
    trained layers (shared weights); id 0 is padding, masked as after the
    ``TextVectorization``.
    """
    inner = keras.Model(_vectorizer(model).output, model.outputs[0], name="classifier_after_vectorizer")
    ids = keras.Input(batch_shape=(batch_size, max_len), dtype="int32", name="token_ids")
    return keras.Model(ids, inner(ids), name="classifier_ids")


#: What ``fold_embedding`` records in the manifest (`tflite`).
FOLDED_NOTE = ("the embedding and the first recurrent layer's input projection are one (vocabulary, gates) table per "
               "direction, read with GATHER: no input FULLY_CONNECTED; same probabilities, larger file")


def _embedding(model):
    """The run model's ``Embedding`` named ``embedding`` (the classification task's contract)."""
    return _contract_layer(model, "embedding", "Embedding", "export without fold_embedding", context="fold_embedding: ")


def folded_layers(model) -> list:
    """The recurrent layers ``fold_embedding`` folds in the run model `model` (`tflite`; the bench's bound)."""
    return tflite_mod.first_recurrent_layers(model, _embedding(model))


def tflite(run, samples, fold_embedding: bool = False) -> tuple:
    """``(concrete function, None, info)``: the ids model, dynamic batch and length (no full-integer: a loop).

    With `fold_embedding`, the embedding and the first recurrent layer's input
    projection become one table per direction (`kerasrnn.export.tflite.folded_embedding`):
    faster at every batch size (polarity BiGRU 64, one interpreter: 1.21x at batch 1,
    1.73x at batch 32), for a file about 2.8x larger.
    """
    model = ids_model(run.model, None)  # shares run.model's layers, its embedding included
    folding = (tflite_mod.folded_embedding(model, _embedding(run.model)) if fold_embedding
               else contextlib.nullcontext())
    with tflite_mod.while_loops(model), folding:
        concrete = tflite_mod.frozen_function(model, [tf.TensorSpec((None, None), tf.int32, name="token_ids")],
                                              ["probs"])
    info = {"kind": "classifier", "batch_size": "dynamic",
            "sequence_length": f"dynamic, at most max_len = {int(run.info['max_len'])}; trailing "
                               "padding (0) is masked and may be trimmed",
            "fold_embedding": bool(fold_embedding)}
    if fold_embedding:
        info["fold_embedding_note"] = FOLDED_NOTE
    return concrete, None, info


class Classifier:
    """``predict_proba(texts) -> (N, C)`` over an exported classifier, in batches.

    TFLite: texts are tokenised in Python with the exported vocabulary and rule,
    sorted by length (longest first), run `batch_size` at a time with each batch trimmed to its
    longest sentence (padding is masked: the same probabilities, fewer steps),
    the batches spread over `workers` LiteRT interpreters running concurrently
    (`kerasrnn.export.interpreter_pool`), and returned in the input order.
    SavedModel: raw strings go to the ``classify`` signature, `batch_size` at a
    time.

    Args:
        fmt: ``"tflite"`` or ``"savedmodel"``.
        model: ``.tflite`` path/bytes, or the loaded SavedModel.
        class_names: label names, index = class id.
        tokenizer: the exported `Tokenizer` (TFLite only).
        batch_size: sentences per call (default 32).
        workers: TFLite only: interpreters running batches concurrently
            (default: the usable cores, at most 2; 1 = one interpreter, one thread).
    """

    def __init__(self, fmt: str, model, class_names, tokenizer: Tokenizer | None = None,
                 batch_size: int = BATCH_SIZE, workers: int | None = None):
        if batch_size < 1:
            raise UserError(f"batch_size must be at least 1, got {batch_size}")
        self.fmt = fmt
        self.batch_size = int(batch_size)
        self.class_names = list(class_names)
        self.tokenizer = tokenizer
        if fmt == "tflite":
            self.runner = InterpreterPool(model, workers)
            length = self.runner.get_input_details()["token_ids"].get("shape_signature", [-1, -1])[1]
            self.fixed_length = int(length) if length > 0 else None  # exports before dynamic length: no trimming
        else:
            self.fn = model.signatures["classify"]

    def predict_ids(self, ids) -> np.ndarray:
        """TFLite only: probabilities for right-padded token ids (N, L)."""
        ids = np.asarray(ids, np.int32)
        lengths = np.maximum(1, (ids != 0).sum(axis=1))
        if self.fixed_length:
            ids = np.pad(ids, ((0, 0), (0, max(0, self.fixed_length - ids.shape[1]))))[:, : self.fixed_length]
            lengths[:] = self.fixed_length
        if not len(ids):
            raise UserError("no texts to classify: give at least one")
        # Longest batches first: the pool's workers take the next batch from a queue, so the batches left
        # at the end are the shortest and the interpreters finish together (ascending, one worker ran the
        # longest batch alone), and each interpreter's tensors only shrink from call to call. Measured on
        # the polarity BiGRU against ascending order: 2 interpreters +10-23% sentences/s at batch 32 and
        # +13-41% at batch 1, 1 interpreter +2-7% (README "The loop body, trimmed").
        order = np.argsort(-lengths, kind="stable")
        batches = [order[start:start + self.batch_size] for start in range(0, len(ids), self.batch_size)]
        outs = self.runner.map([{"token_ids": ids[rows, : int(lengths[rows].max())]} for rows in batches])
        probs = np.empty((len(ids), outs[0]["probs"].shape[-1]), np.float32)
        for rows, out in zip(batches, outs):
            probs[rows] = out["probs"]
        return probs

    def predict_proba(self, texts) -> np.ndarray:
        """Class probabilities (N, C) for raw strings."""
        texts = [str(t) for t in texts]
        if not texts:
            raise UserError("no texts to classify: give at least one")
        if self.fmt == "tflite":
            return self.predict_ids(self.tokenizer.encode_array(texts))

        return np.concatenate([self.fn(text=tf.constant(texts[i:i + self.batch_size], tf.string))["probs"].numpy()
                               for i in range(0, len(texts), self.batch_size)])


def open_runner(fmt: str, model, manifest: dict, directory: Path, batch_size: int = BATCH_SIZE,
                workers: int | None = None) -> Classifier:
    """A `Classifier` over the artifact (see there); the TFLite tokenizer comes from the exported vocabulary."""
    tokenizer = None
    if fmt == "tflite":
        tokenizer = Tokenizer.from_file(Path(directory) / manifest["vocabulary_file"],
                                        int(manifest["tokenization"]["max_len"]))
    return Classifier(fmt, model, manifest.get("class_names") or [], tokenizer, batch_size, workers)
