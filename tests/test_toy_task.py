"""Issue 13's proof: a fourth task needs one task module, one export module and one
registry line each, and nothing else (no edit anywhere in kerasrnn)."""

from __future__ import annotations

import json

import numpy as np
from click.testing import CliRunner

import toy_export
from kerasrnn.cli import main
from kerasrnn.export import exporter
from kerasrnn.tasks import registry

RECIPE = """
[run]
task = "scoring"
name = "toy-scorer"
seed = 0

[data]
examples = 96

[model]
units = 6

[train]
epochs = 3
batch_size = 16
verbose = 0
"""


def test_a_fourth_task_runs_exports_and_serves_with_one_module_and_one_line_each(tmp_path, monkeypatch):
    monkeypatch.setitem(registry.TASKS, "scoring", registry.TaskEntry("toy_task:run", "toy_task:SCHEMA"))
    monkeypatch.setitem(exporter.TASK_EXPORTS, "scoring", toy_export)
    recipe = tmp_path / "toy.toml"
    recipe.write_text(RECIPE)
    runs = tmp_path / "runs"
    cli = CliRunner()

    shown = cli.invoke(main, ["recipe", "show", str(recipe), "--set", "model.units=7"])
    assert shown.exit_code == 0, shown.output
    assert "units = 7" in shown.output and "examples = 96" in shown.output

    bad = cli.invoke(main, ["recipe", "run", str(recipe), "--set", "data.examples=2", "--runs-dir", str(runs)])
    assert bad.exit_code == 1 and "data.examples" in bad.output and "Traceback" not in bad.output

    ran = cli.invoke(main, ["recipe", "run", str(recipe), "--runs-dir", str(runs)])
    assert ran.exit_code == 0, ran.output
    run_dir = runs / "toy-scorer"
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["epochs_run"] == 3 and np.isfinite(metrics["val_mse"])
    assert json.loads((run_dir / "run.json").read_text())["task"] == "scoring"

    exported = cli.invoke(main, ["export", str(run_dir), "--format", "tflite"])
    assert exported.exit_code == 0, exported.output
    manifest = json.loads((run_dir / "export" / "tflite" / "manifest.json").read_text())
    assert manifest["task"] == "scoring" and manifest["parity"]["passed"]

    again = cli.invoke(main, ["recipe", "run", str(recipe), "--runs-dir", str(runs)])
    assert again.exit_code == 1 and "--overwrite" in again.output  # the shared lifecycle guards it too
