"""Labelled text examples for classifiers: CSV/TSV, class folders, one file per class.

Every loader returns ``(texts, labels, class_names)``: a list of strings, a list
of int label ids and the class names, where ``class_names[label]`` names a label.
"""

from __future__ import annotations

import csv
import io
import os

import numpy as np

from kerasrnn.data.files import expand_paths, read_text_file
from kerasrnn.errors import UserError

Examples = tuple[list[str], list[int], list[str]]


# --------------------------------------------------------------------------- csv

def default_delimiter(path: str) -> str:
    """``"\\t"`` for ``.tsv``/``.tab`` files, else ``","``."""
    return "\t" if os.path.splitext(os.fspath(path))[1].lower() in (".tsv", ".tab") else ","


def read_rows(path, delimiter: str | None = None, quoting: bool = True, encoding: str = "utf-8") -> list[list[str]]:
    """All non-blank rows of a delimited file (header included)."""
    path = os.fspath(path)
    text = read_text_file(path, encoding)
    delimiter = delimiter or default_delimiter(path)
    reader = csv.reader(io.StringIO(text), delimiter=delimiter,
                        quoting=csv.QUOTE_MINIMAL if quoting else csv.QUOTE_NONE)
    try:
        return [row for row in reader if row]
    except csv.Error as e:
        raise UserError(
            f"{path} line {reader.line_num}: {e}; if the file has stray quotes pass --set data.quoting=false"
        ) from None


def column_index(column: str | int, header: list[str] | None, path: str) -> int:
    """Resolve a column given by header name or 0-based index (an int or a digit string)."""
    available = ", ".join(repr(h) for h in header) if header else None
    if isinstance(column, str) and header is not None and column in header:
        return header.index(column)
    if isinstance(column, str) and column.strip().lstrip("-").isdigit():
        column = int(column)
    if isinstance(column, (int, np.integer)) and not isinstance(column, bool):
        width = len(header) if header is not None else None
        if width is None or -width <= column < width:
            return int(column)
    if header is None:
        raise UserError(f"column {column!r} of {path}: a file without header takes 0-based column indices")
    raise UserError(f"column {column!r} not found in {path}; available columns: {available} (or a 0-based index)")


def _cell(row: list[str], index: int, path: str, line: int, column) -> str:
    try:
        return row[index]
    except IndexError:
        raise UserError(
            f"{path} row {line} has {len(row)} fields, no column {column!r}; "
            "check data.delimiter (and data.quoting=false for stray quotes)"
        ) from None


def label_names(raw_labels) -> list[str]:
    """Sorted unique labels; integer-looking labels sort numerically ("2" before "10")."""
    unique = set(raw_labels)
    try:
        return sorted(unique, key=lambda s: (int(s), s))
    except ValueError:
        return sorted(unique)


def load_csv(path, text_column: str | int, label_column: str | int, delimiter: str | None = None,
             header: bool = True, quoting: bool = True, encoding: str = "utf-8") -> Examples:
    """Labelled texts from a CSV/TSV file.

    Args:
        path: the file.
        text_column, label_column: header name or 0-based index.
        delimiter: default ``"\\t"`` for ``.tsv``/``.tab``, else ``","``.
        header: whether the first row names the columns (default True).
        quoting: honour ``"``-quoting (default True); False reads quotes as
            plain characters (``csv.QUOTE_NONE``), for TSVs with stray quotes.
        encoding: default ``"utf-8"``.

    Returns:
        ``(texts, labels, class_names)``; class names are the sorted unique
        label strings (numerically sorted when they are all integers), and
        ``labels[i]`` indexes them.

    >>> texts, labels, names = load_csv("reviews.tsv", "review", "sentiment")  # doctest: +SKIP
    """
    path = os.fspath(path)
    rows = read_rows(path, delimiter, quoting, encoding)
    names = rows[0] if header and rows else None
    body = rows[1:] if header else rows
    if not body:
        raise UserError(f"{path} has no data rows; check the file and data.header")
    ti = column_index(text_column, names, path)
    li = column_index(label_column, names, path)
    first = 2 if header else 1
    texts = [_cell(r, ti, path, n, text_column) for n, r in enumerate(body, first)]
    raw = [_cell(r, li, path, n, label_column).strip() for n, r in enumerate(body, first)]
    class_names = label_names(raw)
    ids = {name: i for i, name in enumerate(class_names)}
    return texts, [ids[r] for r in raw], class_names


# ---------------------------------------------------------------- folders/files

def _visible_entries(root: str) -> list[str]:
    return sorted(e for e in os.listdir(root) if not e.startswith("."))


def load_class_folders(root, encoding: str = "utf-8", classes: list[str] | None = None) -> Examples:
    """One sub-folder per class, each file in it one example (like ``aclImdb/train/{pos,neg}``).

    Args:
        root: the folder holding one sub-folder per class.
        encoding: default ``"utf-8"``.
        classes: sub-folders to use (default: all; aclImdb's ``train/`` also
            has an unlabelled ``unsup/`` folder, so pass ``["neg", "pos"]``).

    Returns:
        ``(texts, labels, class_names)`` with class names the sorted folder names.

    >>> texts, labels, names = load_class_folders("aclImdb/train", classes=["neg", "pos"])  # doctest: +SKIP
    """
    root = os.path.expanduser(os.fspath(root))
    if not os.path.isdir(root):
        raise UserError(f"class folder root {root} is not a directory; expected ROOT/<class>/<example files>")
    folders = [e for e in _visible_entries(root) if os.path.isdir(os.path.join(root, e))]
    if classes is not None:
        missing = [c for c in classes if c not in folders]
        if missing:
            raise UserError(f"class folder(s) {missing} not in {root}; available: {folders}")
        folders = sorted(classes)
    if not folders:
        raise UserError(f"{root} has no sub-folders; expected one sub-folder per class")
    texts, labels = [], []
    for label, name in enumerate(folders):
        folder = os.path.join(root, name)
        files = [os.path.join(folder, f) for f in _visible_entries(folder)]
        files = [f for f in files if os.path.isfile(f)]
        if not files:
            raise UserError(f"class folder {folder} has no files; each file is one example")
        for f in files:
            texts.append(read_text_file(f, encoding).strip())
            labels.append(label)
    return texts, labels, folders


def class_name_for_files(files: list[str]) -> list[str]:
    """Class names for one-file-per-class lists: the suffix when all differ, else the stem.

    ``rt-polarity.pos, rt-polarity.neg`` -> ``pos, neg``; ``pos.txt, neg.txt`` -> ``pos, neg``.
    """
    bases = [os.path.basename(f) for f in files]
    suffixes = [os.path.splitext(b)[1].lstrip(".") for b in bases]
    if all(suffixes) and len(set(suffixes)) == len(suffixes):
        return suffixes
    stems = [os.path.splitext(b)[0] for b in bases]
    if len(set(stems)) == len(stems):
        return stems
    raise UserError(f"cannot name classes from files {files}; give data.files as a table {{class = path}}")


def load_class_files(files: dict[str, str] | list[str], encoding: str = "utf-8") -> Examples:
    """One file per class, each non-empty line one example (like ``rt-polarity.pos``/``.neg``).

    Args:
        files: ``{class_name: path}`` (class order as given), or a list of
            paths / a glob (class name = the file suffix, or the stem when the
            suffixes are shared; classes sorted).
        encoding: default ``"utf-8"``.

    >>> texts, labels, names = load_class_files(["rt-polarity.neg", "rt-polarity.pos"])  # doctest: +SKIP
    >>> names  # doctest: +SKIP
    ['neg', 'pos']
    """
    if isinstance(files, dict):
        pairs = [(str(k), os.fspath(v)) for k, v in files.items()]
    else:
        paths = expand_paths(files)
        pairs = sorted(zip(class_name_for_files(paths), paths))
    if not pairs:
        raise UserError("no class files given; set data.files")
    texts, labels, class_names = [], [], []
    for label, (name, path) in enumerate(pairs):
        lines = [line.strip() for line in read_text_file(path, encoding).split("\n")]
        lines = [line for line in lines if line]
        if not lines:
            raise UserError(f"class file {path} (class {name!r}) has no non-empty lines")
        texts.extend(lines)
        labels.extend([label] * len(lines))
        class_names.append(name)
    return texts, labels, class_names


# ------------------------------------------------------------------ validation

def map_labels(labels, names: list[str], class_names: list[str], where: str) -> np.ndarray:
    """Re-index labels of a second file (ids into `names`) onto the training file's `class_names`.

    Raises `UserError` naming the labels the training data never saw.

    >>> map_labels([0, 1], ["neg", "pos"], ["neg", "neu", "pos"], "data.test_path").tolist()
    [0, 2]
    >>> try:
    ...     map_labels([0], ["meh"], ["neg", "pos"], "data.test_path")
    ... except UserError as e:
    ...     print(e)
    data.test_path has label(s) ['meh'] that the training data does not have (its labels: ['neg', 'pos']); fix the label column or train on data that has them
    """
    ids = {name: i for i, name in enumerate(class_names)}
    used = sorted({names[int(i)] for i in labels})
    unseen = [n for n in used if n not in ids]
    if unseen:
        raise UserError(f"{where} has label(s) {unseen} that the training data does not have "
                        f"(its labels: {list(class_names)}); fix the label column or train on data that has them")
    return np.array([ids[names[int(i)]] for i in labels], dtype=np.int32)


def check_classes(labels, class_names) -> None:
    """Raise `UserError` unless at least two classes are present and labels are in range.

    >>> check_classes([0, 1, 1], ["neg", "pos"])
    >>> try:
    ...     check_classes([1, 1], ["neg", "pos"])
    ... except UserError as e:
    ...     print(e)
    the data has only one class 'pos' (class_names: ['neg', 'pos']); a classifier needs examples of at least 2 classes, check the data paths and label column
    """
    labels = np.asarray(labels)
    if labels.size == 0:
        raise UserError("the data has no examples; check the data paths")
    bad = labels[(labels < 0) | (labels >= len(class_names))]
    if bad.size:
        raise UserError(f"label id {int(bad[0])} is out of range for {len(class_names)} classes {list(class_names)}")
    present = sorted(set(labels.tolist()))
    if len(present) < 2:
        raise UserError(
            f"the data has only one class {class_names[present[0]]!r} (class_names: {list(class_names)}); "
            "a classifier needs examples of at least 2 classes, check the data paths and label column"
        )


def split_examples(texts, labels, fractions=(0.8, 0.1, 0.1), seed: int = 0):
    """A fixed random train/validation/test split.

    Args:
        texts, labels: parallel sequences.
        fractions: (train, validation, test), summing to 1 (default 0.8/0.1/0.1).
            A split with fraction 0 is empty; any other empty split is an error.
        seed: the permutation seed (default 0).

    Returns:
        ``((train_x, train_y), (val_x, val_y), (test_x, test_y))`` as lists.

    >>> (tr, va, te) = split_examples(list("abcdefghij"), list(range(10)))
    >>> len(tr[0]), len(va[0]), len(te[0])
    (8, 1, 1)
    """
    texts, labels = list(texts), list(labels)
    if len(texts) != len(labels):
        raise UserError(f"{len(texts)} texts but {len(labels)} labels")
    fractions = tuple(float(f) for f in fractions)
    if len(fractions) != 3 or min(fractions) < 0 or abs(sum(fractions) - 1.0) > 1e-6:
        raise UserError(f"data.fractions must be 3 non-negative fractions summing to 1 (train, val, test), "
                        f"got {list(fractions)}")
    n = len(texts)
    n_train = int(round(n * fractions[0]))
    n_val = int(round(n * fractions[1]))
    n_val = min(n_val, n - n_train)
    sizes = (n_train, n_val, n - n_train - n_val)
    for name, size, frac in zip(("train", "validation", "test"), sizes, fractions):
        if size == 0 and frac > 0:
            raise UserError(
                f"splitting {n} examples with fractions {list(fractions)} leaves the {name} split empty; "
                "use more data or change data.fractions"
            )
    order = np.random.default_rng(seed).permutation(n)
    out, start = [], 0
    for size in sizes:
        idx = order[start:start + size]
        out.append(([texts[i] for i in idx], [labels[i] for i in idx]))
        start += size
    return tuple(out)
