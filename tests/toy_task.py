"""A toy fourth task ("scoring"), for `tests/test_toy_task.py` (issue 13's proof).

Feature vectors (B, 3) -> one score (B, 1), the target being a fixed linear map.
This module is everything the recipe runner needs to know about the task: its
``SCHEMA`` and its ``run``. Registering it is one line:
``TASKS["scoring"] = TaskEntry("toy_task:run", "toy_task:SCHEMA")``; its export
lives in `tests/toy_export.py` (one more line in ``TASK_EXPORTS``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from kerasrnn import rundir, train
from kerasrnn.recipes import RunConfig, TrainConfig, section, setting

WEIGHTS = np.array([[0.5], [-1.0], [2.0]], np.float32)


@dataclass
class ScoringData:
    """``[data]``: how many synthetic examples (>= 8)."""

    examples: int = setting(128, ge=8)


@dataclass
class ScoringModel:
    """``[model]``: width of the hidden layer (>= 1)."""

    units: int = setting(8, ge=1)


SCHEMA = {"data": ScoringData, "model": ScoringModel, "train": TrainConfig}


def run(recipe: dict, run_dir: Path, resume: bool = False, **lifecycle) -> dict:
    """Train the scorer and write its run directory (model, samples, metrics)."""
    run_cfg = section(recipe, "run", RunConfig)
    data_cfg = section(recipe, "data", ScoringData)
    model_cfg = section(recipe, "model", ScoringModel)
    train_cfg = section(recipe, "train", TrainConfig)
    train.set_seeds(run_cfg.seed)
    x = np.random.default_rng(run_cfg.seed).normal(size=(data_cfg.examples, 3)).astype(np.float32)
    y = x @ WEIGHTS
    split = data_cfg.examples * 3 // 4
    train_ds = tf.data.Dataset.from_tensor_slices((x[:split], y[:split])).batch(train_cfg.batch_size)
    val_ds = tf.data.Dataset.from_tensor_slices((x[split:], y[split:])).batch(train_cfg.batch_size)
    with rundir.lifecycle(recipe, run_dir, resume=resume, **lifecycle) as work:
        inp = keras.Input((3,), name="features")
        hidden = keras.layers.Dense(model_cfg.units, activation="tanh")(inp)
        model = keras.Model(inp, keras.layers.Dense(1, name="score")(hidden))
        train.compile_model(model, train_cfg, "mse", [], "simple_rnn")
        fit_info = train.fit(model, train_ds, val_ds, train_cfg, work)
        np.savez(work / "samples.npz", x=x[split:])
        rundir.save_model(model, work / "model.keras")
        metrics = {"val_mse": float(model.evaluate(val_ds, verbose=0)), **fit_info}
        rundir.write_json(work / "metrics.json", metrics)
        rundir.write_info(work, recipe)
    return metrics
