"""The shared training loop: one `fit` with the callbacks every task wants.

Adam with gradient clipping (``clipnorm=1.0`` by default: exploding gradients are
the classic RNN failure), early stopping on ``val_loss`` that keeps the best
weights, an atomic checkpoint every epoch, `keras.callbacks.BackupAndRestore` so
``--resume`` continues an interrupted run (a kill mid-epoch loses at most that
epoch), TensorBoard logs, ``history.csv`` (appended on resume), a PNG of the
training curves, Keras progress bars, and fixed seeds.

Files written in the (work) run directory::

    checkpoints/backup/      BackupAndRestore state (weights + optimizer + epoch)
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
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np

from kerasrnn import atomic
from kerasrnn.errors import UserError
from kerasrnn.recipes import setting


@dataclass
class TrainConfig:
    """The ``[train]`` section.

    Attributes:
        epochs: maximum number of epochs (default 10).
        batch_size: examples per step (default 64).
        learning_rate: Adam learning rate (default 1e-3).
        clipnorm: clip each gradient to this L2 norm; 0 turns clipping off (default 1.0).
        patience: early-stopping patience in epochs on val_loss; 0 = no early stopping (default 3).
        steps_per_epoch: cap on steps per epoch; 0 = one pass over the data (default 0).
        validation_steps: cap on validation steps; 0 = whole validation set (default 0).
        max_minutes: wall-clock budget; training stops cleanly after the current
            step once exceeded, 0 = no budget (default 0).
        jit_compile: "auto" (= `kerasrnn.layers.recommended_jit_compile(cell)`),
            "true" or "false" (default "auto").
        verbose: Keras progress output: 0 silent, 1 progress bar, 2 one line per epoch (default 1).
    """

    epochs: int = setting(10, ge=1)
    batch_size: int = setting(64, ge=1)
    learning_rate: float = setting(1e-3, gt=0)
    clipnorm: float = setting(1.0, ge=0)
    patience: int = setting(3, ge=0)
    steps_per_epoch: int = setting(0, ge=0)
    validation_steps: int = setting(0, ge=0)
    max_minutes: float = setting(0.0, ge=0)
    jit_compile: str = setting("auto", choices=("auto", "true", "false"))
    verbose: int = setting(1, choices=(0, 1, 2))


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
        from kerasrnn.layers import recommended_jit_compile

        return recommended_jit_compile(cell)
    if value in ("true", "1", "yes"):
        return True
    if value in ("false", "0", "no"):
        return False
    raise UserError(f"train.jit_compile must be 'auto', 'true' or 'false', got {setting!r}")


def make_optimizer(cfg: TrainConfig) -> keras.optimizers.Optimizer:
    """Adam with ``clipnorm`` (gradient clipping on by default)."""
    kwargs = {"clipnorm": cfg.clipnorm} if cfg.clipnorm > 0 else {}
    return keras.optimizers.Adam(learning_rate=cfg.learning_rate, **kwargs)


class TimeBudget(keras.callbacks.Callback):
    """Stop training cleanly (after the current step) once `minutes` have passed."""

    def __init__(self, minutes: float):
        super().__init__()
        self.seconds = minutes * 60.0
        self.start = None
        self.stopped = False

    def on_train_begin(self, logs=None):
        self.start = time.monotonic()

    def on_train_batch_end(self, batch, logs=None):
        if self.seconds > 0 and time.monotonic() - self.start > self.seconds:
            if not self.stopped:
                print(f"\nTime budget of {self.seconds / 60:g} min reached: stopping after this step.")
            self.stopped = True
            self.model.stop_training = True


class ResumableEarlyStopping(keras.callbacks.EarlyStopping):
    """`EarlyStopping(restore_best_weights=True)` whose state survives ``--resume``.

    The counters are read from ``checkpoints/state.json`` and the best weights
    from ``checkpoints/best.keras`` when training (re)starts.
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
            current = self.model.get_weights()
            self.model.load_weights(best_path)
            self.best_weights = self.model.get_weights()
            self.model.set_weights(current)

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
    model.compile(optimizer=make_optimizer(cfg), loss=loss, metrics=metrics,
                  jit_compile=resolve_jit(cfg.jit_compile, cell))


def fit(model: keras.Model, train_data, val_data, cfg: TrainConfig, work_dir: Path) -> dict:
    """Train a compiled `model`, resuming from ``work_dir/checkpoints`` if it holds state.

    Args:
        model: a compiled, built keras.Model.
        train_data: a `tf.data.Dataset` of batches (repeating if ``cfg.steps_per_epoch``).
        val_data: a `tf.data.Dataset` of validation batches (not repeating).
        cfg: the ``[train]`` section.
        work_dir: the run's work directory (checkpoints, logs, history go there).

    Returns:
        ``{"epochs_run": int, "best_epoch": int (1-based), "best_val_loss": float,
        "stopped_by_time_budget": bool, "train_seconds": float}``. The model holds
        the best weights on return.

    >>> fit(model, train_ds, val_ds, TrainConfig(epochs=2), Path("run"))  # doctest: +SKIP
    """
    ckpt = work_dir / "checkpoints"
    ckpt.mkdir(parents=True, exist_ok=True)
    history_path = work_dir / "history.csv"
    resuming = (ckpt / "backup").exists()
    early = ResumableEarlyStopping(ckpt, cfg.patience)
    budget = TimeBudget(cfg.max_minutes)
    callbacks = [
        keras.callbacks.BackupAndRestore(str(ckpt / "backup"), save_freq="epoch", delete_checkpoint=False),
        early,
        EpochCheckpoint(ckpt, early),
        keras.callbacks.CSVLogger(str(history_path), append=resuming and history_path.exists()),
        tensorboard_callback(work_dir / "logs"),
        budget,
    ]
    validation_steps = cfg.validation_steps or None
    cardinality = int(val_data.cardinality()) if hasattr(val_data, "cardinality") else -1
    if validation_steps and cardinality >= 0 and validation_steps >= cardinality:
        validation_steps = None  # the cap is more than the data: use it all, once
    start = time.monotonic()
    model.fit(
        train_data,
        validation_data=val_data,
        epochs=cfg.epochs,
        steps_per_epoch=cfg.steps_per_epoch or None,
        validation_steps=validation_steps,
        callbacks=callbacks,
        verbose=cfg.verbose,
        shuffle=False,  # the tf.data pipelines shuffle themselves
    )
    seconds = time.monotonic() - start
    if (ckpt / "best.keras").exists():  # restore_best_weights also covers a resumed best
        model.load_weights(ckpt / "best.keras")
    history = read_history(history_path)
    plot_history(history, work_dir / "training_curves.png")
    return {
        "epochs_run": len(history),
        "best_epoch": (early.best_epoch + 1) if early.best is not None else None,
        "best_val_loss": _float(early.best),
        "stopped_by_time_budget": budget.stopped,
        "train_seconds": round(seconds, 1),
    }


def read_history(path: Path) -> list[dict]:
    """Rows of ``history.csv`` as dicts of floats (empty list if absent)."""
    if not path.exists():
        return []
    with open(path, newline="") as f:
        return [{k: float(v) for k, v in row.items() if v not in ("", None)} for row in csv.DictReader(f)]


def plot_history(history: list[dict], target: Path) -> None:
    """Write a PNG of every metric per epoch (train solid, validation dashed)."""
    from kerasrnn.plots import pyplot, save_png

    plt = pyplot()

    names = sorted({k for row in history for k in row if k not in ("epoch", "learning_rate")
                    and not k.startswith("val_")})
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
