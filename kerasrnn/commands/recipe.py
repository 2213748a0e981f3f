"""`kerasrnn recipe list | show NAME | run NAME_OR_PATH [--set section.key=value] [--resume]`."""

from __future__ import annotations

import importlib
from pathlib import Path

import click

from kerasrnn import recipes
from kerasrnn.errors import UserError

SET_HELP = "Override a recipe value, e.g. --set train.epochs=3 (repeatable; lists as a,b or [\"a\", \"b\"])."


@click.group()
def recipe():
    """Declarative training recipes (TOML files in recipes/)."""


@recipe.command("list")
def list_command():
    """List the shipped recipes with their task and description."""
    names = recipes.list_recipes()
    if not names:
        raise UserError(f"no recipes found in {recipes.recipes_dir()}; set KERASRNN_RECIPES to a folder of .toml files")
    width = max(len(n) for n in names)
    for name in names:
        run = recipes.read_toml(recipes.recipes_dir() / f"{name}.toml").get("run", {})
        click.echo(f"{name:<{width}}  {run.get('task', '?'):<14}  {run.get('description', '')}")


@recipe.command("show")
@click.argument("name_or_path")
@click.option("--set", "overrides", multiple=True, metavar="SECTION.KEY=VALUE", help=SET_HELP)
def show_command(name_or_path, overrides):
    """Print the fully resolved recipe (defaults filled in) as TOML."""
    resolved = recipes.load_recipe(name_or_path, overrides)
    click.echo(recipes.to_toml(resolved), nl=False)


@recipe.command("run")
@click.argument("name_or_path")
@click.option("--set", "overrides", multiple=True, metavar="SECTION.KEY=VALUE", help=SET_HELP)
@click.option("--resume", is_flag=True, help="Continue an interrupted (or finished) run from its checkpoints.")
@click.option("--runs-dir", default="saved_models", show_default=True, type=click.Path(file_okay=False),
              help="Folder that receives saved_models/<run-name>/.")
def run_command(name_or_path, overrides, resume, runs_dir):
    """Train, evaluate and save a run: saved_models/<run.name>/."""
    resolved = recipes.load_recipe(name_or_path, overrides)
    task = resolved["run"]["task"]
    module_name, attr = recipes.TASKS[task].split(":")
    run_fn = getattr(importlib.import_module(module_name), attr)
    run_dir = Path(runs_dir) / resolved["run"]["name"]
    click.echo(f"Recipe {name_or_path} (task {task}) -> {run_dir}")
    try:
        run_fn(resolved, run_dir, resume)
    except KeyboardInterrupt:
        click.echo(f"\nInterrupted. Continue with: kerasrnn recipe run {name_or_path} --resume "
                   + " ".join(f"--set {o}" for o in overrides), err=True)
        raise SystemExit(130)
