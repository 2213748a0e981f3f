"""`kerasrnn export RUN_DIR --format keras|savedmodel|tflite [--quantize none|float16|int8]`."""

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
def export(run_dir, fmt, quantize):
    """Export a trained run to RUN_DIR/export/<format>[-<quantize>]/, parity-checked, with manifest.json.

    \b
    Examples:
      kerasrnn export saved_models/shakespeare-char --format tflite --quantize int8
      kerasrnn export saved_models/imdb-lstm --format savedmodel
    """

    export_run(run_dir, fmt, quantize, log=click.echo)
