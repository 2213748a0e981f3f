"""The recipe schema of text classification: its ``[data]``, ``[model]`` and ``[eval]`` keys.

Kept apart from `kerasrnn.tasks.classification` so that resolving a recipe
(``kerasrnn recipe show``) does not import TensorFlow. Every numeric key declares
its limits with `kerasrnn.recipes.setting`.

>>> SCHEMA["model"]().max_len
200
"""

from __future__ import annotations

from dataclasses import dataclass, field

from kerasrnn.recipes import RunConfig, TrainConfig, setting

SOURCES = ("tfds", "csv", "class_folders", "class_files")
POOLINGS = ("last", "concat")


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
        test_path: a separate CSV/TSV test file with the same columns as
            `path` (source "csv"; "" = carve the test part from `path` by
            `fractions`). Its labels must all occur in `path`.
        val_path: a separate CSV/TSV validation file for early stopping, same
            columns ("" = carve it from `path`).
        text_column: CSV text column, a header name or a 0-based index (default "text").
        label_column: CSV label column (default "label").
        delimiter: CSV delimiter, "" = tab for .tsv/.tab files, else comma (default "").
        header: the CSV has a header row (default true).
        quoting: honour "-quoting in the CSV (default true); false reads quotes as plain characters.
        encoding: text encoding of local files (default "utf-8").
        fractions: train/validation/test shares of a local dataset, split at
            random with run.seed (default [0.8, 0.1, 0.1]). With `test_path`
            (`val_path`) the test (validation) share is dropped and the others rescaled.
        val_fraction: share of the TFDS training split held out for validation (default 0.1).
        max_examples: use at most this many training examples, 0 = all (default 0).
        pretrain_paths: unlabelled text files (or globs), one text per non-empty
            line, added to the training texts for the language-model pretraining
            of ``model.pretrain_epochs`` (default none).
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
    test_path: str = ""
    val_path: str = ""
    text_column: str = "text"
    label_column: str = "label"
    delimiter: str = ""
    header: bool = True
    quoting: bool = True
    encoding: str = "utf-8"
    fractions: list[float] = setting(default_factory=lambda: [0.8, 0.1, 0.1], gt=0, lt=1, length=3, total=1)
    val_fraction: float = setting(0.1, gt=0, lt=1)
    max_examples: int = setting(0, ge=0)
    pretrain_paths: list[str] = field(default_factory=list)


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
        token_dropout: probability of dropping a whole token's embedding in
            training (`kerasrnn.dropout.TokenDropout`), 0 = off (default 0.0).
        recurrent_weight_dropout: DropConnect on each recurrent kernel U in
            training (AWD-LSTM's weight-drop; one mask per batch), 0 = off (default 0.0).
        pooling: "last" (final state) or "concat" (final state ; masked max ;
            masked mean over time, `kerasrnn.pooling.ConcatPooling`) (default "last").
        init_from: a run directory whose vocabulary, embedding and recurrent
            weights initialise this model ("" = random init) (default "").
        pretrain_epochs: before training the classifier, train its embedding
            and recurrent layers as a word language model for at most this many
            epochs (early-stopped on the validation texts) on the training texts
            plus ``data.pretrain_paths``; 0 = off (default 0). See `pretrain_language_model`.
            Use it with ``pooling = "concat"``: with the final state alone, fine-tuning
            from the language model stalled (SST-2 dev 56% vs 78% from scratch, measured).
    """

    max_tokens: int = setting(20000, ge=3)
    max_len: int = setting(200, ge=1)
    embedding_dim: int = setting(128, ge=1)
    cell: str = "lstm"
    units: int = setting(64, ge=1)
    num_layers: int = setting(1, ge=1)
    bidirectional: bool = True
    dropout: float = setting(0.3, ge=0, lt=1)
    token_dropout: float = setting(0.0, ge=0, lt=1)
    recurrent_weight_dropout: float = setting(0.0, ge=0, lt=1)
    pooling: str = setting("last", choices=POOLINGS)
    init_from: str = ""
    pretrain_epochs: int = setting(0, ge=0)


@dataclass
class ClassificationEval:
    """``[eval]``: how the classifier is measured.

    Attributes:
        folds: 0 = one train/validation/test split; K >= 2 = stratified K-fold
            cross-validation over all examples (default 0).
        val_fraction: in cross-validation, the share of each fold's training
            part (and of all data for the kept model) held out for early stopping (default 0.1).
        baseline: also train the TF-IDF n-gram baseline on the same splits (default true).
    """

    folds: int = setting(0, ge=0)
    val_fraction: float = setting(0.1, gt=0, lt=1)
    baseline: bool = True


SCHEMA = {"run": RunConfig, "data": ClassificationData, "model": TextClassifierModel,
          "train": TrainConfig, "eval": ClassificationEval}
