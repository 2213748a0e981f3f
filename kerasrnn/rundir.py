"""Run directories: what ``kerasrnn recipe run`` leaves in ``saved_models/<run-name>/``.

Contract (read by generate/classify/forecast, export and bench):

- ``run.json``: ``{"task", "name", "kerasrnn_version", "tensorflow_version",
  "keras_version", "created", "recipe"}`` plus task fields (generation:
  ``cell, units, num_layers``; classification: ``max_len, num_classes``;
  forecasting: ``window, horizon``).
- ``recipe.toml`` (the resolved recipe), ``model.keras`` (best validation
  checkpoint), ``metrics.json``, ``history.csv``, ``training_curves.png``,
  ``logs/`` (TensorBoard), ``checkpoints/`` (resume state), ``samples.npz``.
- ``vocab.json`` (generation), ``labels.json`` (classification),
  ``scaler.json`` (forecasting).

Nothing is half-written: training happens in a sibling work directory
``.partial-<run-name>/`` that is renamed onto ``<run-name>/`` only when every
artifact is in place. ``--resume`` continues from the work directory of an
interrupted run, or from a finished run directory (copied first) to train more
epochs.

>>> run = load_run("saved_models/shakespeare-char")  # doctest: +SKIP
>>> run.info["task"], run.vocab["chars"][:3]  # doctest: +SKIP
('generation', ['\\n', ' ', '!'])
"""

from __future__ import annotations

import datetime
import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from kerasrnn import atomic
from kerasrnn.errors import UserError

RUN_FILE = "run.json"


def work_dir_for(run_dir: Path) -> Path:
    """The in-progress sibling of `run_dir` (``.partial-<name>``)."""
    run_dir = Path(run_dir)
    return run_dir.parent / f".partial-{run_dir.name}"


def start(run_dir: Path, resume: bool) -> Path:
    """Create (or reopen, with `resume`) the work directory for `run_dir`.

    Without `resume` any previous work directory is discarded. With `resume`
    the interrupted work directory is reused; if there is none but `run_dir`
    is a finished run, it is copied so training can go on for more epochs.

    Returns:
        The work directory path.
    """
    run_dir = Path(run_dir)
    work = work_dir_for(run_dir)
    if resume:
        if work.is_dir():  # killed before its first checkpoint: it simply starts at epoch 1
            print(f"Resuming interrupted run from {work}")
            return work
        if (run_dir / RUN_FILE).is_file() and (run_dir / "checkpoints").is_dir():
            shutil.rmtree(work, ignore_errors=True)
            shutil.copytree(run_dir, work)
            print(f"Resuming finished run {run_dir}")
            return work
        raise UserError(f"nothing to resume for {run_dir}: no interrupted or finished run there; "
                        "run without --resume to start a new one")
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    return work


def finish(work: Path, run_dir: Path) -> Path:
    """Move the completed work directory onto `run_dir` (replacing an older run)."""
    run_dir = Path(run_dir)
    old = None
    if run_dir.exists():
        old = run_dir.with_name(f".old-{run_dir.name}-{os.getpid()}")
        os.replace(run_dir, old)
    os.replace(work, run_dir)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    return run_dir


def write_json(path: Path, data) -> None:
    """Write `data` as indented JSON, atomically."""
    atomic.write_text(path, json.dumps(data, indent=2, ensure_ascii=False) + "\n")


def write_info(work: Path, recipe: dict, **task_fields) -> dict:
    """Write ``run.json`` and ``recipe.toml`` for a run; returns the run.json dict."""
    import keras
    import tensorflow as tf

    import kerasrnn
    from kerasrnn.recipes import to_toml

    info = {
        "task": recipe["run"]["task"],
        "name": recipe["run"]["name"],
        "kerasrnn_version": kerasrnn.__version__,
        "tensorflow_version": tf.__version__,
        "keras_version": keras.__version__,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "recipe": recipe,
        **task_fields,
    }
    write_json(Path(work) / RUN_FILE, info)
    atomic.write_text(Path(work) / "recipe.toml", to_toml(recipe))
    return info


def save_model(model, path: Path) -> None:
    """Save a keras model to `path` (``.keras``) atomically."""
    with atomic.atomic_file(path, suffix=".keras") as tmp:
        model.save(tmp)


@dataclass
class Run:
    """A loaded run directory.

    Attributes:
        path: the run directory.
        info: the ``run.json`` dict (``info["task"]``, ``info["recipe"]``...).
        model: ``model.keras`` loaded with ``safe_mode=True``.
        vocab: ``vocab.json`` (generation) or None.
        labels: ``labels.json`` (classification) or None.
        scaler: ``scaler.json`` (forecasting) or None.
    """

    path: Path
    info: dict
    model: object = None
    vocab: dict | None = None
    labels: dict | None = None
    scaler: dict | None = None
    metrics: dict = field(default_factory=dict)


def read_json(path: Path):
    """Parse a JSON file of a run; unreadable -> `UserError`."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise UserError(f"{path} is unreadable or not JSON ({e}); re-run the recipe to recreate the run") from None


def load_run(path, task: str | None = None, load_model: bool = True) -> Run:
    """Load a run directory written by ``kerasrnn recipe run``.

    Args:
        path: the run directory.
        task: if given, the run must be of this task (else `UserError`).
        load_model: load ``model.keras`` (default True).

    Raises:
        UserError: `path` is not a run directory, is of another task, or is incomplete.

    >>> run = load_run("saved_models/sine-forecast", task="forecasting")  # doctest: +SKIP
    """
    path = Path(path)
    if not (path / RUN_FILE).is_file():
        raise UserError(f"{path} is not a kerasrnn run directory (no {RUN_FILE}); "
                        "pass a folder written by `kerasrnn recipe run`, e.g. saved_models/<run-name>")
    info = read_json(path / RUN_FILE)
    if task is not None and info.get("task") != task:
        raise UserError(f"{path} is a {info.get('task')!r} run, not a {task!r} run; "
                        f"pass a run directory trained with a {task} recipe")
    run = Run(path=path, info=info)
    for attr, name in (("vocab", "vocab.json"), ("labels", "labels.json"), ("scaler", "scaler.json"),
                       ("metrics", "metrics.json")):
        if (path / name).is_file():
            setattr(run, attr, read_json(path / name))
    if load_model:
        model_path = path / "model.keras"
        if not model_path.is_file():
            raise UserError(f"{path} has no model.keras; the run is incomplete, re-run its recipe")
        import keras

        import kerasrnn.dropout  # noqa: F401  (registers PhiloxDropout)
        import kerasrnn.layers  # noqa: F401  (registers the serializable layers)

        run.model = keras.saving.load_model(model_path, safe_mode=True)
    return run
