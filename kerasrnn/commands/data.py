"""`kerasrnn data`: prepare TFDS datasets offline and inspect data sources."""

from __future__ import annotations

import collections
import os

import click

from kerasrnn import data as kd
from kerasrnn.data import prepare_tfds
from kerasrnn.data.labeled import read_rows
from kerasrnn.errors import UserError


@click.group()
def data():
    """Prepare and inspect the data that recipes read."""


@data.command()
@click.argument("name")
@click.option("--manual-dir", required=True, type=click.Path(file_okay=False),
              help="Folder holding the dataset's downloaded files (named as TFDS expects, e.g. input.txt).")
@click.option("--data-dir", default=None, type=click.Path(file_okay=False),
              help="TFDS data dir to prepare into (default: $TFDS_DATA_DIR, else ~/tensorflow_datasets).")
def prepare(name, manual_dir, data_dir):
    """Prepare TFDS dataset NAME from already-downloaded files (no network needed)."""

    root = prepare_tfds(name, manual_dir=manual_dir, data_dir=data_dir)
    click.echo(f"{name} is prepared in {root}")
    click.echo(f"use it with: TFDS_DATA_DIR={root} (or --set data.data_dir={root})")


def _summarise_text(text: str) -> list[str]:
    counts = collections.Counter(text)
    common = "".join(c for c, _ in counts.most_common(20)).encode("unicode_escape").decode("ascii")
    return [
        f"characters: {len(text):,}",
        f"distinct characters: {len(counts)}",
        f"lines: {text.count(chr(10)) + (0 if text.endswith(chr(10)) else 1):,}",
        f"most common: {common}",
    ]


def _summarise_examples(texts, labels, class_names) -> list[str]:
    per_class = collections.Counter(labels)
    lines = [f"examples: {len(texts):,}", f"classes: {len(class_names)}"]
    lines += [f"  {name}: {per_class.get(i, 0):,}" for i, name in enumerate(class_names)]
    if texts:
        lengths = sorted(len(t.split()) for t in texts)
        lines.append(f"words per example: median {lengths[len(lengths) // 2]}, max {lengths[-1]}")
    return lines


@data.command()
@click.argument("source")
@click.option("--text-column", default=None, help="CSV/TSV text column (name or 0-based index).")
@click.option("--label-column", default=None, help="CSV/TSV label column (name or 0-based index).")
@click.option("--no-quoting", is_flag=True, help="Read CSV/TSV quotes as plain characters.")
@click.option("--encoding", default="utf-8", show_default=True)
@click.option("--split", default="train", show_default=True, help="Split for tfds:NAME sources.")
def inspect(source, text_column, label_column, no_quoting, encoding, split):
    """Summarise SOURCE: a text file or glob, a CSV/TSV, a class-folder root, or tfds:NAME."""
    try:
        lines = _inspect(source, text_column, label_column, no_quoting, encoding, split)
    except UserError as e:  # name this command's option, not the recipe key
        raise UserError(e.message.replace("set data.encoding=", "pass --encoding ")) from None
    click.echo(source)
    for line in lines:
        click.echo(f"  {line}")


def _inspect(source, text_column, label_column, no_quoting, encoding, split) -> list[str]:

    if source.startswith("tfds:"):
        lines = _summarise_text(kd.load_tfds_text(source[5:], split))
    elif os.path.isdir(source):
        lines = _summarise_examples(*kd.load_class_folders(source, encoding=encoding))
    elif os.path.splitext(source)[1].lower() in (".csv", ".tsv", ".tab"):

        rows = read_rows(source, quoting=not no_quoting, encoding=encoding)
        if text_column is None or label_column is None:
            if not rows:
                raise UserError(f"{source} is empty")
            lines = [f"rows: {len(rows) - 1:,} (+ header)", f"columns: {', '.join(rows[0])}",
                     "pass --text-column and --label-column for examples per class"]
        else:
            lines = _summarise_examples(*kd.load_csv(source, text_column, label_column,
                                                     quoting=not no_quoting, encoding=encoding))
    else:
        lines = _summarise_text(kd.load_text(source, encoding=encoding, key="SOURCE"))
    return lines
