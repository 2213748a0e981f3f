"""The task registry: ``run.task`` -> where its recipe schema and its run function live.

This table is the one place a task is registered: adding a task means writing
its module (a ``SCHEMA`` of section dataclasses and a
``run(recipe, run_dir, resume=False, **lifecycle) -> metrics``) and adding one
line here.

The targets are ``"module:attribute"`` strings imported on first use, on purpose:
the task modules import TensorFlow (seconds), and ``kerasrnn recipe show`` must
answer without it. A schema therefore lives in a module that does not import
TensorFlow (``generation_schema``, ``long_memory``), or in the task module itself
(then resolving that task's recipe imports TensorFlow).

>>> sorted(TASKS)
['classification', 'forecasting', 'generation', 'long_memory']
>>> TASKS["generation"].run
'kerasrnn.tasks.generation:run'
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass

from kerasrnn import distribute
from kerasrnn.errors import UserError


@dataclass(frozen=True)
class TaskEntry:
    """Where one task lives.

    Attributes:
        run: ``"module:function"``, called as ``fn(recipe, run_dir, resume=False, **lifecycle)``.
        schema: ``"module:attribute"`` of its ``SCHEMA`` (section name -> dataclass).
    """

    run: str
    schema: str


TASKS: dict[str, TaskEntry] = {
    "generation": TaskEntry("kerasrnn.tasks.generation:run", "kerasrnn.tasks.generation_schema:SCHEMA"),
    "classification": TaskEntry("kerasrnn.tasks.classification:run", "kerasrnn.tasks.classification_schema:SCHEMA"),
    "forecasting": TaskEntry("kerasrnn.tasks.forecasting:run", "kerasrnn.tasks.forecasting_schema:SCHEMA"),
    "long_memory": TaskEntry("kerasrnn.claims.long_memory:run_recipe", "kerasrnn.claims.long_memory:SCHEMA"),
}


def entry(task: str) -> TaskEntry:
    """The registry entry of `task`; an unknown task is a `UserError` listing the valid ones."""
    if task not in TASKS:
        raise UserError(f"unknown run.task {task!r}; valid tasks: {', '.join(sorted(TASKS))}")
    return TASKS[task]


def load(target: str):
    """Import ``"module:attribute"`` and return the attribute."""
    module_name, attr = target.split(":")
    return getattr(importlib.import_module(module_name), attr)


def schema(task: str) -> dict[str, type]:
    """``SCHEMA`` of `task`: section name -> dataclass of its keys."""
    return load(entry(task).schema)


def runner(task: str):
    """The run function of `task`, run inside its recipe's ``train.strategy`` (`kerasrnn.distribute`)."""

    return distribute.placed_runner(load(entry(task).run))
