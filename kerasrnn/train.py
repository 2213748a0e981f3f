"""The shared training loop: one `fit` with the callbacks every task wants.

Adam with gradient clipping (``clipnorm=1.0`` by default: exploding gradients are
the classic RNN failure), early stopping on ``val_loss`` that keeps the best
weights, an atomic checkpoint every epoch, a step-level backup (`StepBackup`:
weights, optimizer, epoch and step every ``train.backup_every_steps`` steps) so
``--resume`` continues an interrupted run *mid-epoch*, a time budget that stops
at an epoch boundary (or records a cut epoch as partial), TensorBoard logs,
``history.csv`` (appended on resume; columns ``epoch_steps`` and
``epoch_complete`` say how many steps each row trained and whether its epoch was
whole), a PNG of the training curves, Keras progress bars, and fixed seeds.

The same `fit` runs on one device, several local devices and several machines
(``train.strategy``): the decision and its reasons (Keras ``fit`` under
`tf.distribute`, three small patches) are in `kerasrnn.distribute`'s docstring.

Files written in the (work) run directory::

    checkpoints/backup/      StepBackup state: state.json + weights-N.weights.h5 (weights + optimizer)
    checkpoints/last.keras   model after the latest epoch (atomic)
    checkpoints/best.keras   model with the best val_loss so far (atomic)
    checkpoints/state.json   early-stopping state: best, best_epoch, wait
    logs/                    TensorBoard
    history.csv              one row per epoch
    training_curves.png      loss (and other metrics) per epoch
"""

from __future__ import annotations

import csv
import json
import math
import time
import warnings
from pathlib import Path

import keras
import numpy as np

from kerasrnn import atomic, cells
from kerasrnn.errors import UserError
from kerasrnn.plots import pyplot, save_png
from kerasrnn.recipes import TrainConfig  # noqa: F401  (the [train] section; re-exported)


def set_seeds(seed: int) -> None:
    """Seed Python, NumPy and TensorFlow (`keras.utils.set_random_seed`)."""
    keras.utils.set_random_seed(int(seed))


def resolve_jit(setting: str, cell: str) -> bool:
    """Turn the recipe's ``jit_compile`` ("auto"/"true"/"false") into a bool.

    >>> resolve_jit("auto", "lstm")  # doctest: +SKIP
    True
    """
    value = str(setting).lower()
    if value == "auto":
        return cells.recommended_jit_compile(cell)
    if value in ("true", "1", "yes"):
        return True
    if value in ("false", "0", "no"):
        return False
    raise UserError(f"train.jit_compile must be 'auto', 'true' or 'false', got {setting!r}")


def make_optimizer(cfg: TrainConfig) -> keras.optimizers.Optimizer:
    """Adam (or ``train.optimizer = "sgd"``: plain SGD) with ``clipnorm`` (gradient clipping on by default)."""
    kwargs = {"clipnorm": cfg.clipnorm} if cfg.clipnorm > 0 else {}
    optimizer = keras.optimizers.SGD if getattr(cfg, "optimizer", "adam") == "sgd" else keras.optimizers.Adam
    return optimizer(learning_rate=cfg.learning_rate, **kwargs)


class TimeBudget(keras.callbacks.Callback):
    """Stop training within `minutes`, at an epoch boundary whenever possible.

    After each epoch, training stops if the next epoch would likely end past the
    budget (elapsed + the longest epoch so far > budget). An epoch longer than the
    whole budget is cut after the step that crosses it; that epoch is then marked
    partial (`cut_mid_epoch`), and its history row says so (``epoch_complete = 0``).

    It also adds ``epoch_steps`` (steps trained in the epoch, counting steps done
    before a resume) and ``epoch_complete`` (1 or 0) to every epoch's logs, which
    ``history.csv`` records.
    """

    def __init__(self, minutes: float, step_offset: int = 0):
        super().__init__()
        self.seconds = minutes * 60.0
        self.start = None
        self.stopped = False
        self.cut_mid_epoch = False
        self.partial_epoch = None
        self.step_offset = step_offset
        self.longest_epoch = 0.0
        self._epoch_start = None
        self._steps = 0

    def begin_fit(self, step_offset: int) -> None:
        """Prepare for one `fit` call whose first epoch already has `step_offset` steps done."""
        self.step_offset = step_offset

    def on_train_begin(self, logs=None):
        if self.start is None:
            self.start = time.monotonic()

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch_start = time.monotonic()
        self._steps = self.step_offset
        self.step_offset = 0

    def on_train_batch_end(self, batch, logs=None):
        self._steps += 1
        if self.seconds > 0 and time.monotonic() - self.start > self.seconds and not self.model.stop_training:
            print(f"\nTime budget of {self.seconds / 60:g} min reached inside an epoch longer than the budget: "
                  "stopping after this step (the epoch is recorded as partial).")
            self.stopped = self.cut_mid_epoch = True
            self.model.stop_training = True

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["epoch_steps"] = float(self._steps)
            logs["epoch_complete"] = 0.0 if self.cut_mid_epoch else 1.0
        if self.cut_mid_epoch:
            self.partial_epoch = {"epoch": epoch + 1, "steps_done": self._steps}
            return
        self.longest_epoch = max(self.longest_epoch, time.monotonic() - self._epoch_start)
        elapsed = time.monotonic() - self.start
        if self.seconds > 0 and elapsed + self.longest_epoch > self.seconds:
            print(f"\nTime budget of {self.seconds / 60:g} min: stopping after epoch {epoch + 1} "
                  f"(another epoch of ~{self.longest_epoch:.0f} s would end past it).")
            self.stopped = True
            self.model.stop_training = True


#: Longest time between two step-level backups (seconds), whatever ``train.backup_every_steps`` says.
BACKUP_MAX_SECONDS = 60.0


class StepBackup(keras.callbacks.Callback):
    """The resumable training state, every `every_steps` steps and at each epoch end.

    Writes ``state.json`` ``{"epoch", "steps_done", "weights"}`` (the epoch to run
    next, 0-based, and how many of its steps are done) and the weights file it
    names (model + optimizer variables, `keras.Model.save_weights`). A new weights
    file is written first, then ``state.json`` is replaced atomically: that rename
    commits the backup, so a kill at any moment leaves a complete, consistent state.

    Unlike `keras.callbacks.BackupAndRestore`, whose step-level ``save_freq`` saves
    mid-epoch but restarts the epoch from its first step, `kerasrnn.train.fit`
    resumes the interrupted epoch at the step after the backup.

    Args:
        backup_dir: folder of the state.
        every_steps: steps between backups; 0 = at epoch ends only.
        budget: the run's `TimeBudget` (an epoch it cut is saved as unfinished).
        max_seconds: with `every_steps` > 0, also back up once this many seconds have
            passed since the last backup (default `BACKUP_MAX_SECONDS` = 60), so a slow
            machine loses at most about a minute of work whatever its step time.
        history_path: ``history.csv``; the state records how many rows it had, and a
            resume cuts rows written after the commit (`truncate_history`), so the
            history always matches the weights. Put this callback after the CSV logger.
    """

    def __init__(self, backup_dir: Path, every_steps: int, budget: TimeBudget | None = None,
                 max_seconds: float | None = None, history_path: Path | None = None):
        super().__init__()
        self.dir = Path(backup_dir)
        self.history_path = history_path
        self.every_steps = int(every_steps)
        self.budget = budget
        self.max_seconds = BACKUP_MAX_SECONDS if max_seconds is None else max_seconds
        self._last_save = time.monotonic()
        self.step_offset = 0
        self.restored = False
        self._epoch = 0
        self._steps = 0

    @staticmethod
    def read_state(backup_dir: Path) -> dict | None:
        """The committed state, or None if there is none (or it names a missing weights file)."""
        path = Path(backup_dir) / "state.json"
        try:
            state = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        if not isinstance(state, dict) or not (Path(backup_dir) / str(state.get("weights", ""))).is_file():
            return None
        return state

    def begin_fit(self, step_offset: int) -> None:
        """Prepare for one `fit` call whose first epoch already has `step_offset` steps done."""
        self.step_offset = step_offset

    def on_train_begin(self, logs=None):
        state = self.read_state(self.dir)
        if state is None or self.restored:
            return
        if self.model.optimizer is not None and not self.model.optimizer.built:
            self.model.optimizer.build(self.model.trainable_variables)
        self.model.load_weights(self.dir / state["weights"])
        self.restored = True

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch
        self._steps = self.step_offset
        self.step_offset = 0

    def on_train_batch_end(self, batch, logs=None):
        self._steps += 1
        if self.every_steps and (self._steps % self.every_steps == 0
                                 or time.monotonic() - self._last_save >= self.max_seconds):
            self.save(self._epoch, self._steps)

    def on_epoch_end(self, epoch, logs=None):
        if self.budget is not None and self.budget.cut_mid_epoch:
            self.save(epoch, self._steps)  # the rest of this epoch is still to run
        else:
            self.save(epoch + 1, 0)

    def save(self, epoch: int, steps_done: int) -> None:
        """Commit the current weights as the state (epoch `epoch`, `steps_done` of its steps done)."""
        self.dir.mkdir(parents=True, exist_ok=True)
        previous = self.read_state(self.dir)
        number = (previous or {}).get("number", 0) + 1
        name = f"weights-{number}.weights.h5"
        variables = [*self.model.variables, *getattr(self.model.optimizer, "variables", [])]
        size = sum(int(np.prod(v.shape)) * np.dtype(v.dtype).itemsize for v in variables)
        atomic.ensure_room(self.dir, int(size * 1.2) + 256 * 1024)  # h5py crashes on a failed write: check first
        with atomic.atomic_file(self.dir / name, suffix=".weights.h5") as tmp:
            self.model.save_weights(tmp)
        state = {"epoch": int(epoch), "steps_done": int(steps_done), "weights": name, "number": number,
                 "history_rows": len(read_history(self.history_path)) if self.history_path else None}
        atomic.write_text(self.dir / "state.json", json.dumps(state))
        for old in self.dir.glob("weights-*.weights.h5"):
            if old.name != name:
                old.unlink(missing_ok=True)
        self._last_save = time.monotonic()


def read_model_weights(model: keras.Model, path: Path) -> list:
    """The model weights saved in the ``.keras`` file `path` (same architecture as `model`).

    `model` and its optimizer are left exactly as they were: ``load_weights`` on a
    ``.keras`` file also loads (or, for an optimizer not built yet, warns about) the
    optimizer's variables, so both are put back afterwards.
    """
    optimizer = getattr(model, "optimizer", None)
    opt_vars = list(getattr(optimizer, "variables", []) or [])
    saved_opt = [v.numpy() for v in opt_vars]
    current = model.get_weights()
    load_model_weights(model, path)
    weights = model.get_weights()
    model.set_weights(current)
    for var, value in zip(opt_vars, saved_opt):
        var.assign(value)
    return weights


def load_model_weights(model: keras.Model, path: Path) -> None:
    """``model.load_weights(path)`` without Keras' warning about an optimizer that is not built yet."""

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Skipping variable loading for optimizer")
        model.load_weights(path)


class ResumableEarlyStopping(keras.callbacks.EarlyStopping):
    """`EarlyStopping(restore_best_weights=True)` whose state survives ``--resume``.

    The counters are read from ``checkpoints/state.json`` and the best weights
    from ``checkpoints/best.keras`` when training (re)starts. The best weights are
    *not* put back at the end of each ``model.fit`` call (`kerasrnn.train.fit`
    loads ``best.keras`` once training is over).
    """

    def __init__(self, checkpoint_dir: Path, patience: int):
        super().__init__(monitor="val_loss", patience=max(patience, 1), restore_best_weights=True,
                         verbose=1)
        self.enabled = patience > 0
        self.checkpoint_dir = checkpoint_dir

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)
        state_path = self.checkpoint_dir / "state.json"
        best_path = self.checkpoint_dir / "best.keras"
        if state_path.exists() and best_path.exists():
            state = json.loads(state_path.read_text())
            self.best = state["best"]
            self.best_epoch = state["best_epoch"]
            self.wait = state["wait"]
            self.best_weights = read_model_weights(self.model, best_path)

    def on_train_end(self, logs=None):
        # Keras would restore the best weights at the end of *every* fit call; `fit` makes
        # several on a resume (the interrupted epoch's remaining steps, then the rest), and the
        # later ones must continue from the latest weights. `fit` loads best.keras at the very end.
        if self.stopped_epoch > 0 and self.verbose > 0:
            print(f"Epoch {self.stopped_epoch + 1}: early stopping")

    def on_epoch_end(self, epoch, logs=None):
        if self.enabled:
            super().on_epoch_end(epoch, logs)
        else:  # only track the best weights
            current = (logs or {}).get(self.monitor)
            if current is not None and (self.best is None or current < self.best):
                self.best, self.best_epoch = current, epoch
                self.best_weights = self.model.get_weights()


class EpochCheckpoint(keras.callbacks.Callback):
    """Write ``last.keras`` every epoch, ``best.keras`` on a new best val_loss, atomically."""

    def __init__(self, checkpoint_dir: Path, early_stopping: ResumableEarlyStopping):
        super().__init__()
        self.dir = checkpoint_dir
        self.early_stopping = early_stopping

    def on_epoch_end(self, epoch, logs=None):
        self.dir.mkdir(parents=True, exist_ok=True)
        with atomic.atomic_file(self.dir / "last.keras", suffix=".keras") as tmp:
            self.model.save(tmp)
        es = self.early_stopping
        if es.best_epoch == epoch:
            with atomic.atomic_file(self.dir / "best.keras", suffix=".keras") as tmp:
                self.model.save(tmp)
        state = {"epoch": epoch + 1, "best": _float(es.best), "best_epoch": es.best_epoch, "wait": es.wait}
        atomic.write_text(self.dir / "state.json", json.dumps(state))


def tensorboard_callback(log_dir: Path) -> keras.callbacks.Callback:
    """Keras' TensorBoard callback (per-epoch scalars; graph writing off: it is slow)."""
    return keras.callbacks.TensorBoard(str(log_dir), write_graph=False)


def _float(x):
    return None if x is None else float(x)


def compile_model(model: keras.Model, cfg: TrainConfig, loss, metrics, cell: str) -> None:
    """Compile with Adam+clipnorm and the resolved XLA setting."""
    from kerasrnn import distribute  # XLA cannot compile CPU collectives: off when replicated on CPUs

    model.compile(optimizer=make_optimizer(cfg), loss=loss, metrics=metrics,
                  jit_compile=distribute.allowed_jit(resolve_jit(cfg.jit_compile, cell), cfg.jit_compile))


def fit(model: keras.Model, train_data, val_data, cfg: TrainConfig, work_dir: Path) -> dict:
    """Train a compiled `model`, resuming from ``work_dir/checkpoints`` if it holds state.

    A run interrupted mid-epoch (kill, Ctrl-C, power cut) resumes at the step after
    its last backup: the interrupted epoch runs its remaining steps only (the
    training data are skipped ahead by the steps already done), then training goes
    on from the next epoch.

    Args:
        model: a compiled, built keras.Model.
        train_data: a `tf.data.Dataset` of batches (repeating if ``cfg.steps_per_epoch``).
        val_data: a `tf.data.Dataset` of validation batches (not repeating).
        cfg: the ``[train]`` section.
        work_dir: the run's work directory (checkpoints, logs, history go there).

    Returns:
        ``{"epochs_run": int, "best_epoch": int (1-based), "best_val_loss": float,
        "stopped_by_time_budget": bool, "partial_last_epoch": None or {"epoch" (1-based),
        "steps_done"}, "resumed_at": None or {"epoch" (1-based), "steps_done"},
        "train_seconds": float}``. The model holds the best weights on return.

    >>> fit(model, train_ds, val_ds, TrainConfig(epochs=2), Path("run"))  # doctest: +SKIP
    """
    from kerasrnn import distribute  # several devices/workers: see kerasrnn/distribute.py

    train_data, val_data = distribute.shard_dataset(train_data), distribute.shard_dataset(val_data)
    ckpt = work_dir / "checkpoints"
    ckpt.mkdir(parents=True, exist_ok=True)
    history_path = work_dir / "history.csv"
    state = StepBackup.read_state(ckpt / "backup")
    epoch, steps_done = (int(state["epoch"]), int(state["steps_done"])) if state else (0, 0)
    if state:
        print(f"Resuming at epoch {epoch + 1}" + (f", step {steps_done + 1}" if steps_done else ""))
    if state:
        truncate_history(history_path, state.get("history_rows"))
    early = ResumableEarlyStopping(ckpt, cfg.patience)
    budget = TimeBudget(cfg.max_minutes)
    backup = StepBackup(ckpt / "backup", cfg.backup_every_steps, budget, history_path=history_path,
                        max_seconds=distribute.backup_max_seconds())
    board = tensorboard_callback(work_dir / "logs")
    validation_steps = cfg.validation_steps or None
    cardinality = int(val_data.cardinality()) if hasattr(val_data, "cardinality") else -1
    if validation_steps and cardinality >= 0 and validation_steps >= cardinality:
        validation_steps = None  # the cap is more than the data: use it all, once

    def run_epochs(data, first: int, last: int, steps_per_epoch, offset: int) -> None:
        budget.begin_fit(offset)
        backup.begin_fit(offset)
        logger = keras.callbacks.CSVLogger(str(history_path), append=history_path.exists())
        model.fit(data, validation_data=val_data, initial_epoch=first, epochs=last,
                  steps_per_epoch=steps_per_epoch, validation_steps=validation_steps,
                  callbacks=[budget, early, EpochCheckpoint(ckpt, early), logger, board, backup],  # commit last
                  verbose=distribute.verbosity(cfg.verbose), shuffle=False)  # the tf.data pipelines shuffle themselves

    start = time.monotonic()
    if steps_done and epoch < cfg.epochs:  # finish the interrupted epoch: its remaining steps only
        remaining = cfg.steps_per_epoch - steps_done if cfg.steps_per_epoch else None
        if remaining is None or remaining > 0:
            run_epochs(train_data.skip(steps_done), epoch, epoch + 1, remaining, steps_done)
        epoch += 1
    if epoch < cfg.epochs and not budget.stopped and not early.stopped_epoch:
        run_epochs(train_data, epoch, cfg.epochs, cfg.steps_per_epoch or None, 0)
    seconds = time.monotonic() - start
    if (ckpt / "best.keras").exists():  # the best epoch, also one from before a resume
        if cfg.verbose and early.best is not None:
            print(f"Restoring model weights from the end of the best epoch: {early.best_epoch + 1}.")
        load_model_weights(model, ckpt / "best.keras")
    history = read_history(history_path)
    plot_history(history, work_dir / "training_curves.png")
    return {
        "epochs_run": len({int(row.get("epoch", i)) for i, row in enumerate(history)}),
        "best_epoch": (early.best_epoch + 1) if early.best is not None else None,
        "best_val_loss": _float(early.best),
        "stopped_by_time_budget": budget.stopped,
        "partial_last_epoch": budget.partial_epoch,
        "resumed_at": {"epoch": int(state["epoch"]) + 1, "steps_done": int(state["steps_done"])} if state else None,
        "train_seconds": round(seconds, 1),
    }


def truncate_history(path: Path, rows: int | None) -> None:
    """Keep the header and the first `rows` rows of ``history.csv`` (rows after a backup's commit)."""
    if rows is None or not path.exists():
        return
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    if len(lines) > rows + 1:
        atomic.write_text(path, "".join(lines[:rows + 1]))


def read_history(path: Path) -> list[dict]:
    """Rows of ``history.csv`` as dicts of floats (empty list if absent)."""
    if not path.exists():
        return []
    with open(path, newline="") as f:
        return [{k: float(v) for k, v in row.items() if v not in ("", None)} for row in csv.DictReader(f)]


def plot_history(history: list[dict], target: Path) -> None:
    """Write a PNG of every metric per epoch (train solid, validation dashed)."""

    plt = pyplot()

    names = sorted({k for row in history for k in row if k not in ("epoch", "learning_rate", "epoch_steps",
                                                                   "epoch_complete") and not k.startswith("val_")})
    fig, axes = plt.subplots(1, max(len(names), 1), figsize=(5 * max(len(names), 1), 3.5), squeeze=False)
    epochs = [int(row.get("epoch", i)) + 1 for i, row in enumerate(history)]
    for ax, name in zip(axes[0], names):
        for key, style in ((name, "-o"), (f"val_{name}", "--o")):
            values = [row.get(key, math.nan) for row in history]
            if not all(math.isnan(v) for v in values):
                ax.plot(epochs, values, style, label=key)
        ax.set_xlabel("epoch")
        ax.set_title(name)
        ax.legend()
        ax.grid(alpha=0.3)
    save_png(fig, target)


def batches_needed(n_items: int, batch_size: int) -> int:
    """Number of full batches in `n_items` (at least 0)."""
    return int(np.floor(n_items / max(batch_size, 1)))
