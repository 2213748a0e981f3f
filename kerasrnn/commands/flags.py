"""Say library settings in the CLI's words: ``temperature`` -> ``--temperature``.

Library errors (`kerasrnn.errors.KerasRNNError`) name the keyword argument or
recipe key; a command that exposes them as flags wraps its body in
`settings_as_flags` so the user reads the flag they typed.

>>> with settings_as_flags({"top_k": "--top-k"}):  # doctest: +SKIP
...     validate_options(10, 1, 1.0, -1, 1.0)
"""

from __future__ import annotations

import contextlib
import re

from kerasrnn.errors import KerasRNNError


def to_flags(message: str, flags: dict) -> str:
    """Replace each setting name of `flags` (a whole word, longest first) by its flag.

    >>> to_flags("top_k must be >= 0, got -1", {"top_k": "--top-k"})
    '--top-k must be >= 0, got -1'
    """
    for setting in sorted(flags, key=len, reverse=True):
        message = re.sub(rf"(?<![\w.-]){re.escape(setting)}(?![\w-])", flags[setting], message)
    return message


@contextlib.contextmanager
def settings_as_flags(flags: dict):
    """Re-raise a `KerasRNNError` from the block with a `cli_message` that names flags."""
    try:
        yield
    except KerasRNNError as e:
        if e.cli_message:
            raise
        raise KerasRNNError(e.message, cli_message=to_flags(e.message, flags)) from None
