"""SavedModel mechanics: named serving signatures, loadable by plain `tf.saved_model.load`.

Each task's export module supplies its endpoints (`write`'s ``endpoints``:
``(name, function, input specs)``); ``serving_default`` aliases the first.
What the signatures are is documented in the task modules
(`kerasrnn.export.generation`, ``classification``, ``forecasting``).

>>> loaded = tf.saved_model.load("saved_models/run/export/savedmodel")  # doctest: +SKIP
>>> loaded.signatures["classify"](text=tf.constant(["a fine film"]))["probs"]  # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path

import keras
import tensorflow as tf

from kerasrnn.errors import UserError


class _TableWarningFilter(logging.Filter):
    def filter(self, record):
        return "table_initializer" not in record.getMessage()


@contextlib.contextmanager
def quiet_table_warning():
    """Keep TensorFlow's harmless "Issue encountered when serializing table_initializer" off the terminal.

    TensorFlow logs it whenever a graph is serialized (SavedModel writing, TFLite
    conversion) in a process that has created a lookup table, e.g. by loading a
    classifier with a ``TextVectorization`` layer; the table is not part of
    what is exported.
    """
    logger = logging.getLogger("tensorflow")
    quiet = _TableWarningFilter()
    logger.addFilter(quiet)
    try:
        yield
    finally:
        logger.removeFilter(quiet)


def write(directory: Path, endpoints: list, track: list) -> list[str]:
    """Write a SavedModel with `endpoints` into `directory` (empty or absent).

    Args:
        directory: target directory.
        endpoints: ``[(name, function, [tf.TensorSpec...]), ...]``; the first is also ``serving_default``.
        track: the Keras models/layers whose variables the functions use.

    Returns:
        The signature names (``serving_default`` first).
    """
    archive = keras.export.ExportArchive()
    for item in track:
        archive.track(item)
    for name, fn, spec in endpoints:
        archive.add_endpoint(name, fn, input_signature=spec)
    _, fn, spec = endpoints[0]
    archive.add_endpoint("serving_default", fn, input_signature=spec)
    with quiet_table_warning():
        archive.write_out(str(directory), verbose=False)
    return ["serving_default", *(name for name, _, _ in endpoints)]


def load(directory: Path):
    """`tf.saved_model.load`, with a one-line `UserError` for a corrupt or truncated SavedModel."""
    try:
        return tf.saved_model.load(str(directory))
    except (OSError, ValueError, RuntimeError, tf.errors.OpError) as e:
        reason = str(e).strip().splitlines()[0][:160] if str(e).strip() else type(e).__name__
        raise UserError(f"{directory} is not a loadable SavedModel ({reason}); export it again with "
                        "`kerasrnn export RUN_DIR --format savedmodel`") from None


def describe(loaded) -> dict:
    """Inputs/outputs (shape, dtype) of every signature of a loaded SavedModel."""
    out = {}
    for name, fn in loaded.signatures.items():
        _, inputs = fn.structured_input_signature
        out[name] = {
            "inputs": {k: _spec(v) for k, v in sorted(inputs.items())},
            "outputs": {k: _spec(v) for k, v in sorted(fn.structured_outputs.items())},
        }
    return out


def _spec(spec) -> dict:
    return {"shape": [None if d is None else int(d) for d in spec.shape], "dtype": spec.dtype.name}
