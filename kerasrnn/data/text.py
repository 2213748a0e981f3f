"""Plain-text corpora for character models: user files and Python's own stdlib."""

from __future__ import annotations

import os
import random
import sysconfig

from kerasrnn.data.files import expand_paths, read_text_file
from kerasrnn.errors import UserError

# Directories of the standard library that are not "the library itself".
STDLIB_SKIP_DIRS = frozenset({"test", "tests", "idlelib", "site-packages", "dist-packages", "__pycache__"})


def join_texts(pieces) -> str:
    """Concatenate text pieces, adding a newline between two only when the first lacks one."""
    out: list[str] = []
    for piece in pieces:
        if out and out[-1] and not out[-1].endswith("\n"):
            out.append("\n")
        out.append(piece)
    return "".join(out)


def load_text(paths: str | list[str], encoding: str = "utf-8", key: str = "data.paths") -> str:
    """Load one file, several files, or a glob as one string with LF line endings.

    Files are concatenated in order (glob matches sorted); a newline is put
    between two files when the first does not end with one.

    Args:
        paths: a path, a glob (``"books/*.txt"``) or a list of paths/globs.
        encoding: text encoding of the files (default ``"utf-8"``).
        key: the setting that gave `paths`, named in error messages (default ``"data.paths"``).

    Raises:
        UserError: no file matches, a file is missing, a file is not valid
            `encoding`, or the text is empty.

    >>> text = load_text("../shared/data/tiny_shakespeare/input.txt")  # doctest: +SKIP
    >>> len(text)  # doctest: +SKIP
    1115394
    """
    files = expand_paths(paths, key=key)
    text = join_texts(read_text_file(f, encoding, key=key) for f in files)
    if not text.strip():
        where = files[0] if len(files) == 1 else f"{len(files)} files ({files[0]}, ...)"
        raise UserError(f"{where}: the text is empty; point {key} at a non-empty text file")
    return text


def stdlib_dir() -> str:
    """The directory of the running Python's standard library sources."""
    return sysconfig.get_paths()["stdlib"]


def stdlib_source_files(root: str | None = None) -> list[str]:
    """All ``.py`` files of the standard library, sorted, without tests/idlelib/site-packages."""
    root = root or stdlib_dir()
    files = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in STDLIB_SKIP_DIRS and not d.startswith("."))
        files.extend(os.path.join(dirpath, f) for f in filenames if f.endswith(".py"))
    return sorted(files, key=lambda p: os.path.relpath(p, root))


def load_python_stdlib_text(max_bytes: int = 3_000_000, seed: int = 0) -> str:
    """Python source code from the standard library of the running interpreter.

    Works offline on any machine with Python. The ``.py`` files (skipping
    ``test/``, ``tests/``, ``idlelib/``, ``site-packages/``, ``__pycache__/``)
    are listed in sorted order; a `seed`-ed shuffle picks which whole files fit
    in `max_bytes` (so the sample spans the whole library rather than its
    alphabetical start), and the picked files are concatenated in sorted order.
    Files that are not valid UTF-8 are skipped. Same Python + same arguments
    gives the same text.

    Args:
        max_bytes: cap on the UTF-8 size of the result (default 3,000,000).
        seed: which files are sampled (default 0).

    >>> text = load_python_stdlib_text(max_bytes=100_000)
    >>> 0 < len(text.encode()) <= 100_000
    True
    """
    if max_bytes <= 0:
        raise UserError(f"data.max_bytes must be positive, got {max_bytes}")
    root = stdlib_dir()
    files = stdlib_source_files(root)
    if not files:
        raise UserError(f"no Python sources found under {root}; use a text corpus instead (data.source = \"text\" "
                        "and data.paths)")
    order = list(files)
    random.Random(seed).shuffle(order)
    picked: dict[str, str] = {}
    total = 0
    for path in order:
        size = os.path.getsize(path)
        if size == 0 or total + size > max_bytes:
            continue
        with open(path, "rb") as f:
            data = f.read()
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            continue
        text = text.lstrip("\ufeff").replace("\r\n", "\n").replace("\r", "\n")
        if not text.endswith("\n"):
            text += "\n"
        n = len(text.encode("utf-8"))
        if total + n > max_bytes:
            continue
        picked[path] = text
        total += n
        if max_bytes - total < 64:
            break
    if not picked:
        raise UserError(f"data.max_bytes={max_bytes} is smaller than every stdlib file; raise it")
    return "".join(picked[p] for p in files if p in picked)
