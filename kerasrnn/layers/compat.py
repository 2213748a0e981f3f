"""The only place the layers touch private ``keras.src`` (and TensorFlow) modules.

Keras 3 has no public home for one thing the layers need:

* ``DropoutRNNCell`` — the mixin that `keras.layers.RNN` recognises (by
  ``isinstance``) to create a cell's dropout masks once per batch, outside the
  time loop. A cell that does not inherit it gets no per-batch masks.

TensorFlow has none for one thing the fused loops ask
(`kerasrnn.layers.fused.in_xla_context`): whether the graph being traced will be
compiled with XLA as a whole (a TensorFlow function with ``jit_compile=True``,
e.g. a model compiled with ``jit_compile=True``). Its path is listed here too, and loaded only
when the fused loops ask, so on the JAX and torch backends nothing imports
TensorFlow.

If a Keras upgrade moves ``DropoutRNNCell``, importing this module raises
an ImportError that names the missing symbol, the installed Keras version and the
version this path was checked against, instead of a bare ``ModuleNotFoundError``
deep inside a layer (``tests/test_layers_options.py`` keeps it that way); the TensorFlow path fails
the same way (``tests/test_fused_split.py``).

>>> from kerasrnn.layers.compat import DropoutRNNCell
>>> DropoutRNNCell.__name__
'DropoutRNNCell'
"""

from __future__ import annotations

import importlib
import sys

import keras

__all__ = ["DropoutRNNCell", "PRIVATE_IMPORTS", "CHECKED_KERAS_VERSION", "CHECKED_TF_VERSION", "load_private"]

#: The Keras version this private path was last checked against.
CHECKED_KERAS_VERSION = "3.15.1"

#: The TensorFlow version `in_xla_context`'s private path was last checked against.
CHECKED_TF_VERSION = "2.21.0"

#: name exported here -> (private module, attribute in it).
PRIVATE_IMPORTS = {
    "DropoutRNNCell": ("keras.src.layers.rnn.dropout_rnn_cell", "DropoutRNNCell"),
    "GraphOrParentsInXlaContext": ("tensorflow.python.ops.control_flow_util", "GraphOrParentsInXlaContext"),
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
        if module_name.startswith("tensorflow"):  # asked for by the fused loops, which imported it
            installed = getattr(sys.modules.get("tensorflow"), "__version__", "?")
            package, checked = "TensorFlow", CHECKED_TF_VERSION
            pin = f"tensorflow=={CHECKED_TF_VERSION}"
        else:
            package, installed, checked = "Keras", keras.__version__, CHECKED_KERAS_VERSION
            pin = f"keras=={CHECKED_KERAS_VERSION}"
        raise ImportError(
            f"kerasrnn needs `{module_name}.{attribute}` from {package}, which {package} "
            f"{installed} no longer provides there (checked against {package} "
            f"{checked}); update kerasrnn/layers/compat.py to its new location "
            f"or install {pin}. ({type(exc).__name__}: {exc})"
        ) from exc


DropoutRNNCell = load_private("DropoutRNNCell")
