"""Reading user files: path/glob expansion and decoding with a fixable error.

Every loader in `kerasrnn.data` reads bytes through `read_text_file`, so an
undecodable file always produces the same one-line `UserError` that names the
byte offset and the setting to change (the recipe key ``data.encoding``).
"""

from __future__ import annotations

import glob
import os

from kerasrnn.errors import UserError

_GLOB_CHARS = "*?["


def expand_paths(paths: str | os.PathLike | list, key: str = "data.path") -> list[str]:
    """Expand one path, a glob, or a list of them into existing files, in order.

    Globs expand to their matches in sorted order; explicit paths keep the
    order given. Raises `UserError` for a pattern with no match, a missing file
    or a directory, naming `key`, the setting the paths came from.

    >>> expand_paths("corpus/*.txt")  # doctest: +SKIP
    ['corpus/a.txt', 'corpus/b.txt']
    """
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    if not paths:
        raise UserError(f"no input files given; set {key} to a file, a list of files or a glob")
    files: list[str] = []
    for pattern in map(os.fspath, paths):
        pattern = os.path.expanduser(pattern)
        if any(c in pattern for c in _GLOB_CHARS):
            matches = sorted(p for p in glob.glob(pattern, recursive=True) if os.path.isfile(p))
            if not matches:
                raise UserError(f"no file matches {pattern!r}; check {key} (globs like 'dir/*.txt' are allowed)")
            files.extend(matches)
        elif os.path.isdir(pattern):
            raise UserError(f"{pattern} is a directory; pass a file or a glob such as '{os.path.join(pattern, '*.txt')}'")
        elif not os.path.isfile(pattern):
            raise UserError(f"file not found: {pattern}; check {key}")
        else:
            files.append(pattern)
    return files


def decode_bytes(data: bytes, path: str, encoding: str = "utf-8", option: str = "data.encoding") -> str:
    """Decode `data` read from `path`; a UTF-8 BOM is dropped, CRLF/CR become LF.

    Raises `UserError` naming the byte offset and the setting that gives the
    encoding (`option`: the recipe key ``data.encoding`` by default, "set
    data.encoding=cp1252"; a command that reads a file directly passes its flag,
    e.g. ``--encoding``: "pass --encoding=cp1252").
    """
    try:
        text = data.decode(encoding)
    except LookupError:
        raise UserError(f"unknown text encoding {encoding!r}; use a Python codec name such as utf-8 or cp1252") from None
    except UnicodeDecodeError as e:
        hint = "cp1252" if encoding.lower().replace("_", "-") in ("utf-8", "utf8") else "utf-8"
        verb = "pass" if option.startswith("-") else "set"
        raise UserError(
            f"{path} is not valid {encoding} at byte {e.start}; "
            f"{verb} {option}={hint} (or the file's encoding)"
        ) from None
    if text.startswith("\ufeff"):
        text = text[1:]
    return text.replace("\r\n", "\n").replace("\r", "\n")


def read_text_file(path: str | os.PathLike, encoding: str = "utf-8", option: str = "data.encoding",
                   key: str | None = None) -> str:
    """Read one whole file as text with `decode_bytes` (LF line endings); `option` as there.

    `key` is the setting the path came from (e.g. ``data.paths``), named if the file is missing.

    >>> read_text_file("input.txt")[:5]  # doctest: +SKIP
    'First'
    """
    path = os.fspath(path)
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        raise UserError(f"file not found: {path}; check {key or 'the path'}") from None
    except IsADirectoryError:
        raise UserError(f"{path} is a directory, expected a file") from None
    except PermissionError:
        raise UserError(f"cannot read {path}: permission denied") from None
    return decode_bytes(data, path, encoding, option)
