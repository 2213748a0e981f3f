"""Atomic writes: build in a temporary sibling, then rename into place.

Nothing half-written is ever left at the target path: if the body of
`atomic_dir` or `atomic_file` raises (or the process is killed), the target is
untouched and the temporary sibling is removed (or, after a kill, left under a
``.tmp-`` name that no reader looks at).

Durability: before the rename, the new file (every file of a new directory) is
``fsync``-ed, and after it the parent directory is, so a power cut right after a
write cannot leave an empty or partial file under the final name.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import tempfile
from pathlib import Path

TEMP_PREFIX = ".tmp-"
"""Names of temporary siblings start with this; readers and copiers skip such names."""


def temp_prefix(target: str | os.PathLike) -> str:
    """The name prefix of `target`'s temporary siblings: ``.tmp-<name>-`` (a random suffix follows).

    >>> temp_prefix("saved_models/run")
    '.tmp-run-'
    """
    return f"{TEMP_PREFIX}{Path(target).name}-"


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def fsync_file(path: str | os.PathLike) -> None:
    """Flush one file's data to the disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_dir(path: str | os.PathLike) -> None:
    """Flush a directory's entries (renames, creations) to the disk."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_tree(root: str | os.PathLike) -> None:
    """`fsync_file` every file and `fsync_dir` every directory under `root` (itself included)."""
    for folder, _, files in os.walk(root):
        for name in files:
            path = os.path.join(folder, name)
            if not os.path.islink(path):
                fsync_file(path)
        fsync_dir(folder)


def ensure_room(folder: str | os.PathLike, nbytes: int) -> None:
    """Raise `OSError` (ENOSPC or EFBIG) unless a file of `nbytes` fits in `folder`.

    Checks the free space of the file system and the process's file size limit
    (``RLIMIT_FSIZE``, ``ulimit -f``) *before* writing, for writers such as h5py
    that fail messily (or crash the process at exit) when a write fails half-way.
    """
    import resource  # lazy: Unix-only module

    limit = resource.getrlimit(resource.RLIMIT_FSIZE)[0]
    if limit != resource.RLIM_INFINITY and nbytes > limit:
        raise OSError(errno.EFBIG, os.strerror(errno.EFBIG), str(folder))
    if shutil.disk_usage(folder).free < nbytes:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(folder))


def probe_writable(folder: str | os.PathLike) -> None:
    """Create and remove a temporary file in `folder`; raises the `OSError` if that fails."""
    fd, name = tempfile.mkstemp(prefix=f"{TEMP_PREFIX}probe-", dir=folder)
    os.close(fd)
    os.unlink(name)


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
    tmp = Path(tempfile.mkdtemp(prefix=temp_prefix(target), dir=target.parent))
    try:
        yield tmp
        _publish_mode(tmp, 0o777)
        fsync_tree(tmp)
        old = None
        if target.exists():
            if not overwrite:
                raise FileExistsError(f"{target} already exists")
            old = target.with_name(f".old-{target.name}-{os.getpid()}")
            os.replace(target, old)
        os.replace(tmp, target)
        fsync_dir(target.parent)
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
    fd, name = tempfile.mkstemp(prefix=temp_prefix(target), suffix=suffix, dir=target.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        _publish_mode(tmp, 0o666)
        fsync_file(tmp)
        os.replace(tmp, target)
        fsync_dir(target.parent)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_text(target: str | os.PathLike, text: str) -> None:
    """Write `text` to `target` atomically (UTF-8)."""
    with atomic_file(target) as tmp:
        tmp.write_text(text, encoding="utf-8")
