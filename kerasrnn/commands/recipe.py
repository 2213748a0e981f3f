"""`kerasrnn recipe list | show NAME | run NAME_OR_PATH [--set section.key=value] [--resume | --restart] [--overwrite]`."""

from __future__ import annotations

from pathlib import Path

import click

from kerasrnn import recipes, rundir
from kerasrnn.commands.flags import settings_as_flags
from kerasrnn.errors import UserError
from kerasrnn.tasks import registry

DEFAULT_RUNS_DIR = "saved_models"

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


def load(name_or_path: str, overrides) -> dict:
    """`recipes.load_recipe`, its errors about an override worded with ``--set``."""
    with settings_as_flags({"override": "--set"}):
        return recipes.load_recipe(name_or_path, overrides)


@recipe.command("show")
@click.argument("name_or_path")
@click.option("--set", "overrides", multiple=True, metavar="SECTION.KEY=VALUE", help=SET_HELP)
def show_command(name_or_path, overrides):
    """Print the fully resolved recipe (defaults filled in) as TOML."""
    resolved = load(name_or_path, overrides)
    click.echo(recipes.to_toml(resolved), nl=False)


@recipe.command("run")
@click.argument("name_or_path")
@click.option("--set", "overrides", multiple=True, metavar="SECTION.KEY=VALUE", help=SET_HELP)
@click.option("--resume", is_flag=True,
              help="Continue the interrupted (or finished) run from its checkpoints, with its own recipe and "
                   "--set values (no retyping; --set train.epochs=N trains longer).")
@click.option("--restart", is_flag=True, help="Discard an interrupted run of this name and start over.")
@click.option("--overwrite", is_flag=True,
              help="Replace a finished run of this name (kept intact until the new one is complete).")
@click.option("--runs-dir", default=DEFAULT_RUNS_DIR, show_default=True, type=click.Path(file_okay=False),
              help="Folder that receives <run-name>/.")
def run_command(name_or_path, overrides, resume, restart, overwrite, runs_dir):
    """Train, evaluate and save a run: saved_models/<run.name>/."""
    overrides = list(overrides)
    resolved = load(name_or_path, overrides)
    run_dir = Path(runs_dir) / resolved["run"]["name"]
    if resume:  # the run's own overrides first, then the new ones (e.g. more epochs)
        stored = rundir.read_origin(run_dir).get("overrides", [])
        if stored:
            overrides = [*stored, *overrides]
            resolved = load(name_or_path, overrides)
    rundir.preflight(run_dir, resume=resume, restart=restart, overwrite=overwrite)
    task = resolved["run"]["task"]
    run_fn = registry.runner(task)
    click.echo(f"Recipe {name_or_path} (task {task}) -> {run_dir}")
    try:
        run_fn(resolved, run_dir, resume, restart=restart, overwrite=overwrite,
               origin={"recipe": name_or_path, "overrides": overrides})
    except KeyboardInterrupt:
        click.echo(interrupt_hint(name_or_path, overrides, runs_dir, run_dir), err=True)
        raise SystemExit(130) from None


def interrupt_hint(name_or_path: str, overrides: list[str], runs_dir, run_dir: Path) -> str:
    """What to type after Ctrl-C: the resume command if something was saved."""
    if not rundir.work_dir_for(run_dir).is_dir():
        return "\nInterrupted before anything was saved; run the same command again to start over."
    extra = [f"--runs-dir {runs_dir}"] if str(runs_dir) != DEFAULT_RUNS_DIR else []
    extra += [f"--set {o}" for o in overrides if o.split("=", 1)[0].strip() == "run.name"]
    return (f"\nInterrupted. Continue with: kerasrnn recipe run {name_or_path} --resume {' '.join(extra)}".rstrip()
            + " (or start over with --restart)")
