"""Integrity of exported artifacts (issue 10 §4-5, export side).

- Loading an export verifies every sha256 of its manifest: a changed or
  missing file is a one-line error, from the library and from the CLI.
- A corrupt or truncated ``.tflite`` / SavedModel is a one-line error.
- ``kill -9`` during an export publishes nothing, and keeps a previous export intact.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from kerasrnn.cli import main
from kerasrnn.errors import UserError
from kerasrnn.export import manifest as manifest_mod
from kerasrnn.export import runners, tflite
from kerasrnn.export.exporter import export_run
from test_export import make_classification_run, make_forecasting_run


def _export(run_dir, fmt, quantize="none"):
    return export_run(run_dir, fmt, quantize, log=lambda *_: None)


@pytest.fixture(scope="module")
def clf_export(tmp_path_factory):
    run_dir = make_classification_run(tmp_path_factory.mktemp("integrity"), "gru", bidirectional=False, seed=6)
    path, _ = _export(run_dir, "tflite")
    return path


def _one_error_line(result):
    lines = result.output.strip().split("\n")
    assert result.exit_code == 1 and len(lines) == 1 and lines[0].startswith("Error: "), result.output
    assert "Traceback" not in result.output
    return lines[0]


def test_tampered_file_is_refused(clf_export, tmp_path):
    import shutil

    copy = tmp_path / "tflite"
    shutil.copytree(clf_export, copy)
    assert runners.open_artifact(copy / "model.tflite").predict_proba(["good film"]).shape == (1, 2)
    (copy / "vocabulary.txt").write_text("\n[UNK]\ngood\n", encoding="utf-8")
    with pytest.raises(UserError, match=r"vocabulary.txt missing or changed since export \(sha256 differs"):
        runners.open_artifact(copy / "model.tflite")
    line = _one_error_line(CliRunner().invoke(main, ["classify", "--tflite", str(copy / "model.tflite"), "good"]))
    assert "vocabulary.txt missing or changed since export" in line
    (copy / "vocabulary.txt").unlink()
    with pytest.raises(UserError, match="vocabulary.txt missing or changed"):
        runners.open_artifact(copy / "model.tflite")


def test_truncated_or_corrupt_tflite_is_one_line(clf_export, tmp_path):
    import shutil

    copy = tmp_path / "tflite"
    shutil.copytree(clf_export, copy)
    content = (copy / "model.tflite").read_bytes()
    (copy / "model.tflite").write_bytes(content[: len(content) // 3])
    line = _one_error_line(CliRunner().invoke(main, ["classify", "--tflite", str(copy / "model.tflite"), "good"]))
    assert "model.tflite missing or changed since export" in line
    # even with a manifest that matches the damaged file, opening it is a one-line error
    manifest = json.loads((copy / "manifest.json").read_text())
    manifest["files"] = manifest_mod.file_table(copy)
    (copy / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(UserError, match="is not a valid TFLite model .*corrupt or truncated"):
        runners.open_artifact(copy / "model.tflite")
    for garbage in (b"", b"not a flatbuffer at all" * 10, content[:64]):
        with pytest.raises(UserError, match="not a valid TFLite model"):
            tflite.open_signature(garbage)


def test_missing_or_broken_manifest_is_one_line(clf_export, tmp_path):
    import shutil

    copy = tmp_path / "tflite"
    shutil.copytree(clf_export, copy)
    (copy / "manifest.json").write_text("{not json")
    line = _one_error_line(CliRunner().invoke(main, ["classify", "--tflite", str(copy / "model.tflite"), "x"]))
    assert "manifest.json is unreadable or not JSON" in line
    (copy / "manifest.json").unlink()
    line = _one_error_line(CliRunner().invoke(main, ["classify", "--tflite", str(copy / "model.tflite"), "x"]))
    assert "has no manifest.json" in line


def test_corrupt_savedmodel_is_one_line(tmp_path):
    run_dir = make_forecasting_run(tmp_path, "simple_rnn")
    path, _ = _export(run_dir, "savedmodel")
    (path / "saved_model.pb").write_bytes(b"\x00garbage")
    manifest = json.loads((path / "manifest.json").read_text())
    manifest["files"] = manifest_mod.file_table(path)
    (path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(UserError, match="is not a loadable SavedModel"):
        runners.open_artifact(path)


# ------------------------------------------------------------------ kill -9 during export

KILL_SCRIPT = """
import sys
from kerasrnn.export.exporter import export_run
export_run(sys.argv[1], "tflite", "float16", log=lambda *_: None)
"""


def _kill_during_export(run_dir: Path, file_name: str) -> int:
    """Start an export in a subprocess; SIGKILL it once its temporary directory holds `file_name`."""
    parent = run_dir / "export"
    old = set(parent.glob(".tmp-*"))
    proc = subprocess.Popen([sys.executable, "-c", KILL_SCRIPT, str(run_dir)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    deadline = time.time() + 240
    try:
        while time.time() < deadline and proc.poll() is None:
            if any((tmp / file_name).exists() for tmp in set(parent.glob(".tmp-*")) - old):
                proc.send_signal(signal.SIGKILL)
                break
            time.sleep(0.005)
    finally:
        proc.wait(timeout=60)
    return proc.returncode


def test_kill_during_export_publishes_nothing_and_keeps_previous(tmp_path):
    run_dir = make_forecasting_run(tmp_path, "lstm")
    target = run_dir / "export" / "tflite-float16"
    # killed while the flatbuffer is being checked against the Keras model
    assert _kill_during_export(run_dir, "model.tflite") == -signal.SIGKILL
    assert not target.exists()  # nothing published
    # readers ignore the leftover temporary sibling; a new export succeeds and verifies
    path, first = _export(run_dir, "tflite", "float16")
    assert manifest_mod.verify(path) == []
    before = (path / "manifest.json").read_text()
    # killed early in a re-export (side files written): the previous export is untouched
    assert _kill_during_export(run_dir, "scaler.json") == -signal.SIGKILL
    assert (path / "manifest.json").read_text() == before and manifest_mod.verify(path) == []
    windows = np.load(run_dir / "samples.npz")["x"][:2]
    assert runners.open_artifact(path / "model.tflite").predict(windows).shape == (2, 1)
