"""Atomic writes: build in a temporary sibling, then rename into place.

Nothing half-written is ever left at the target path: if the body of
`atomic_dir` or `atomic_file` raises (or the process is killed), the target is
untouched and the temporary sibling is removed (or, after a kill, left under a
``.tmp-`` name that no reader looks at).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _publish_mode(path: Path, mode: int) -> None:
    """Give `path` the permissions a plain create would (mkstemp/mkdtemp make it private)."""
    if path.exists():
        os.chmod(path, mode & ~_umask())


@contextlib.contextmanager
def atomic_dir(target: str | os.PathLike, overwrite: bool = True):
    """Yield a temporary directory next to `target`; rename it to `target` on success.

    Args:
        target: final directory path.
        overwrite: replace an existing `target` (default True). The old one is
            moved aside first and deleted only after the new one is in place.

    >>> with atomic_dir("out/export") as tmp:  # doctest: +SKIP
    ...     (tmp / "model.tflite").write_bytes(b"...")
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{target.name}-", dir=target.parent))
    try:
        yield tmp
        _publish_mode(tmp, 0o777)
        old = None
        if target.exists():
            if not overwrite:
                raise FileExistsError(f"{target} already exists")
            old = target.with_name(f".old-{target.name}-{os.getpid()}")
            os.replace(target, old)
        os.replace(tmp, target)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


@contextlib.contextmanager
def atomic_file(target: str | os.PathLike, suffix: str = ""):
    """Yield a temporary file path next to `target`; rename it to `target` on success.

    `suffix` keeps an extension some writers insist on (Keras wants ``.keras``).
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".tmp-{target.name}-", suffix=suffix, dir=target.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        _publish_mode(tmp, 0o666)
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_text(target: str | os.PathLike, text: str) -> None:
    """Write `text` to `target` atomically (UTF-8)."""
    with atomic_file(target) as tmp:
        tmp.write_text(text, encoding="utf-8")
