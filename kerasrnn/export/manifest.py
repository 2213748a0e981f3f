"""``manifest.json``: what an export directory holds, for an app developer and for audit.

Fields: ``format``, ``quantize``, ``task``, ``run`` (the run's name and a
content hash of its model and side files — never a file-system path),
``created``, ``versions`` (kerasrnn, TensorFlow, Keras, ai-edge-litert),
``model_file``, ``inputs``/``outputs`` (or ``signatures``) with shapes and
dtypes, ``vocabulary_file`` and ``tokenization`` (how text becomes ids),
``class_names`` / ``scaler`` where relevant, ``quantization``, ``operators``
(TFLite), ``parity`` (measured against the Keras model, with the tolerance)
and ``files`` (sha256 and size of every other file in the directory).
"""

from __future__ import annotations

import datetime
import hashlib
import json
from importlib.metadata import version
from pathlib import Path
import kerasrnn
from kerasrnn.errors import UserError

NAME = "manifest.json"


def sha256(path: Path) -> str:
    """Hex sha256 of a file."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def file_table(directory: Path) -> dict:
    """``{relative path: {"sha256", "bytes"}}`` for every file under `directory` but the manifest."""
    directory = Path(directory)
    out = {}
    for path in sorted(p for p in directory.rglob("*") if p.is_file()):
        rel = path.relative_to(directory).as_posix()
        if rel != NAME:
            out[rel] = {"sha256": sha256(path), "bytes": path.stat().st_size}
    return out


def versions() -> dict:
    """Versions of kerasrnn, TensorFlow, Keras and ai-edge-litert."""
    import keras  # lazy: heavy import
    import tensorflow as tf  # lazy: heavy import

    try:
        litert = version("ai-edge-litert")
    except Exception:  # not installed as a distribution
        litert = None
    return {"kerasrnn": kerasrnn.__version__, "tensorflow": tf.__version__, "keras": keras.__version__,
            "ai_edge_litert": litert}


def write(directory: Path, fields: dict) -> dict:
    """Write ``manifest.json`` into `directory` (files hashed last); returns the manifest."""
    manifest = {
        **fields,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "versions": versions(),
        "files": file_table(directory),
    }
    (Path(directory) / NAME).write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return manifest


def read(directory: Path) -> dict:
    """The ``manifest.json`` of an export directory (`UserError` if missing or unreadable)."""

    path = Path(directory) / NAME
    if not path.is_file():
        raise UserError(f"{Path(directory)} has no {NAME}; pass a file or folder written by "
                        "`kerasrnn export RUN_DIR --format tflite|savedmodel`")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise UserError(f"{path} is unreadable or not JSON ({e}); export the run again") from None
    if not isinstance(manifest, dict) or not isinstance(manifest.get("files"), dict):
        raise UserError(f"{path} has no 'files' table; export the run again")
    return manifest


def verify(directory: Path, manifest: dict | None = None) -> list[str]:
    """Files whose sha256 no longer matches the manifest (empty list = intact)."""
    manifest = read(directory) if manifest is None else manifest
    bad = []
    for rel, entry in manifest["files"].items():
        path = Path(directory) / rel
        if not path.is_file() or sha256(path) != entry["sha256"]:
            bad.append(rel)
    return bad


def check(directory: Path, manifest: dict | None = None) -> dict:
    """Verify every file's sha256 against the manifest; returns the manifest.

    Raises:
        UserError: (one line) a file is missing or changed since export.

    >>> manifest = check("saved_models/run/export/tflite")  # doctest: +SKIP
    """

    manifest = read(directory) if manifest is None else manifest
    bad = verify(directory, manifest)
    if bad:
        shown = ", ".join(bad[:5]) + (f" and {len(bad) - 5} more" if len(bad) > 5 else "")
        raise UserError(f"{Path(directory)}: {shown} missing or changed since export (sha256 differs from "
                        f"{NAME}); export the run again or restore the files")
    return manifest
