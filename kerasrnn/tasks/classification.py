"""Text classification (sentiment and multi-class) from raw strings.

Model (the run-directory contract): ``text`` (string) → ``TextVectorization``
named ``vectorizer`` (adapted on the training part only) → ``Embedding(mask_zero=True)``
named ``embedding`` → optional ``TokenDropout`` → ``PhiloxDropout`` → recurrent layers
``rnn_i`` (optionally ``Bidirectional``) → optional ``ConcatPooling`` (``model.pooling =
"concat"``: last state ; masked max ; masked mean) → ``Dense(num_classes, softmax,
name="probs")``. Binary tasks are 2-class softmax. From ``embedding`` on, the model is a
chain of single-input layers (the exporter replays it on token ids).

Training runs on a twin model that starts at the token ids (same layer objects,
so the same weights): the strings are vectorised in the `tf.data` pipeline,
which lets the recurrent part train under XLA (string ops cannot be compiled).
The saved ``model.keras`` takes raw strings.

Evaluation (``[eval]``):

- ``folds = 0``: one train/validation/test split (``data.fractions``, or separate
  ``data.val_path`` / ``data.test_path`` files). Test metrics: accuracy, per-class
  precision/recall/F1, their macro averages and the confusion matrix (rows = true
  class, columns = predicted), also drawn in ``confusion_matrix.png``.
- ``folds = K >= 2``: stratified K-fold cross-validation (`kerasrnn.tasks.folds`).
  Fold k trains on the other K−1 parts, early-stops on a stratified
  ``eval.val_fraction`` slice carved from them and tests on part k, so every
  example is tested exactly once and never used to pick an epoch.
  ``metrics.json["cv"]`` holds per-fold accuracy and macro-F1 with mean ± std
  (sample std over folds) and the confusion matrix pooled over the folds. Each
  finished fold leaves ``folds/fold_KK/result.json`` in the work directory, so
  ``--resume`` skips it (and an interrupted fold resumes from its own checkpoints).
  **The model the run directory keeps** is then trained by the same procedure on
  all examples: a stratified ``eval.val_fraction`` slice for early stopping, the
  rest for training. It has no test number of its own: the CV mean estimates it.
- ``baseline = true`` (default) trains the TF-IDF uni+bigram softmax model of
  `kerasrnn.tasks.ngram_baseline` on the very same splits/folds and reports it in
  ``metrics.json["baseline"]`` and on the console beside the recurrent model.
  ``metrics.json["ensemble"]`` is the mean of the two models' test probabilities
  (equal weights, nothing tuned): a measurement of what combining them gives,
  not a model the run directory keeps (``model.keras`` is the recurrent model).

``model.init_from = "saved_models/<run>"`` starts from another run's vocabulary,
embedding and recurrent weights (a classification run on related data, or any run
whose model has a word ``vectorizer``, ``embedding`` and ``rnn_i`` layers of the same
shapes): the vectorizer takes that run's vocabulary instead of adapting, and the
classifier head is new. Anything incompatible is a one-line error.

``model.pretrain_epochs = N`` instead pretrains the embedding and recurrent layers as
a word language model (forward units predict the next word, backward units the
previous one) on the training texts plus the unlabelled ``data.pretrain_paths``,
early-stopped on the validation texts, then fine-tunes the whole classifier
(`pretrain_language_model`). In cross-validation each fold pretrains on its own
training part only, so no test sentence is ever seen, even unlabelled.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import dataclasses

import keras
import numpy as np

from kerasrnn import atomic, data, rundir, train
from kerasrnn.data.files import expand_paths, read_text_file
from kerasrnn.dropout import PhiloxDropout, TokenDropout
from kerasrnn.errors import UserError
from kerasrnn.plots import pyplot, save_png
from kerasrnn.pooling import ConcatPooling
from kerasrnn.recipes import RunConfig, section
from kerasrnn.rundir import load_run
from kerasrnn.tasks import folds as cv
from kerasrnn.tasks.classification_schema import (  # noqa: F401  (SCHEMA: re-exported)
    POOLINGS, SCHEMA, SOURCES, ClassificationData, ClassificationEval, TextClassifierModel)
from kerasrnn.tasks.common import canonical_cell, check_model_config, print_metrics, rnn_stack, round_floats
from kerasrnn.tasks.ngram_baseline import train_ngram_baseline


# ----------------------------------------------------------------------------- data


@dataclass
class Splits:
    """Texts and integer labels of the three splits, and the class names."""

    train: tuple[list[str], np.ndarray]
    val: tuple[list[str], np.ndarray]
    test: tuple[list[str], np.ndarray]
    class_names: list[str]


def _as_pair(split) -> tuple[list[str], np.ndarray]:
    texts, labels = split
    return [str(t) for t in texts], np.asarray(labels, dtype=np.int32)


def load_local_examples(cfg: ClassificationData):
    """``(texts, labels, class_names)`` of a local source (csv, class_folders, class_files)."""

    if cfg.source == "csv":
        if not cfg.path:
            raise UserError('data.path is empty: give the CSV file, e.g. data.path = "reviews.csv"')
        return data.load_csv(cfg.path, cfg.text_column, cfg.label_column, cfg.delimiter or None,
                             cfg.header, cfg.quoting, cfg.encoding)
    if cfg.source == "class_folders":
        if not cfg.path:
            raise UserError("data.path is empty: give the folder holding one sub-folder per class, "
                            'e.g. data.path = "reviews/"')
        return data.load_class_folders(cfg.path, cfg.encoding)
    if cfg.source == "class_files":
        if not cfg.files:
            raise UserError("data.files is empty: give one file per class, e.g. "
                            'data.files = ["neg.txt", "pos.txt"]')
        return data.load_class_files(cfg.files, cfg.encoding)
    raise UserError(f"data.source {cfg.source!r} is not valid for classification; "
                    f"valid sources: {', '.join(SOURCES)}")


def load_side_file(cfg: ClassificationData, key: str, class_names: list[str]) -> tuple[list[str], np.ndarray]:
    """Read ``data.test_path`` / ``data.val_path`` (`key`) with the training file's columns and classes."""

    path = getattr(cfg, key)
    if cfg.source != "csv":
        raise UserError(f"data.{key} is only read for data.source = 'csv', not {cfg.source!r}; "
                        f"leave data.{key} empty or use a CSV/TSV training file")
    texts, labels, names = data.load_csv(path, cfg.text_column, cfg.label_column, cfg.delimiter or None,
                                         cfg.header, cfg.quoting, cfg.encoding)
    return texts, data.map_labels(labels, names, class_names, f"data.{key} ({path})")


def _rescaled(fractions, drop: list[int]) -> tuple[float, float, float]:
    kept = [0.0 if i in drop else float(f) for i, f in enumerate(fractions)]
    total = sum(kept)
    if total <= 0:
        raise UserError(f"data.fractions {list(fractions)} leave nothing to train on")
    return tuple(f / total for f in kept)


def load_splits(cfg: ClassificationData, seed: int) -> Splits:
    """Load the configured source and split it into train/validation/test."""

    if cfg.source == "tfds":
        if cfg.test_path or cfg.val_path:
            raise UserError("data.test_path / data.val_path are for data.source = 'csv'; with TFDS use "
                            "data.test_split and data.val_fraction")
        data_dir = cfg.data_dir or None
        texts, labels, names = data.load_tfds_examples(cfg.name, cfg.train_split, cfg.text_key, cfg.label_key,
                                                       data_dir)
        test_texts, test_labels, _ = data.load_tfds_examples(cfg.name, cfg.test_split, cfg.text_key,
                                                             cfg.label_key, data_dir)
        if not 0 < cfg.val_fraction < 1:
            raise UserError(f"data.val_fraction must be in (0, 1), got {cfg.val_fraction}")
        train_split, val_split, _ = data.split_examples(texts, labels, (1 - cfg.val_fraction, cfg.val_fraction, 0.0),
                                                        seed=seed)
        test_split = (test_texts, test_labels)
    else:
        texts, labels, names = load_local_examples(cfg)
        fractions = tuple(cfg.fractions)
        if len(fractions) != 3:
            raise UserError(f"data.fractions must be [train, validation, test], got {list(cfg.fractions)}")
        drop = ([1] if cfg.val_path else []) + ([2] if cfg.test_path else [])
        if drop:
            fractions = _rescaled(fractions, drop)
        train_split, val_split, test_split = data.split_examples(texts, labels, fractions, seed=seed)
        if cfg.val_path:
            val_split = load_side_file(cfg, "val_path", names)
        if cfg.test_path:
            test_split = load_side_file(cfg, "test_path", names)
    data.check_classes(train_split[1], names)
    splits = Splits(_as_pair(train_split), _as_pair(val_split), _as_pair(test_split), list(names))
    if cfg.max_examples > 0:
        splits.train = (splits.train[0][:cfg.max_examples], splits.train[1][:cfg.max_examples])
    for split_name in ("train", "val", "test"):
        if not getattr(splits, split_name)[0]:
            raise UserError(f"the {split_name} split is empty; use more examples or change data.fractions")
    return splits


def load_cv_examples(cfg: ClassificationData, seed: int) -> tuple[list[str], np.ndarray, list[str]]:
    """All examples cross-validation folds are drawn from (TFDS: the training split)."""

    if cfg.test_path or cfg.val_path:
        raise UserError("eval.folds > 0 cross-validates over data.path, so data.test_path / data.val_path "
                        "would be unused: set eval.folds = 0 to test on the separate file, or empty them")
    if cfg.source == "tfds":
        texts, labels, names = data.load_tfds_examples(cfg.name, cfg.train_split, cfg.text_key, cfg.label_key,
                                                       cfg.data_dir or None)
    else:
        texts, labels, names = load_local_examples(cfg)
    texts, labels = _as_pair((texts, labels))
    data.check_classes(labels, names)
    if 0 < cfg.max_examples < len(texts):  # a random subset: files are often sorted by class
        keep = np.sort(np.random.default_rng(seed).permutation(len(texts))[:cfg.max_examples])
        texts, labels = [texts[i] for i in keep], labels[keep]
    return texts, labels, list(names)


# ----------------------------------------------------------------------------- model


def pretrained_source(path: str):
    """Load the run `model.init_from` names and check it has a word vocabulary; returns its model."""

    try:
        run = load_run(path)
    except UserError as e:
        raise UserError(f"model.init_from: {e}") from None
    names = {layer.name for layer in run.model.layers}
    if "vectorizer" not in names or "embedding" not in names:
        raise UserError(f"model.init_from: {path} is a {run.info.get('task')!r} run without a word vocabulary "
                        "(no 'vectorizer' and 'embedding' layers); give a classification run (or a word-level "
                        "model with the same layers), or leave model.init_from empty")
    return run.model


def copy_pretrained(ids_model, source, path: str) -> list[str]:
    """Copy ``embedding`` and every ``rnn_i`` weight of `source` into `ids_model`; returns the layer names.

    Raises `UserError` (one line, naming the mismatch) when a layer is missing or
    its weight shapes differ.
    """
    source_layers = {layer.name: layer for layer in source.layers}
    copied = []
    for layer in ids_model.layers:
        if layer.name != "embedding" and not layer.name.startswith("rnn_"):
            continue
        if layer.name not in source_layers:
            raise UserError(f"model.init_from: {path} has no layer {layer.name!r} (its recurrent layers: "
                            f"{sorted(n for n in source_layers if n.startswith('rnn_'))}); match model.num_layers")
        mine, theirs = layer.get_weights(), source_layers[layer.name].get_weights()
        if [w.shape for w in mine] != [w.shape for w in theirs] or type(layer) is not type(source_layers[layer.name]):
            raise UserError(f"model.init_from: layer {layer.name!r} of {path} has weights "
                            f"{[tuple(w.shape) for w in theirs]}, this model {[tuple(w.shape) for w in mine]}; "
                            "use the pretrained run's model.cell, units, embedding_dim and bidirectional")
        layer.set_weights(theirs)
        copied.append(layer.name)
    return copied


def encoder(embedded, cfg: TextClassifierModel, return_sequences: bool):
    """Embedded tokens → token dropout → dropout → the recurrent stack (the classifier's and the
    pretraining language model's shared body, with the same layer names, so weights transfer)."""
    x = embedded
    if cfg.token_dropout > 0:
        x = TokenDropout(cfg.token_dropout, name="token_dropout")(x)
    if cfg.dropout > 0:
        x = PhiloxDropout(cfg.dropout, name="embedding_dropout")(x)
    extra = {"recurrent_weight_dropout": cfg.recurrent_weight_dropout} if cfg.recurrent_weight_dropout else {}
    return rnn_stack(x, cfg.cell, cfg.units, cfg.num_layers, cfg.dropout, last_return_sequences=return_sequences,
                     bidirectional=cfg.bidirectional, **extra)


def build_models(cfg: TextClassifierModel, num_classes: int, train_texts: list[str], vocabulary=None):
    """Return (text_model, ids_model, vectorizer) sharing every layer.

    ``text_model`` (strings in) is the one saved; ``ids_model`` (token ids in) is
    trained. The vectorizer is adapted on `train_texts` only, or takes
    `vocabulary` (``get_vocabulary()`` of another vectorizer) when given.
    """
    check_model_config(cfg.units, cfg.num_layers, cfg.dropout)
    if cfg.max_len < 1 or cfg.max_tokens < 3:
        raise UserError(f"model.max_len must be >= 1 and model.max_tokens >= 3, got {cfg.max_len}, {cfg.max_tokens}")
    if cfg.pooling not in POOLINGS:
        raise UserError(f"model.pooling must be one of {', '.join(POOLINGS)}, got {cfg.pooling!r}")
    vectorizer = keras.layers.TextVectorization(
        max_tokens=None if vocabulary is not None else cfg.max_tokens, standardize="lower_and_strip_punctuation",
        split="whitespace", output_mode="int", output_sequence_length=cfg.max_len, name="vectorizer")
    if vocabulary is not None:
        vectorizer.set_vocabulary(list(vocabulary)[2:])  # drop the padding "" and OOV "[UNK]" entries
    else:
        vectorizer.adapt(np.array(train_texts, dtype=object), batch_size=1024)
    vocab_size = vectorizer.vocabulary_size()
    if vocab_size <= 2:  # only the padding and OOV entries: not one word in the training texts
        raise UserError(f"the {len(train_texts)} training texts contain no words (all empty or punctuation only); "
                        "check data.text_column (or the files) and data.encoding")
    embedding = keras.layers.Embedding(vocab_size, cfg.embedding_dim, mask_zero=True, name="embedding")
    concat = cfg.pooling == "concat"

    def head(x):
        x = encoder(embedding(x), cfg, return_sequences=concat)
        if concat:
            x = ConcatPooling(backward_units=cfg.units if cfg.bidirectional else 0, name="concat_pooling")(x)
        return keras.layers.Dense(num_classes, activation="softmax", name="probs")(x)

    ids = keras.Input(shape=(cfg.max_len,), dtype="int64", name="token_ids")
    ids_model = keras.Model(ids, head(ids), name="text_classifier_ids")
    # the text model reuses the very same layers (and weights)
    text = keras.Input(shape=(), dtype="string", name="text")
    x = vectorizer(text)
    for layer in ids_model.layers[1:]:
        x = layer(x)
    text_model = keras.Model(text, x, name="text_classifier")
    return text_model, ids_model, vectorizer


def _ids_dataset(texts, labels, vectorizer, batch_size: int, shuffle: bool, seed: int, repeat: bool):
    import tensorflow as tf  # lazy: heavy import

    ds = data.text_dataset(texts, labels, batch_size, shuffle=shuffle, seed=seed)
    ds = ds.map(lambda x, y: (vectorizer(x), y), num_parallel_calls=tf.data.AUTOTUNE)
    if repeat:
        ds = ds.repeat()
    return ds.prefetch(tf.data.AUTOTUNE)


# ----------------------------------------------------------------------------- pretraining

LM_OUTPUT_TOKENS = 5000
"""The pretraining language model predicts the most frequent 5,000 tokens; rarer ones share the OOV target."""


def check_pretraining(model_cfg: TextClassifierModel, data_cfg: ClassificationData) -> None:
    """One-line `UserError` for settings the language-model pretraining cannot honour."""
    if data_cfg.pretrain_paths and not model_cfg.pretrain_epochs:
        raise UserError("data.pretrain_paths is only read by the language-model pretraining: set "
                        "model.pretrain_epochs (e.g. 5), or leave data.pretrain_paths empty")
    if not model_cfg.pretrain_epochs:
        return
    if model_cfg.init_from:
        raise UserError("model.init_from and model.pretrain_epochs both initialise the embedding and recurrent "
                        "layers: set model.pretrain_epochs = 0 or leave model.init_from empty")
    if model_cfg.bidirectional and model_cfg.num_layers > 1:
        raise UserError("model.pretrain_epochs needs model.num_layers = 1 when model.bidirectional = true (a second "
                        "bidirectional layer would let the language model see the word it predicts): set "
                        "model.num_layers = 1 or model.bidirectional = false")


def load_pretrain_texts(cfg: ClassificationData) -> list[str]:
    """The non-empty lines of ``data.pretrain_paths`` (none when it is empty)."""

    if not cfg.pretrain_paths:
        return []
    texts = []
    for path in expand_paths(cfg.pretrain_paths, key="data.pretrain_paths"):
        texts.extend(line.strip() for line in read_text_file(path, cfg.encoding).split("\n") if line.strip())
    if not texts:
        raise UserError(f"data.pretrain_paths {list(cfg.pretrain_paths)} hold no non-empty line; "
                        "give text files with one text per line")
    return texts


def build_language_model(cfg: TextClassifierModel, vocab_size: int, output_tokens: int) -> keras.Model:
    """The pretraining model: the classifier's ``embedding`` and ``rnn_i`` layers, then next-word logits.

    Same layer names and shapes as the classifier (so `copy_pretrained` carries
    the weights over); every recurrent layer returns sequences. Forward units at
    step t (words 1..t) predict word t+1 (output ``next_word``); with
    `bidirectional`, the backward units at step t (words t..T) predict word t−1
    (``previous_word``), so neither direction sees the word it predicts.
    """
    ids = keras.Input(shape=(cfg.max_len,), dtype="int64", name="token_ids")
    x = keras.layers.Embedding(vocab_size, cfg.embedding_dim, mask_zero=True, name="embedding")(ids)
    x = encoder(x, cfg, return_sequences=True)
    if not cfg.bidirectional:
        return keras.Model(ids, keras.layers.Dense(output_tokens, name="next_word")(x), name="language_model")
    forward = keras.layers.Dense(output_tokens, name="next_word")(x[:, :, :cfg.units])
    backward = keras.layers.Dense(output_tokens, name="previous_word")(x[:, :, cfg.units:])
    return keras.Model(ids, [forward, backward], name="language_model")


def language_model_dataset(texts, vectorizer, batch_size: int, shuffle: bool, seed: int, bidirectional: bool,
                           output_tokens: int):
    """Batches ``(ids, next_ids[, previous_ids], weights)``; a weight is 1 where both word and target are real.

    Targets at or above `output_tokens` become the OOV id 1.
    """
    import tensorflow as tf  # lazy: heavy import

    ds = tf.data.Dataset.from_tensor_slices(np.array(list(texts), dtype=object))
    if shuffle:
        ds = ds.shuffle(len(texts), seed=seed, reshuffle_each_iteration=True)

    def with_targets(x):
        ids = tf.cast(vectorizer(x), tf.int64)                               # (B, T), 0 = padding
        capped = tf.where(ids >= output_tokens, tf.ones_like(ids), ids)
        pad = tf.zeros_like(ids[:, :1])
        next_ids = tf.concat([capped[:, 1:], pad], axis=1)
        previous_ids = tf.concat([pad, capped[:, :-1]], axis=1)
        real = tf.cast(ids > 0, tf.float32)
        next_w = real * tf.cast(next_ids > 0, tf.float32)
        if not bidirectional:
            return ids, next_ids, next_w
        return ids, (next_ids, previous_ids), (next_w, real * tf.cast(previous_ids > 0, tf.float32))

    return ds.batch(batch_size).map(with_targets, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)


def pretrain_language_model(ids_model, vectorizer, texts: list[str], val_texts: list[str],
                            model_cfg: TextClassifierModel, train_cfg: train.TrainConfig, cell: str, seed: int,
                            work: Path) -> dict:
    """Train `ids_model`'s embedding and recurrent layers as a language model, then copy them in.

    The language model (`build_language_model`) trains with the ``[train]``
    settings for at most ``model.pretrain_epochs`` epochs on `texts` (the
    training texts plus ``data.pretrain_paths``), early-stopping on `val_texts`
    (the classifier's validation texts; never test data) and keeping its best
    epoch. Its state lives in ``work/pretrain/`` (history, and once finished
    ``language_model.weights.h5``, which ``--resume`` reuses instead of training again).

    Returns:
        ``{"epochs_run", "best_epoch", "best_val_loss", "train_seconds", "num_texts", "output_tokens"}``;
        ``best_val_loss`` is Keras' weighted loss, summed over the directions and
        averaged over all ``max_len`` positions (padding counts with weight 0), not nats per word.
    """

    folder = work / "pretrain"
    folder.mkdir(parents=True, exist_ok=True)
    weights, info_path = folder / "language_model.weights.h5", folder / "pretrain.json"
    output_tokens = min(LM_OUTPUT_TOKENS, int(vectorizer.vocabulary_size()))
    language_model = build_language_model(model_cfg, int(vectorizer.vocabulary_size()), output_tokens)
    if weights.exists() and info_path.exists():
        language_model.load_weights(weights)
        info = rundir.read_json(info_path)
        print(f"Language-model pretraining: finished before the interruption (best epoch {info['best_epoch']})")
    else:
        print(f"Language-model pretraining on {len(texts):,} texts (at most {model_cfg.pretrain_epochs} epochs)")
        lm_cfg = dataclasses.replace(train_cfg, epochs=model_cfg.pretrain_epochs, steps_per_epoch=0,
                                     validation_steps=0, max_minutes=0.0)
        bs, bi = train_cfg.batch_size, model_cfg.bidirectional
        train_ds = language_model_dataset(texts, vectorizer, bs, True, seed, bi, output_tokens)
        val_ds = language_model_dataset(val_texts, vectorizer, bs, False, seed, bi, output_tokens)
        loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
        train.compile_model(language_model, lm_cfg, [loss, loss] if bi else loss, None, cell)
        fit_info = train.fit(language_model, train_ds, val_ds, lm_cfg, folder)
        info = {k: fit_info[k] for k in ("epochs_run", "best_epoch", "best_val_loss", "train_seconds")}
        info |= {"num_texts": len(texts), "output_tokens": output_tokens}
        with atomic.atomic_file(weights, suffix=".weights.h5") as tmp:
            language_model.save_weights(tmp)
        rundir.write_json(info_path, round_floats(info))
        shutil.rmtree(folder / "checkpoints", ignore_errors=True)
    copy_pretrained(ids_model, language_model, "model.pretrain_epochs")
    return info


# ----------------------------------------------------------------------------- metrics


def classification_metrics(y_true, y_pred, class_names: list[str]) -> dict:
    """Accuracy, per-class precision/recall/F1, macro averages and the confusion matrix.

    >>> m = classification_metrics([0, 1, 1], [0, 1, 0], ["neg", "pos"])
    >>> m["accuracy"], m["confusion_matrix"]
    (0.6666666666666666, [[1, 0], [1, 1]])
    """
    y_true = np.asarray(y_true, dtype=np.int64)
    y_pred = np.asarray(y_pred, dtype=np.int64)
    k = len(class_names)
    cm = np.zeros((k, k), dtype=np.int64)
    np.add.at(cm, (y_true, y_pred), 1)
    per_class = {}
    for i, name in enumerate(class_names):
        tp = cm[i, i]
        precision = tp / cm[:, i].sum() if cm[:, i].sum() else 0.0
        recall = tp / cm[i, :].sum() if cm[i, :].sum() else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        per_class[name] = {"precision": float(precision), "recall": float(recall), "f1": float(f1),
                           "support": int(cm[i, :].sum())}
    return {
        "accuracy": float((y_true == y_pred).mean()) if len(y_true) else 0.0,
        "macro_precision": float(np.mean([c["precision"] for c in per_class.values()])),
        "macro_recall": float(np.mean([c["recall"] for c in per_class.values()])),
        "macro_f1": float(np.mean([c["f1"] for c in per_class.values()])),
        "per_class": per_class,
        "confusion_matrix": cm.tolist(),
        "class_names": list(class_names),
    }


def plot_confusion(cm: list[list[int]], class_names: list[str], target: Path) -> None:
    """Draw the confusion matrix (rows true, columns predicted) as a PNG."""

    plt = pyplot()

    cm = np.asarray(cm)
    size = 2 + 0.6 * len(class_names)
    fig, ax = plt.subplots(figsize=(size, size))
    ax.imshow(cm, cmap="Blues")
    for (i, j), v in np.ndenumerate(cm):
        ax.text(j, i, str(v), ha="center", va="center", color="black")
    ax.set_xticks(range(len(class_names)), class_names, rotation=45, ha="right")
    ax.set_yticks(range(len(class_names)), class_names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title("test confusion matrix")
    save_png(fig, target)


def predict_probs(model, texts: list[str], batch_size: int = 256) -> np.ndarray:
    """Class probabilities (N, K) of a text model for raw strings."""
    if not len(texts):
        return np.zeros((0, model.output.shape[-1]), np.float32)
    return np.asarray(model.predict(np.array(list(texts), dtype=object), batch_size=batch_size, verbose=0))


# ----------------------------------------------------------------------------- training


def fit_classifier(train_split, val_split, num_classes: int, model_cfg: TextClassifierModel,
                   train_cfg: train.TrainConfig, cell: str, seed: int, work: Path, pretrained=None,
                   pretrain_texts: list[str] = ()):
    """Build, initialise (from `pretrained`, or by language-model pretraining) and train a classifier in `work`.

    With ``model_cfg.pretrain_epochs`` the vocabulary is adapted on the training
    texts plus `pretrain_texts` (unlabelled), and `pretrain_language_model` runs first.

    Returns:
        ``(text_model, vectorizer, fit_info)``; the models hold the best-validation weights.
        ``fit_info["pretrain"]`` describes the pretraining, when it ran.
    """
    train.set_seeds(seed)
    vocabulary = pretrained.get_layer("vectorizer").get_vocabulary() if pretrained is not None else None
    lm_texts = list(train_split[0]) + list(pretrain_texts) if model_cfg.pretrain_epochs else None
    text_model, ids_model, vectorizer = build_models(model_cfg, num_classes, lm_texts or train_split[0], vocabulary)
    if pretrained is not None:
        copy_pretrained(ids_model, pretrained, model_cfg.init_from)
    pretrain_info = None
    if model_cfg.pretrain_epochs:
        pretrain_info = pretrain_language_model(ids_model, vectorizer, lm_texts, list(val_split[0]), model_cfg,
                                                train_cfg, cell, seed, work)
        train.set_seeds(seed)
    bs = train_cfg.batch_size
    train_ds = _ids_dataset(*train_split, vectorizer, bs, True, seed, repeat=train_cfg.steps_per_epoch > 0)
    val_ds = _ids_dataset(*val_split, vectorizer, bs, False, seed, repeat=False)
    train.compile_model(ids_model, train_cfg, "sparse_categorical_crossentropy", ["accuracy"], cell)
    fit_info = train.fit(ids_model, train_ds, val_ds, train_cfg, work)
    if pretrain_info is not None:
        fit_info = fit_info | {"pretrain": pretrain_info}
    return text_model, vectorizer, fit_info


def baseline_scores(train_split, val_split, test_split, class_names: list[str], seed: int,
                    recurrent_probs: np.ndarray | None = None) -> dict:
    """Train the n-gram baseline on the same split; its test accuracy and macro-F1.

    With `recurrent_probs` (the recurrent model's test probabilities) the result
    also has ``"ensemble"``: accuracy and macro-F1 of the mean of the two models'
    probabilities (fixed equal weights, nothing tuned).
    """

    start = time.monotonic()
    model = train_ngram_baseline(train_split, val_split, len(class_names), seed=seed)
    probs = predict_probs(model, test_split[0])
    scores = classification_metrics(test_split[1], probs.argmax(-1), class_names)
    result = {"accuracy": scores["accuracy"], "macro_f1": scores["macro_f1"],
              "train_seconds": round(time.monotonic() - start, 1)}
    if recurrent_probs is not None:
        mixed = classification_metrics(test_split[1], ensemble_probs(recurrent_probs, probs).argmax(-1), class_names)
        result["ensemble"] = {"accuracy": mixed["accuracy"], "macro_f1": mixed["macro_f1"]}
    return result


def ensemble_probs(recurrent: np.ndarray, baseline: np.ndarray) -> np.ndarray:
    """The recurrent + n-gram ensemble: the mean of the two models' class probabilities.

    >>> ensemble_probs(np.array([[1.0, 0.0]]), np.array([[0.5, 0.5]])).tolist()
    [[0.75, 0.25]]
    """
    return (np.asarray(recurrent, np.float64) + np.asarray(baseline, np.float64)) / 2


def _subset(texts: list[str], labels: np.ndarray, indices) -> tuple[list[str], np.ndarray]:
    return [texts[i] for i in indices], labels[indices]


def _single_split(splits: Splits, model_cfg, train_cfg, eval_cfg, cell, seed, work, pretrained, pretrain_texts=()):
    names = splits.class_names
    text_model, vectorizer, fit_info = fit_classifier(splits.train, splits.val, len(names), model_cfg, train_cfg,
                                                      cell, seed, work, pretrained, pretrain_texts)
    probs = predict_probs(text_model, splits.test[0])
    test = classification_metrics(splits.test[1], probs.argmax(-1), names)
    metrics = {"protocol": "train/validation/test split"}
    metrics |= {"test_" + k if k in ("accuracy", "macro_precision", "macro_recall", "macro_f1") else k: v
                for k, v in test.items()}
    metrics |= fit_info | {"num_train": len(splits.train[0]), "num_val": len(splits.val[0]),
                           "num_test": len(splits.test[0]), "vocabulary_size": int(vectorizer.vocabulary_size())}
    if eval_cfg.baseline:
        base = baseline_scores(splits.train, splits.val, splits.test, names, seed, recurrent_probs=probs)
        metrics["baseline"] = {"test_accuracy": base["accuracy"], "test_macro_f1": base["macro_f1"],
                               "train_seconds": base["train_seconds"]}
        metrics["ensemble"] = {"test_accuracy": base["ensemble"]["accuracy"],
                               "test_macro_f1": base["ensemble"]["macro_f1"]}
    plot_confusion(test["confusion_matrix"], names, work / "confusion_matrix.png")
    return metrics, text_model, splits.val


def _fold_dir(work: Path, k: int) -> Path:
    return work / "folds" / f"fold_{k + 1:02d}"


def has_resume_state(work: Path) -> bool:
    """Whether an interrupted work directory holds anything ``--resume`` can continue from."""
    return ((work / "checkpoints" / "backup").exists() or any((work / "folds").glob("fold_*/result.json"))
            or any((work / "folds").glob("fold_*/checkpoints/backup"))
            or (work / "pretrain" / "checkpoints" / "backup").exists()
            or (work / "pretrain" / "language_model.weights.h5").exists())


def _cross_validate(texts, labels, names, model_cfg, train_cfg, eval_cfg, cell, seed, work, pretrained,
                    pretrain_texts=()):
    k_folds = eval_cfg.folds
    parts = cv.stratified_folds(labels, k_folds, seed)
    results = []
    for k in range(k_folds):
        fold_dir = _fold_dir(work, k)
        if (fold_dir / "result.json").exists():
            results.append(rundir.read_json(fold_dir / "result.json"))
            print(f"Fold {k + 1}/{k_folds}: finished before the interruption, "
                  f"recurrent {results[-1]['accuracy']:.1%}")
            continue
        test_idx = parts[k]
        rest = np.sort(np.concatenate([p for j, p in enumerate(parts) if j != k]))
        train_idx, val_idx = cv.carve_validation(rest, labels, eval_cfg.val_fraction, seed + k)
        print(f"\nFold {k + 1}/{k_folds}: {len(train_idx):,} train / {len(val_idx):,} validation / "
              f"{len(test_idx):,} test")
        fold_dir.mkdir(parents=True, exist_ok=True)
        keras.backend.clear_session()
        start = time.monotonic()
        text_model, _, fit_info = fit_classifier(_subset(texts, labels, train_idx), _subset(texts, labels, val_idx),
                                                 len(names), model_cfg, train_cfg, cell, seed + k, fold_dir,
                                                 pretrained, pretrain_texts)
        test_split = _subset(texts, labels, test_idx)
        probs = predict_probs(text_model, test_split[0])
        predictions = probs.argmax(-1)
        scores = classification_metrics(test_split[1], predictions, names)
        result = {"fold": k + 1, "accuracy": scores["accuracy"], "macro_f1": scores["macro_f1"],
                  "best_epoch": fit_info["best_epoch"], "epochs_run": fit_info["epochs_run"],
                  "train_seconds": fit_info["train_seconds"], "num_train": len(train_idx),
                  "num_val": len(val_idx), "test_indices": test_idx.tolist(), "predictions": predictions.tolist()}
        if "pretrain" in fit_info:
            result["pretrain"] = fit_info["pretrain"]
        line = f"Fold {k + 1}/{k_folds}: recurrent {scores['accuracy']:.1%}"
        if eval_cfg.baseline:
            result["baseline"] = baseline_scores(_subset(texts, labels, train_idx), _subset(texts, labels, val_idx),
                                                 test_split, names, seed + k, recurrent_probs=probs)
            result["ensemble"] = result["baseline"].pop("ensemble")
            line += (f" | n-gram baseline {result['baseline']['accuracy']:.1%}"
                     f" | ensemble {result['ensemble']['accuracy']:.1%}")
        rundir.write_json(fold_dir / "result.json", round_floats(result))
        shutil.rmtree(fold_dir / "checkpoints", ignore_errors=True)  # weights no longer needed; history stays
        (fold_dir / "pretrain" / "language_model.weights.h5").unlink(missing_ok=True)
        results.append(result)
        done = [r["accuracy"] for r in results]
        print(f"{line}  (best epoch {fit_info['best_epoch']}, {time.monotonic() - start:.0f} s; "
              f"mean so far {np.mean(done):.1%} over {len(done)} folds)")

    tested = np.concatenate([np.asarray(r["test_indices"], dtype=np.int64) for r in results])
    if sorted(tested.tolist()) != list(range(len(texts))):
        raise UserError(f"the fold results in {work / 'folds'} do not test every example once (the data changed "
                        "since the interruption?); run again without --resume")
    predicted = np.concatenate([np.asarray(r["predictions"], dtype=np.int64) for r in results])
    pooled = classification_metrics(labels[tested], predicted, names)
    plot_confusion(pooled["confusion_matrix"], names, work / "confusion_matrix.png")

    print(f"\nFinal model (kept in the run directory): all {len(texts):,} examples, "
          f"{eval_cfg.val_fraction:g} held out for early stopping")
    keras.backend.clear_session()
    train_idx, val_idx = cv.carve_validation(np.arange(len(texts)), labels, eval_cfg.val_fraction, seed)
    val_split = _subset(texts, labels, val_idx)
    text_model, vectorizer, fit_info = fit_classifier(_subset(texts, labels, train_idx), val_split, len(names),
                                                      model_cfg, train_cfg, cell, seed, work, pretrained,
                                                      pretrain_texts)
    metrics = {
        "protocol": f"{k_folds}-fold stratified cross-validation",
        "cv": {"folds": k_folds,
               "accuracy": cv.summarize([r["accuracy"] for r in results]),
               "macro_f1": cv.summarize([r["macro_f1"] for r in results]),
               "best_epoch": [r["best_epoch"] for r in results],
               "epochs_run": [r["epochs_run"] for r in results],
               "train_seconds": [r["train_seconds"] for r in results],
               "pooled": {k: pooled[k] for k in ("accuracy", "macro_f1", "per_class", "confusion_matrix")}},
        "class_names": names,
        "final_model": fit_info | {"num_train": len(train_idx), "num_val": len(val_idx)},
        "num_examples": len(texts),
        "vocabulary_size": int(vectorizer.vocabulary_size()),
    }
    if eval_cfg.baseline:
        metrics["baseline"] = {"accuracy": cv.summarize([r["baseline"]["accuracy"] for r in results]),
                               "macro_f1": cv.summarize([r["baseline"]["macro_f1"] for r in results])}
        if all("ensemble" in r for r in results):  # folds finished by an older version have none
            metrics["ensemble"] = {key: cv.summarize([r["ensemble"][key] for r in results])
                                   for key in ("accuracy", "macro_f1")}
    return metrics, text_model, val_split


def _report(metrics: dict, names: list[str], run_dir: Path) -> None:
    if "cv" in metrics:
        c = metrics["cv"]
        line = f"recurrent {cv.percent(c['accuracy'])}"
        f1 = f"recurrent {c['macro_f1']['mean']:.3f} ± {c['macro_f1']['std']:.3f}"
        if "baseline" in metrics:
            line += f" | n-gram baseline {cv.percent(metrics['baseline']['accuracy'])}"
            f1 += (f" | n-gram baseline {metrics['baseline']['macro_f1']['mean']:.3f} ± "
                   f"{metrics['baseline']['macro_f1']['std']:.3f}")
        if "ensemble" in metrics:
            line += f" | ensemble {cv.percent(metrics['ensemble']['accuracy'])}"
            f1 += (f" | ensemble {metrics['ensemble']['macro_f1']['mean']:.3f} ± "
                   f"{metrics['ensemble']['macro_f1']['std']:.3f}")
        print(f"\n{c['folds']}-fold cross-validation ({run_dir}), mean ± std over folds:")
        print(f"  accuracy: {line}")
        print(f"  macro-F1: {f1}")
        print(f"  pooled confusion matrix (rows true {names}): {c['pooled']['confusion_matrix']}")
    else:
        print_metrics(f"Test split ({run_dir}):", {k: metrics[k] for k in
                                                   ("test_accuracy", "test_macro_precision", "test_macro_recall",
                                                    "test_macro_f1")})
        print(f"  confusion matrix (rows true {names}): {metrics['confusion_matrix']}")
        line = f"recurrent {metrics['test_accuracy']:.1%}"
        if "baseline" in metrics:
            line += f" | n-gram baseline {metrics['baseline']['test_accuracy']:.1%}"
        if "ensemble" in metrics:
            line += f" | ensemble {metrics['ensemble']['test_accuracy']:.1%}"
        print(f"  {line}")
    print(f"Run directory: {run_dir}")


# ----------------------------------------------------------------------------- run


def run(recipe: dict, run_dir: Path, resume: bool = False, **lifecycle) -> dict:
    """Train a text classifier from a resolved recipe and write its run directory.

    ``**lifecycle`` (``restart``, ``overwrite``, ``origin``) goes to `kerasrnn.rundir.lifecycle`.
    """
    run_cfg = section(recipe, "run", RunConfig)
    data_cfg = section(recipe, "data", ClassificationData)
    model_cfg = section(recipe, "model", TextClassifierModel)
    train_cfg = section(recipe, "train", train.TrainConfig)
    eval_cfg = section(recipe, "eval", ClassificationEval)
    cell = canonical_cell(model_cfg.cell)
    check_model_config(model_cfg.units, model_cfg.num_layers, model_cfg.dropout)
    train.set_seeds(run_cfg.seed)
    check_pretraining(model_cfg, data_cfg)
    pretrained = pretrained_source(model_cfg.init_from) if model_cfg.init_from else None
    pretrain_texts = load_pretrain_texts(data_cfg)

    if eval_cfg.folds:
        texts, labels, names = load_cv_examples(data_cfg, run_cfg.seed)
        cv.check_folds(labels, eval_cfg.folds, names)
        print(f"Examples: {len(texts):,}; classes: {', '.join(names)}; "
              f"{eval_cfg.folds}-fold stratified cross-validation")
    else:
        splits = load_splits(data_cfg, run_cfg.seed)
        names = splits.class_names
        print(f"Examples: {len(splits.train[0]):,} train / {len(splits.val[0]):,} validation / "
              f"{len(splits.test[0]):,} test; classes: {', '.join(names)}")
    with rundir.lifecycle(recipe, run_dir, resume=resume, has_state=has_resume_state, **lifecycle) as work:
        rundir.write_json(work / "labels.json", {"class_names": names})
        if eval_cfg.folds:
            metrics, text_model, val_split = _cross_validate(texts, labels, names, model_cfg, train_cfg, eval_cfg,
                                                             cell, run_cfg.seed, work, pretrained, pretrain_texts)
        else:
            metrics, text_model, val_split = _single_split(splits, model_cfg, train_cfg, eval_cfg, cell,
                                                           run_cfg.seed, work, pretrained, pretrain_texts)
        if model_cfg.init_from:
            metrics["init_from"] = model_cfg.init_from
        metrics = round_floats(metrics)
        n = min(256, len(val_split[0]))
        with atomic.atomic_file(work / "samples.npz", suffix=".npz") as tmp:
            np.savez(tmp, text=np.array(val_split[0][:n], dtype=str),
                     y=np.asarray(val_split[1][:n]).astype(np.int32))
        rundir.save_model(text_model, work / "model.keras")
        rundir.write_json(work / "metrics.json", metrics)
        rundir.write_info(work, recipe, max_len=model_cfg.max_len, num_classes=len(names))
    _report(metrics, names, run_dir)
    return metrics
