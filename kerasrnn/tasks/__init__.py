"""Task modules run by recipes: `generation`, `classification`, `forecasting`.

Each exposes ``SCHEMA`` (recipe section -> dataclass of its keys and defaults)
and ``run(recipe, run_dir, resume) -> metrics`` (build model, train, evaluate,
write the run directory). The registry is `kerasrnn.recipes.TASKS`.
"""
