"""Export trained runs for apps that do not use kerasrnn: ``.keras``, SavedModel, TFLite/LiteRT.

``kerasrnn export RUN_DIR --format keras|savedmodel|tflite [--quantize none|float16|int8] [--fold-embedding]``
writes ``RUN_DIR/export/<format>[-<quantize>][-folded]/`` atomically, after checking the
artifact against the Keras model on the run's ``samples.npz``; each directory
has a ``manifest.json`` (inputs/outputs, vocabulary, tokenisation, versions,
sha256 of every file, parity results).

Modules: `exporter` (orchestration through one ``{task: module}`` table),
one module per task holding that task's whole export contract (`generation`,
`classification`, `forecasting`: side files, SavedModel/TFLite graphs,
parity metrics and gates, runners), and format mechanics only in `tflite`
(builtins-only conversion, dynamic-batch loops, quantisation),
`builtins_check` (flatbuffer operator audit), `savedmodel` (signatures),
`parity` (metrics and gate judging), `manifest` (hashes, verification),
`tokenizer` (the classifier's tokenisation in plain Python) and `runners`
(open an artifact, verified, with its task's runner).

>>> from kerasrnn.export import export_run  # doctest: +SKIP
>>> path, manifest = export_run("saved_models/imdb-lstm", "tflite")  # doctest: +SKIP
"""

FORMATS = ("keras", "savedmodel", "tflite")
QUANTIZE = ("none", "float16", "int8")


def export_run(run_dir, fmt: str, quantize: str = "none", fold_embedding: bool = False, log=print):
    """See `kerasrnn.export.exporter.export_run` (imported lazily: TensorFlow is heavy)."""
    from kerasrnn.export.exporter import export_run as _export_run  # lazy: imports TensorFlow

    return _export_run(run_dir, fmt, quantize, fold_embedding=fold_embedding, log=log)
