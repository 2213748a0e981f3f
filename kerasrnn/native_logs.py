"""Native (C++) log lines: the one switch the CLI and the library share.

TensorFlow and LiteRT print some lines from C++ straight to file descriptor 2,
out of reach of Python's logging (TensorFlow's start-up lines; LiteRT's
``INFO: Created TensorFlow Lite XNNPACK delegate for CPU.`` when an interpreter
is made). The process-wide switch is TensorFlow's own ``TF_CPP_MIN_LOG_LEVEL``:
at 1 or above, INFO lines are unwanted. The CLI sets it to 3 unless
``--verbose``; a library user keeps whatever they set (unset = 0: every line
shows, as with TensorFlow itself).

>>> with native_stderr_silenced():  # doctest: +SKIP
...     interpreter = Interpreter(model_path)
"""

from __future__ import annotations

import contextlib
import os
import sys

__all__ = ["native_stderr_silenced", "info_lines_unwanted"]


@contextlib.contextmanager
def native_stderr_silenced():
    """Point file descriptor 2 at /dev/null (C++ writes included), then restore it."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)


def info_lines_unwanted() -> bool:
    """True when ``TF_CPP_MIN_LOG_LEVEL`` is 1 or more (INFO lines filtered).

    >>> info_lines_unwanted()  # doctest: +SKIP  (with TF_CPP_MIN_LOG_LEVEL=2 in the environment)
    True
    """
    try:
        return int(os.environ.get("TF_CPP_MIN_LOG_LEVEL", "0").strip() or 0) >= 1
    except ValueError:
        return False
