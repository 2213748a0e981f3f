"""Open an exported artifact (TFLite file or SavedModel directory) with its task's runner.

Every export directory holds a ``manifest.json``; `open_artifact` reads it,
**verifies the sha256 of every file** it lists (a mismatch is a one-line
`UserError`), and hands the artifact to the task's export module
(`kerasrnn.export.exporter.TASK_EXPORTS`):

- generation: a `kerasrnn.sampling.Sampler` over the artifact's step function
  (same options, same seeded draws as the Keras path without XLA);
- classification: ``predict_proba(texts) -> (N, C)``, batched;
- forecasting: ``predict(windows) -> (N, H)``, batched.

A corrupt or truncated ``.tflite`` or SavedModel is a one-line `UserError`.

>>> sampler = open_artifact("saved_models/run/export/tflite/model.tflite")  # doctest: +SKIP
>>> sampler.generate("ROMEO:", length=100, temperature=0.8, seed=1)  # doctest: +SKIP
"""

from __future__ import annotations

from pathlib import Path

from kerasrnn.errors import UserError
from kerasrnn.export import manifest as manifest_mod
from kerasrnn.export import savedmodel as savedmodel_mod
from kerasrnn.export.exporter import TASK_EXPORTS


def _locate(path: Path) -> tuple[str, Path]:
    if path.is_dir():
        if not (path / "saved_model.pb").is_file():
            raise UserError(f"{path} is not a SavedModel directory (no saved_model.pb); pass "
                            "saved_models/<run>/export/savedmodel")
        return "savedmodel", path
    if path.suffix == ".tflite" and path.is_file():
        return "tflite", path.parent
    raise UserError(f"{path} is neither a .tflite file nor a SavedModel directory; pass "
                    "saved_models/<run>/export/tflite/model.tflite or .../export/savedmodel")


def open_artifact(path, expect_task: str | None = None, verify: bool = True, **runner_options):
    """The task runner of an exported ``.tflite`` file or SavedModel directory.

    Args:
        path: ``.../export/tflite*/model.tflite`` or ``.../export/savedmodel/``.
        expect_task: if given, the artifact must be of this task (else `UserError`).
        verify: check every file's sha256 against ``manifest.json`` first (default True).
        **runner_options: passed to the task's runner (e.g. ``batch_size`` for a classifier).

    Returns:
        The runner; its manifest is at ``runner.manifest``.
    """
    path = Path(path)
    fmt, directory = _locate(path)
    manifest = manifest_mod.check(directory) if verify else manifest_mod.read(directory)
    task = manifest.get("task")
    if expect_task and task != expect_task:
        raise UserError(f"{path} is a {task!r} export, not a {expect_task!r} one; pass an export of a "
                        f"{expect_task} run")
    if task not in TASK_EXPORTS:
        raise UserError(f"{path}: manifest task {task!r} is not one of {', '.join(TASK_EXPORTS)}")
    model = path if fmt == "tflite" else savedmodel_mod.load(path)
    runner = TASK_EXPORTS[task].open_runner(fmt, model, manifest, directory, **runner_options)
    runner.manifest = manifest
    return runner


def cli_artifact(run_dir, tflite, savedmodel, task: str, **runner_options):
    """For ``kerasrnn generate|classify|forecast``: the runner of ``--tflite``/``--savedmodel``, or None.

    Raises:
        UserError: both given, or neither an artifact nor a RUN_DIR.
    """
    if tflite and savedmodel:
        raise UserError("give --tflite or --savedmodel, not both")
    if not (tflite or savedmodel):
        if not run_dir:
            raise UserError("give a RUN_DIR (saved_models/<run>), or an exported artifact with --tflite FILE "
                            "or --savedmodel DIR")
        return None
    return open_artifact(tflite or savedmodel, expect_task=task, **runner_options)

