"""Text classification (sentiment and multi-class) from raw strings.

Model (the run-directory contract): ``text`` (string) → ``TextVectorization``
(adapted on the training split only) → ``Embedding(mask_zero=True)`` →
recurrent layers ``rnn_i`` (optionally ``Bidirectional``) → ``Dense(num_classes,
softmax, name="probs")``. Binary tasks are 2-class softmax.

Training runs on a twin model that starts at the token ids (same layer objects,
so the same weights): the strings are vectorised in the `tf.data` pipeline,
which lets the recurrent part train under XLA (string ops cannot be compiled).
The saved ``model.keras`` takes raw strings.

Test-split metrics: accuracy, per-class precision/recall/F1, their macro
averages and the confusion matrix (rows = true class, columns = predicted),
also drawn in ``confusion_matrix.png``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import keras
import numpy as np

from kerasrnn import atomic, rundir, train
from kerasrnn.dropout import PhiloxDropout
from kerasrnn.errors import UserError
from kerasrnn.recipes import RunConfig, section
from kerasrnn.tasks.common import canonical_cell, check_model_config, print_metrics, rnn_stack, round_floats

SOURCES = ("tfds", "csv", "class_folders", "class_files")


@dataclass
class ClassificationData:
    """``[data]`` for classification. Keys not used by the chosen `source` are ignored.

    Attributes:
        source: "tfds", "csv", "class_folders" (one sub-folder of text files per
            class) or "class_files" (one file per class, one example per line). Default "csv".
        name: TFDS dataset name (default "imdb_reviews").
        train_split: TFDS split for training + validation (default "train").
        test_split: TFDS split for the test metrics (default "test").
        text_key: TFDS text feature (default "text").
        label_key: TFDS label feature (default "label").
        data_dir: TFDS data directory, "" = default / $TFDS_DATA_DIR.
        path: CSV file (source "csv") or root folder (source "class_folders").
        files: one file per class, label = position (source "class_files").
        text_column: CSV text column, a header name or a 0-based index (default "text").
        label_column: CSV label column (default "label").
        delimiter: CSV delimiter, "" = tab for .tsv/.tab files, else comma (default "").
        header: the CSV has a header row (default true).
        quoting: honour "-quoting in the CSV (default true); false reads quotes as plain characters.
        encoding: text encoding of local files (default "utf-8").
        fractions: train/validation/test shares of a local dataset, split at
            random with run.seed (default [0.8, 0.1, 0.1]).
        val_fraction: share of the TFDS training split held out for validation (default 0.1).
        max_examples: use at most this many training examples, 0 = all (default 0).
    """

    source: str = "csv"
    name: str = "imdb_reviews"
    train_split: str = "train"
    test_split: str = "test"
    text_key: str = "text"
    label_key: str = "label"
    data_dir: str = ""
    path: str = ""
    files: list[str] = field(default_factory=list)
    text_column: str = "text"
    label_column: str = "label"
    delimiter: str = ""
    header: bool = True
    quoting: bool = True
    encoding: str = "utf-8"
    fractions: list[float] = field(default_factory=lambda: [0.8, 0.1, 0.1])
    val_fraction: float = 0.1
    max_examples: int = 0


@dataclass
class TextClassifierModel:
    """``[model]``.

    Attributes:
        max_tokens: vocabulary size of the TextVectorization, incl. padding and OOV (default 20000).
        max_len: tokens per text after padding/truncation (default 200).
        embedding_dim: embedding width (default 128).
        cell: "lstm", "gru" or "simple_rnn" (default "lstm").
        units: units per recurrent layer (per direction) (default 64).
        num_layers: recurrent layers (default 1).
        bidirectional: wrap each recurrent layer in Bidirectional (default true).
        dropout: dropout after the embedding and each recurrent layer (default 0.3).
    """

    max_tokens: int = 20000
    max_len: int = 200
    embedding_dim: int = 128
    cell: str = "lstm"
    units: int = 64
    num_layers: int = 1
    bidirectional: bool = True
    dropout: float = 0.3


SCHEMA = {"run": RunConfig, "data": ClassificationData, "model": TextClassifierModel,
          "train": train.TrainConfig}


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


def load_splits(cfg: ClassificationData, seed: int) -> Splits:
    """Load the configured source and split it into train/validation/test."""
    from kerasrnn import data

    if cfg.source == "tfds":
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
        if cfg.source == "csv":
            if not cfg.path:
                raise UserError("data.path is empty: give the CSV file, e.g. --set data.path=reviews.csv")
            texts, labels, names = data.load_csv(cfg.path, cfg.text_column, cfg.label_column, cfg.delimiter or None,
                                                 cfg.header, cfg.quoting, cfg.encoding)
        elif cfg.source == "class_folders":
            if not cfg.path:
                raise UserError("data.path is empty: give the folder holding one sub-folder per class, "
                                "e.g. --set data.path=reviews/")
            texts, labels, names = data.load_class_folders(cfg.path, cfg.encoding)
        elif cfg.source == "class_files":
            if not cfg.files:
                raise UserError("data.files is empty: give one file per class, e.g. "
                                "--set data.files=neg.txt,pos.txt")
            texts, labels, names = data.load_class_files(cfg.files, cfg.encoding)
        else:
            raise UserError(f"data.source {cfg.source!r} is not valid for classification; "
                            f"valid sources: {', '.join(SOURCES)}")
        fractions = tuple(cfg.fractions)
        if len(fractions) != 3:
            raise UserError(f"data.fractions must be [train, validation, test], got {list(cfg.fractions)}")
        train_split, val_split, test_split = data.split_examples(texts, labels, fractions, seed=seed)
    data.check_classes(train_split[1], names)
    splits = Splits(_as_pair(train_split), _as_pair(val_split), _as_pair(test_split), list(names))
    if cfg.max_examples > 0:
        splits.train = (splits.train[0][:cfg.max_examples], splits.train[1][:cfg.max_examples])
    for split_name in ("train", "val", "test"):
        if not getattr(splits, split_name)[0]:
            raise UserError(f"the {split_name} split is empty; use more examples or change data.fractions")
    return splits


# ----------------------------------------------------------------------------- model


def build_models(cfg: TextClassifierModel, num_classes: int, train_texts: list[str]):
    """Return (text_model, ids_model, vectorizer) sharing every layer.

    ``text_model`` (strings in) is the one saved; ``ids_model`` (token ids in) is
    trained. The vectorizer is adapted on `train_texts` only.
    """
    check_model_config(cfg.units, cfg.num_layers, cfg.dropout)
    if cfg.max_len < 1 or cfg.max_tokens < 3:
        raise UserError(f"model.max_len must be >= 1 and model.max_tokens >= 3, got {cfg.max_len}, {cfg.max_tokens}")
    vectorizer = keras.layers.TextVectorization(
        max_tokens=cfg.max_tokens, standardize="lower_and_strip_punctuation", split="whitespace",
        output_mode="int", output_sequence_length=cfg.max_len, name="vectorizer")
    vectorizer.adapt(np.array(train_texts, dtype=object), batch_size=1024)
    vocab_size = vectorizer.vocabulary_size()
    embedding = keras.layers.Embedding(vocab_size, cfg.embedding_dim, mask_zero=True, name="embedding")

    def head(x):
        x = embedding(x)
        if cfg.dropout > 0:
            x = PhiloxDropout(cfg.dropout, name="embedding_dropout")(x)
        x = rnn_stack(x, cfg.cell, cfg.units, cfg.num_layers, cfg.dropout, last_return_sequences=False,
                      bidirectional=cfg.bidirectional)
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
    import tensorflow as tf

    from kerasrnn import data

    ds = data.text_dataset(texts, labels, batch_size, shuffle=shuffle, seed=seed)
    ds = ds.map(lambda x, y: (vectorizer(x), y), num_parallel_calls=tf.data.AUTOTUNE)
    if repeat:
        ds = ds.repeat()
    return ds.prefetch(tf.data.AUTOTUNE)


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
    from kerasrnn.plots import pyplot, save_png

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
    import tensorflow as tf

    out = []
    fn = tf.function(lambda x: model(x, training=False))
    for i in range(0, len(texts), batch_size):
        out.append(fn(tf.constant(texts[i:i + batch_size], dtype=tf.string)).numpy())
    return np.concatenate(out) if out else np.zeros((0, model.output.shape[-1]), np.float32)


# ----------------------------------------------------------------------------- run


def run(recipe: dict, run_dir: Path, resume: bool = False) -> dict:
    """Train a text classifier from a resolved recipe and write its run directory."""
    run_cfg = section(recipe, "run", RunConfig)
    data_cfg = section(recipe, "data", ClassificationData)
    model_cfg = section(recipe, "model", TextClassifierModel)
    train_cfg = section(recipe, "train", train.TrainConfig)
    cell = canonical_cell(model_cfg.cell)
    check_model_config(model_cfg.units, model_cfg.num_layers, model_cfg.dropout)
    train.set_seeds(run_cfg.seed)

    splits = load_splits(data_cfg, run_cfg.seed)
    names = splits.class_names
    print(f"Examples: {len(splits.train[0]):,} train / {len(splits.val[0]):,} validation / "
          f"{len(splits.test[0]):,} test; classes: {', '.join(names)}")
    work = rundir.start(run_dir, resume)
    try:
        rundir.write_json(work / "labels.json", {"class_names": names})
        text_model, ids_model, vectorizer = build_models(model_cfg, len(names), splits.train[0])
        bs = train_cfg.batch_size
        train_ds = _ids_dataset(*splits.train, vectorizer, bs, True, run_cfg.seed,
                                repeat=train_cfg.steps_per_epoch > 0)
        val_ds = _ids_dataset(*splits.val, vectorizer, bs, False, run_cfg.seed, repeat=False)
        train.compile_model(ids_model, train_cfg, "sparse_categorical_crossentropy", ["accuracy"], cell)
        fit_info = train.fit(ids_model, train_ds, val_ds, train_cfg, work)

        probs = predict_probs(text_model, splits.test[0])
        test = classification_metrics(splits.test[1], probs.argmax(-1), names)
        metrics = round_floats({"test_" + k if k in ("accuracy", "macro_precision", "macro_recall", "macro_f1")
                                else k: v for k, v in test.items()} | fit_info
                               | {"num_train": len(splits.train[0]), "num_test": len(splits.test[0]),
                                  "vocabulary_size": int(vectorizer.vocabulary_size())})
        plot_confusion(test["confusion_matrix"], names, work / "confusion_matrix.png")
        n = min(256, len(splits.val[0]))
        with atomic.atomic_file(work / "samples.npz", suffix=".npz") as tmp:
            np.savez(tmp, text=np.array(splits.val[0][:n], dtype=str), y=splits.val[1][:n].astype(np.int32))
        rundir.save_model(text_model, work / "model.keras")
        rundir.write_json(work / "metrics.json", metrics)
        rundir.write_info(work, recipe, max_len=model_cfg.max_len, num_classes=len(names))
    except BaseException:
        if not resume and not (work / "checkpoints" / "backup").exists():
            import shutil

            shutil.rmtree(work, ignore_errors=True)
        raise
    rundir.finish(work, run_dir)

    print_metrics(f"Test split ({run_dir}):", {k: metrics[k] for k in
                                               ("test_accuracy", "test_macro_precision", "test_macro_recall",
                                                "test_macro_f1")})
    print(f"  confusion matrix (rows true {names}): {metrics['confusion_matrix']}")
    print(f"Run directory: {run_dir}")
    return metrics
