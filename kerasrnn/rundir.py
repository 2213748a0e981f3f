"""Run directories: what ``kerasrnn recipe run`` leaves in ``saved_models/<run-name>/``.

Contract (read by generate/classify/forecast, export and bench):

- ``run.json``: ``{"task", "name", "kerasrnn_version", "tensorflow_version",
  "keras_version", "created", "recipe"}`` plus task fields (generation:
  ``cell, units, num_layers``; classification: ``max_len, num_classes``;
  forecasting: ``window, horizon, outputs, features, head, scaling, target, dates``).
- ``recipe.toml`` (the resolved recipe), ``model.keras`` (best validation
  checkpoint), ``metrics.json``, ``history.csv``, ``training_curves.png``,
  ``logs/`` (TensorBoard), ``checkpoints/`` (resume state), ``samples.npz``.
- ``vocab.json`` (generation), ``labels.json`` (classification),
  ``scaler.json`` (forecasting).

**The run lifecycle** (`lifecycle`, used by every task's ``run()``): nothing is
half-written and nothing is lost.

- Training happens in the sibling work directory ``.partial-<run-name>/``, which
  is renamed onto ``<run-name>/`` only when every artifact is in place.
- A finished run is never replaced unless ``overwrite=True`` (CLI ``--overwrite``);
  an interrupted work directory is never discarded unless ``restart=True``
  (``--restart``), and is continued with ``resume=True`` (``--resume``).
- An exclusive lock (``.lock-<run-name>``, an ``flock`` that the kernel releases
  when its process dies, holding that process's pid) makes a second concurrent
  run of the same name fail at once; a lock left by a dead process is taken over.
- The resolved recipe is written to the work directory at the start
  (``recipe.toml``, plus ``origin.json``: the recipe name and overrides it came
  from), so a resume needs no retyping; resuming with a recipe that differs in any
  key outside `RESUMABLE_KEYS` is an error listing the keys. A new work directory
  appears (renamed from a temporary sibling) with both files already in it, so a
  kill at the very start leaves no half-made work directory.
- Leftovers of a killed run (``.tmp-.partial-<name>-*``, ``.old-<name>-<pid>``)
  are cleaned up, under the lock, by the next run of that name.

>>> run = load_run("saved_models/shakespeare-char")  # doctest: +SKIP
>>> run.info["task"], run.vocab["chars"][:3]  # doctest: +SKIP
('generation', ['\\n', ' ', '!'])
"""

from __future__ import annotations

import contextlib
import datetime
import fcntl
import json
import os
import re
import shutil
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from kerasrnn import atomic
from kerasrnn import distribute
import kerasrnn
from kerasrnn.errors import UserError
from kerasrnn.recipes import read_toml, resolve, to_toml

RUN_FILE = "run.json"
RECIPE_FILE = "recipe.toml"
ORIGIN_FILE = "origin.json"
CHECKPOINTS = "checkpoints"

#: Recipe keys that may change when a run is resumed (training longer, a new time budget...).
RESUMABLE_KEYS = frozenset({"train.epochs", "train.max_minutes", "train.verbose", "train.backup_every_steps",
                            "long_memory.lengths", "long_memory.cells",
                            "train.strategy", "train.peer_timeout_seconds"})  # where it trains, not what


class RunExistsError(UserError):
    """A finished run is where a new one would go."""


class RunInterruptedError(UserError):
    """An interrupted run's work directory is where a new one would go."""


class RunLockedError(UserError):
    """Another live process holds the run's lock."""


class RecipeChangedError(UserError):
    """A resume was asked with a recipe that differs from the run's."""


class NothingToResumeError(UserError):
    """A resume was asked where there is no run."""


def work_dir_for(run_dir: Path) -> Path:
    """The in-progress sibling of `run_dir` (``.partial-<name>``)."""
    run_dir = Path(run_dir)
    return run_dir.parent / f".partial-{run_dir.name}"


def lock_path_for(run_dir: Path) -> Path:
    """The lock file of `run_dir` (``.lock-<name>``, a sibling)."""
    run_dir = Path(run_dir)
    return run_dir.parent / f".lock-{run_dir.name}"


def is_finished(run_dir: Path) -> bool:
    """True if `run_dir` holds a finished run (its ``run.json``)."""
    return (Path(run_dir) / RUN_FILE).is_file()


def has_training_state(work: Path) -> bool:
    """True if a work directory holds something to resume from: a file in a ``checkpoints/`` folder at any depth."""
    return any(p.is_file() for c in Path(work).rglob(CHECKPOINTS) if c.is_dir() for p in c.rglob("*"))


def _pid_alive(pid) -> bool:
    try:
        os.kill(int(pid), 0)
    except (OSError, ValueError, TypeError) as e:
        return isinstance(e, PermissionError)
    return True


class RunLock:
    """An exclusive, process-owned lock on one run name.

    The lock is an ``flock`` on ``.lock-<name>`` beside the run directory: the
    kernel drops it when the holding process exits or is killed, so a crashed run
    never blocks the next one (its stale pid record is reported and replaced).
    The file records the holder's pid and start time for the error message.

    >>> with RunLock("saved_models/demo"):  # doctest: +SKIP
    ...     pass
    """

    def __init__(self, run_dir: Path):
        self.path = lock_path_for(run_dir)
        self.fd = None
        self.stale_pid = None

    def acquire(self) -> "RunLock":
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = _read_lock_record(fd)
                os.close(fd)
                pid = holder.get("pid", "?")
                since = holder.get("started", "?")
                what = (f"run {self.path.name[len('.lock-'):]!r} in {self.path.parent} is in use by another kerasrnn "
                        f"process (pid {pid}, started {since}); wait for it to finish")
                raise RunLockedError(f"{what}, or use another run.name",
                                     cli_message=f"{what}, or choose another name with --set run.name=NEW")
            try:  # the file we locked must still be the one at the path (a releaser may have unlinked it)
                if os.fstat(fd).st_ino != os.stat(self.path).st_ino:
                    raise FileNotFoundError
            except FileNotFoundError:
                os.close(fd)
                continue
            previous = _read_lock_record(fd)
            if previous.get("pid") not in (None, os.getpid()) and not _pid_alive(previous.get("pid")):
                self.stale_pid = previous["pid"]
            record = json.dumps({"pid": os.getpid(), "started": _now()}).encode()
            os.ftruncate(fd, 0)
            os.pwrite(fd, record, 0)
            os.fsync(fd)
            self.fd = fd
            return self

    def release(self) -> None:
        if self.fd is None:
            return
        with contextlib.suppress(OSError):
            self.path.unlink()
        os.close(self.fd)  # closing drops the flock
        self.fd = None

    def __enter__(self):
        return self.acquire()

    def __exit__(self, *exc):
        self.release()


def _read_lock_record(fd: int) -> dict:
    try:
        return json.loads(os.pread(fd, 4096, 0) or b"{}")
    except (OSError, ValueError):
        return {}


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def ensure_runs_dir(parent: Path) -> None:
    """Create the folder that holds run directories; unwritable -> one-line `UserError`."""
    parent = Path(parent)
    try:
        parent.mkdir(parents=True, exist_ok=True)
        atomic.probe_writable(parent)
    except OSError as e:
        why = e.strerror or str(e)
        raise UserError(f"cannot write run directories into {parent} ({why}); put the run directory "
                        "in a folder you can write to",
                        cli_message=f"cannot write run directories into {parent} ({why}); choose a writable "
                                    "folder with --runs-dir") from None


def recipe_differences(old: dict, new: dict, ignore=RESUMABLE_KEYS) -> list[str]:
    """Keys whose values differ between two resolved recipes, as ``"section.key (old -> new)"``.

    >>> recipe_differences({"train": {"epochs": 1, "batch_size": 8}}, {"train": {"epochs": 2, "batch_size": 4}})
    ['train.batch_size (8 -> 4)']
    """
    out = []
    for section in sorted(set(old) | set(new)):
        a, b = old.get(section, {}), new.get(section, {})
        if not isinstance(a, dict) or not isinstance(b, dict):
            continue
        for key in sorted(set(a) | set(b)):
            name = f"{section}.{key}"
            if name not in ignore and a.get(key) != b.get(key):
                out.append(f"{name} ({a.get(key, '(unset)')!r} -> {b.get(key, '(unset)')!r})")
    return out


def read_origin(run_dir: Path) -> dict:
    """``origin.json`` of an interrupted (preferred) or finished run: ``{"recipe", "overrides"}``; {} if none."""
    for folder in (work_dir_for(run_dir), Path(run_dir)):
        path = folder / ORIGIN_FILE
        if path.is_file():
            with contextlib.suppress(OSError, ValueError):
                return json.loads(path.read_text(encoding="utf-8"))
    return {}


def preflight(run_dir: Path, resume: bool = False, restart: bool = False, overwrite: bool = False) -> None:
    """Refuse at once what `lifecycle` would refuse (before any data is loaded); see `lifecycle`.

    A live run of the same name is reported first (`RunLockedError`), so its work
    directory is never described as an interrupted one.
    """

    if not distribute.is_chief():  # multi-worker: only the chief checks and writes the run directory
        return
    run_dir = Path(run_dir)
    ensure_runs_dir(run_dir.parent)
    lock = RunLock(run_dir).acquire()  # a live run of this name comes first: its work dir is not "interrupted"
    lock.release()
    _note_stale(lock, run_dir)
    _check_state(run_dir, resume, restart, overwrite)


def _note_stale(lock: RunLock, run_dir: Path) -> None:
    if lock.stale_pid is not None:
        print(f"Note: took over the lock of {run_dir.name!r} left by process {lock.stale_pid}, "
              "which is no longer running.")


def _check_state(run_dir: Path, resume: bool, restart: bool, overwrite: bool) -> None:
    work = work_dir_for(run_dir)
    if resume and restart:
        raise UserError("resume=True and restart=True contradict each other; pick one",
                        cli_message="--resume and --restart contradict each other; pick one")
    if resume:
        if not work.is_dir() and not (is_finished(run_dir) and (run_dir / CHECKPOINTS).is_dir()):
            raise NothingToResumeError(
                f"nothing to resume for {run_dir}: no interrupted or finished run there; "
                "start a new one with resume=False",
                cli_message=f"nothing to resume for {run_dir}: no interrupted or finished run there; "
                            "run without --resume to start a new one")
        return
    if work.is_dir() and not restart:
        raise RunInterruptedError(
            f"an interrupted run of {run_dir.name!r} is in {work}; continue it with resume=True, "
            "or discard it and start over with restart=True",
            cli_message=f"an interrupted run of {run_dir.name!r} is in {work}; continue it with --resume, "
                        "or discard it and start over with --restart")
    if is_finished(run_dir) and not overwrite:
        raise RunExistsError(
            f"{run_dir} already holds a finished run; replace it with overwrite=True, or choose another run.name",
            cli_message=f"{run_dir} already holds a finished run; replace it with --overwrite, or choose "
                        "another name with --set run.name=NEW")


def _check_same_recipe(stored_path: Path, recipe: dict) -> None:

    if not stored_path.is_file():
        return
    stored = read_toml(stored_path)
    name = recipe.get("run", {}).get("name", "")
    try:  # keys added since the run started take their defaults, on both sides
        stored, recipe = resolve(stored, default_name=name), resolve(recipe, default_name=name)
    except UserError:
        pass  # a key this version no longer knows: it is listed below as a difference
    changed = recipe_differences(stored, recipe)
    if changed:
        raise RecipeChangedError(
            f"cannot resume {stored_path.parent.name}: the recipe differs from the one it started with in "
            f"{', '.join(changed)}; resume with the original settings, or start over with restart=True",
            cli_message=f"cannot resume: the recipe differs from the one this run started with in "
                        f"{', '.join(changed)}; drop those --set values (the run's own are reused), "
                        f"or start over with {'--restart' if stored_path.parent.name.startswith('.partial-') else '--overwrite'}")


@contextlib.contextmanager
def lifecycle(recipe: dict, run_dir: Path, *, resume: bool = False, restart: bool = False,
              overwrite: bool = False, origin: dict | None = None, has_state=has_training_state):
    """The one run lifecycle: lock, check, work directory, and publish on success.

    Used by every task's ``run()`` as ``with rundir.lifecycle(recipe, run_dir, ...) as work:``;
    the body writes the run's files into ``work``.

    Args:
        recipe: the resolved recipe; written to ``work/recipe.toml`` at the start.
        run_dir: the run directory to create (``<runs_dir>/<run.name>``).
        resume: continue the interrupted work directory, or a finished run (copied
            first, e.g. to train more epochs). The recipe must equal the run's except
            for `RESUMABLE_KEYS`, else `RecipeChangedError` lists the keys.
        restart: discard an interrupted work directory and start over.
        overwrite: replace a finished run (the old one stays intact until the new
            one is complete).
        origin: ``{"recipe": name_or_path, "overrides": [...]}`` to record for a
            later resume (written to ``origin.json``).
        has_state: ``fn(work) -> bool``, whether a failed work directory holds
            something to resume from (default `has_training_state`).

    Raises:
        RunExistsError: a finished run is there and not `overwrite`.
        RunInterruptedError: an interrupted run is there and neither `resume` nor `restart`.
        RunLockedError: another live process is running it.
        NothingToResumeError: `resume` without a run.
        UserError: the runs folder cannot be written.

    On an exception in the body (including Ctrl-C), a work directory without
    training state to resume from is removed; one with state is kept for `resume`.

    >>> with lifecycle(recipe, Path("saved_models/demo")) as work:  # doctest: +SKIP
    ...     (work / "metrics.json").write_text("{}")
    """

    if not distribute.is_chief():  # multi-worker: a non-chief trains in a temporary dir (kerasrnn.distribute)
        with distribute.worker_dir(run_dir, resume) as work:
            yield work
        return
    run_dir = Path(run_dir)
    work = work_dir_for(run_dir)
    ensure_runs_dir(run_dir.parent)
    lock = RunLock(run_dir).acquire()
    try:
        _note_stale(lock, run_dir)
        _check_state(run_dir, resume, restart, overwrite)
        _remove_leftovers(run_dir)
        created = False
        if resume and work.is_dir():
            _check_same_recipe(work / RECIPE_FILE, recipe)
            print(f"Resuming interrupted run from {work}")
        elif resume:
            _check_same_recipe(run_dir / RECIPE_FILE, recipe)
            with atomic.atomic_dir(work) as tmp:
                shutil.copytree(run_dir, tmp, dirs_exist_ok=True)
            print(f"Resuming finished run {run_dir}")
        else:
            if work.is_dir():  # restart=True (checked above)
                print(f"Discarding the interrupted run in {work} (restart)")
                shutil.rmtree(work)
            created = True
        if created:  # the work dir appears with its recipe and origin already in it (a kill before: nothing)
            with atomic.atomic_dir(work, overwrite=False) as tmp:
                _write_start_files(tmp, recipe, origin)
        else:
            _write_start_files(work, recipe, origin)
        try:
            yield work
        except BaseException:
            if created and not has_state(work):  # nothing to resume from: leave nothing behind
                shutil.rmtree(work, ignore_errors=True)
            raise
        finish(work, run_dir)
    finally:
        lock.release()


def _write_start_files(folder: Path, recipe: dict, origin: dict | None) -> None:

    atomic.write_text(folder / RECIPE_FILE, to_toml(recipe))
    if origin is not None:
        write_json(folder / ORIGIN_FILE, origin)


def _remove_leftovers(run_dir: Path) -> None:
    """Remove what a killed run of this name left (called under its lock).

    ``.old-<name>-<pid>`` folders of a finish killed half-way (put back if the new
    run had not been renamed in yet), and ``.tmp-.partial-<name>-*`` folders of a
    start killed before its work directory appeared.
    """
    tmp_name = re.compile(rf"{re.escape(atomic.temp_prefix(work_dir_for(run_dir)))}[a-z0-9_]+")  # mkdtemp's suffix
    old_name = re.compile(rf"\.old-{re.escape(run_dir.name)}-(\d+)")  # not another run's (name-2-<pid>)
    siblings = list(run_dir.parent.iterdir())  # not glob: a run name may hold '[' or '*'
    for tmp in siblings:
        if tmp_name.fullmatch(tmp.name) and tmp.is_dir():
            shutil.rmtree(tmp, ignore_errors=True)
    for old in siblings:
        match = old_name.fullmatch(old.name)
        if match and old.is_dir() and not _pid_alive(match.group(1)):
            if not run_dir.exists():  # killed between finish's two renames: put the old run back
                os.replace(old, run_dir)
            else:
                shutil.rmtree(old, ignore_errors=True)


def finish(work: Path, run_dir: Path) -> Path:
    """Move the completed work directory onto `run_dir` (replacing an older run), durably."""
    run_dir = Path(run_dir)
    atomic.fsync_tree(work)
    old = None
    if run_dir.exists():
        old = run_dir.with_name(f".old-{run_dir.name}-{os.getpid()}")
        os.replace(run_dir, old)
    os.replace(work, run_dir)
    atomic.fsync_dir(run_dir.parent)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    return run_dir


def write_json(path: Path, data) -> None:
    """Write `data` as indented JSON, atomically."""
    atomic.write_text(path, json.dumps(data, indent=2, ensure_ascii=False) + "\n")


def write_info(work: Path, recipe: dict, **task_fields) -> dict:
    """Write ``run.json`` and ``recipe.toml`` for a run; returns the run.json dict."""
    import keras  # lazy: heavy import
    import tensorflow as tf  # lazy: heavy import

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
    if not isinstance(info, dict) or not isinstance(info.get("recipe", {}), dict):
        raise UserError(f"{path / RUN_FILE} is not a kerasrnn run.json; re-run the recipe to recreate the run")
    if task is not None and info.get("task") != task:
        raise UserError(f"{path} is a {info.get('task')!r} run, not a {task!r} run; "
                        f"pass a run directory trained with a {task} recipe")
    run = Run(path=path, info=info)
    for attr, name in (("vocab", "vocab.json"), ("labels", "labels.json"), ("scaler", "scaler.json"),
                       ("metrics", "metrics.json")):
        if (path / name).is_file():
            value = read_json(path / name)
            _check_side_file(path / name, value)
            setattr(run, attr, value)
    if load_model:
        run.model = load_model_file(path / "model.keras")
    return run


def _check_side_file(path: Path, value) -> None:
    """A parsed ``vocab.json`` / ``labels.json`` must have its contract's shape."""
    key, kind = {"vocab.json": ("chars", "characters"), "labels.json": ("class_names", "class names")}.get(
        path.name, (None, None))
    if key is None:
        return
    items = value.get(key) if isinstance(value, dict) else None
    ok = isinstance(items, list) and len(items) > 0 and all(isinstance(c, str) for c in items)
    if ok and key == "chars":
        ok = all(len(c) == 1 for c in items) and len(set(items)) == len(items)
    if not ok:
        raise UserError(f"{path} is damaged: it must hold a non-empty list of {kind} under {key!r}; "
                        "re-run the recipe to recreate the run")


def load_model_file(model_path: Path):
    """Load a run's ``model.keras`` (``safe_mode=True``); missing, truncated or corrupt -> one-line `UserError`."""
    model_path = Path(model_path)
    fix = "re-run the recipe (with overwrite) to recreate the run"
    if not model_path.is_file():
        raise UserError(f"{model_path.parent} has no model.keras; the run is incomplete, {fix}")
    try:
        with zipfile.ZipFile(model_path) as archive:
            bad_member = archive.testzip()
            names = set(archive.namelist())
    except (zipfile.BadZipFile, OSError, EOFError) as e:
        raise UserError(f"{model_path} is truncated or corrupt (not a readable .keras archive: {e}); {fix}") from None
    if bad_member is not None or not {"config.json", "model.weights.h5"} <= names:
        what = f"a damaged member {bad_member}" if bad_member else "missing config.json or model.weights.h5"
        raise UserError(f"{model_path} is corrupt ({what}); {fix}")
    import keras  # lazy: heavy import

    import kerasrnn.dropout  # noqa: F401  (registers PhiloxDropout)
    import kerasrnn.layers  # noqa: F401  (registers the serializable layers)
    import kerasrnn.pooling  # noqa: F401  (registers ConcatPooling)
    import kerasrnn.tasks.forecast_layers  # noqa: F401  (registers SeriesScaling/SeriesUnscaling)

    try:
        return keras.saving.load_model(model_path, safe_mode=True)
    except (ValueError, OSError, KeyError, TypeError) as e:
        reason = " ".join(str(e).split())[:200]
        raise UserError(f"{model_path} could not be loaded ({type(e).__name__}: {reason}); {fix}") from None
