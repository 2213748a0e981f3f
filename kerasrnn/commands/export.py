"""`kerasrnn export RUN_DIR --format keras|savedmodel|tflite [--quantize none|float16|int8] [--fold-embedding]`."""

from __future__ import annotations

import click

from kerasrnn.export import FORMATS, QUANTIZE
from kerasrnn.export import export_run


@click.command()
@click.argument("run_dir", type=click.Path(file_okay=False, path_type=str))
@click.option("--format", "fmt", type=click.Choice(FORMATS), required=True,
              help="keras (.keras, safe_mode loadable), savedmodel (named signatures), "
                   "tflite (LiteRT, builtin ops only).")
@click.option("--quantize", type=click.Choice(QUANTIZE), default="none", show_default=True,
              help="TFLite only: float16 weights, or int8 (full-integer for the generator's step model when it "
                   "passes the int8 gate, dynamic range otherwise; int8 is also the fastest on CPU, see "
                   "`kerasrnn bench export`).")
@click.option("--fold-embedding", is_flag=True, default=False,
              help="TFLite classifiers: fold the embedding into the first recurrent layer's input projection "
                   "(one table per direction): faster at every batch size (polarity BiGRU, one interpreter: 1.2x at "
                   "batch 1, 1.7x at batch 32), a file about 2.8x larger. Written to .../tflite[-<quantize>]-folded.")
def export(run_dir, fmt, quantize, fold_embedding):
    """Export a trained run to RUN_DIR/export/<format>[-<quantize>][-folded]/, parity-checked, with manifest.json.

    \b
    Examples:
      kerasrnn export saved_models/shakespeare-char --format tflite --quantize int8
      kerasrnn export saved_models/imdb-lstm --format savedmodel
      kerasrnn export saved_models/polarity-sentiment --format tflite --quantize int8 --fold-embedding
    """

    export_run(run_dir, fmt, quantize, fold_embedding=fold_embedding, log=click.echo)
