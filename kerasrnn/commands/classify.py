"""`kerasrnn classify RUN_DIR TEXT... | --file F`: label raw strings with a trained classifier."""

from __future__ import annotations

import click

from kerasrnn.commands.flags import settings_as_flags
from kerasrnn.data.files import read_text_file
from kerasrnn.errors import UserError
from kerasrnn.rundir import load_run


@click.command()
@click.argument("run_dir", type=click.Path(file_okay=False), required=False)
@click.argument("texts", nargs=-1)
@click.option("--file", "file_", type=click.Path(dir_okay=False),
              help="Classify every non-empty line of this file instead.")
@click.option("--encoding", default="utf-8", show_default=True, help="Encoding of --file.")
@click.option("--batch-size", default=32, show_default=True, type=click.IntRange(min=1),
              help="Sentences per model call (--tflite/--savedmodel run batched too).")
@click.option("--workers", default=None, type=click.IntRange(min=1),
              help="--tflite only: LiteRT interpreters running batches concurrently "
                   "[default: the usable cores, at most 2].")
@click.option("--tflite", "tflite_file", type=click.Path(dir_okay=False, exists=True), default=None,
              help="Run this exported TFLite classifier (LiteRT interpreter); then every argument is a text.")
@click.option("--savedmodel", "savedmodel_dir", type=click.Path(file_okay=False, exists=True), default=None,
              help="Run this exported SavedModel ('classify' signature); then every argument is a text.")
def classify(run_dir, texts, file_, encoding, batch_size, workers, tflite_file, savedmodel_dir):
    """Print the predicted class and its probability for each text (tab-separated)."""
    from kerasrnn.export.runners import cli_artifact  # lazy: imports TensorFlow
    from kerasrnn.tasks.classification import predict_probs  # lazy: imports TensorFlow

    if (tflite_file or savedmodel_dir) and run_dir is not None:
        texts = (run_dir, *texts)  # no RUN_DIR with an artifact: the first argument is a text too
        run_dir = None
    if workers is not None and not tflite_file:
        raise UserError("--workers applies to --tflite only; drop it or pass --tflite FILE")
    with settings_as_flags({"batch_size": "--batch-size", "workers": "--workers"}):
        artifact = cli_artifact(run_dir, tflite_file, savedmodel_dir, task="classification", batch_size=batch_size,
                                workers=workers)
    if file_ and texts:
        raise UserError("give texts as arguments or --file, not both")
    if file_:
        texts = [line.strip() for line in read_text_file(file_, encoding, option="--encoding").split("\n")
                 if line.strip()]
        if not texts:
            raise UserError(f"{file_} has no non-empty lines to classify")
    if not texts:
        raise UserError("nothing to classify: give one or more texts, or --file FILE")
    for i, text in enumerate(texts):
        if not text.strip():
            raise UserError(f"text #{i + 1} is empty; give a non-empty string to classify")
    if artifact is not None:
        names, probs = artifact.class_names, artifact.predict_proba(list(texts))
    else:
        run = load_run(run_dir, task="classification")
        names = run.labels["class_names"]
        probs = predict_probs(run.model, list(texts), batch_size=batch_size)
    for text, p in zip(texts, probs):
        best = int(p.argmax())
        shown = text if len(text) <= 60 else text[:57] + "..."
        click.echo(f"{names[best]}\t{p[best]:.3f}\t{shown}")
