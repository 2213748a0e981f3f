"""Task modules run by recipes: `generation`, `classification`, `forecasting`.

Each exposes ``SCHEMA`` (recipe section -> dataclass of its keys, defaults and
limits) and ``run(recipe, run_dir, resume=False, **lifecycle) -> metrics``
(build the model, train, evaluate, and write the run directory inside
`kerasrnn.rundir.lifecycle`). The registry is `kerasrnn.tasks.registry.TASKS`.
"""
