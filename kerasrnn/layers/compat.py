"""The only place kerasrnn touches Keras' private ``keras.src`` modules.

Keras 3 has no public home for one thing the layers need:

* ``DropoutRNNCell`` — the mixin that `keras.layers.RNN` recognises (by
  ``isinstance``) to create a cell's dropout masks once per batch, outside the
  time loop. A cell that does not inherit it gets no per-batch masks.

(The fused loops in `kerasrnn.layers.fused` are plain TensorFlow and need no
private Keras module.) If a Keras upgrade moves it, importing this module raises
an ImportError that names the missing symbol, the installed Keras version and the
version this path was checked against, instead of a bare ``ModuleNotFoundError``
deep inside a layer (``tests/test_layers_options.py`` keeps it that way).

>>> from kerasrnn.layers.compat import DropoutRNNCell
>>> DropoutRNNCell.__name__
'DropoutRNNCell'
"""

from __future__ import annotations

import importlib

import keras

__all__ = ["DropoutRNNCell", "PRIVATE_IMPORTS", "CHECKED_KERAS_VERSION", "load_private"]

#: The Keras version this private path was last checked against.
CHECKED_KERAS_VERSION = "3.15.1"

#: name exported here -> (private module, attribute in it).
PRIVATE_IMPORTS = {
    "DropoutRNNCell": ("keras.src.layers.rnn.dropout_rnn_cell", "DropoutRNNCell"),
}


def load_private(name: str):
    """Return the private Keras object exported here as `name`, or raise a clear ImportError.

    Args:
        name: a key of `PRIVATE_IMPORTS`.

    >>> load_private("DropoutRNNCell").__name__
    'DropoutRNNCell'
    """
    module_name, attribute = PRIVATE_IMPORTS[name]
    try:
        return getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError) as exc:
        raise ImportError(
            f"kerasrnn needs `{module_name}.{attribute}` from Keras, which Keras "
            f"{keras.__version__} no longer provides there (checked against Keras "
            f"{CHECKED_KERAS_VERSION}); update kerasrnn/layers/compat.py to its new location "
            f"or install keras=={CHECKED_KERAS_VERSION}. ({type(exc).__name__}: {exc})"
        ) from exc


DropoutRNNCell = load_private("DropoutRNNCell")
