"""Recipes: loading, schema validation, --set coercion, errors, the recipe CLI."""

import sys
import tomllib
import types
from dataclasses import dataclass

import pytest
from click.testing import CliRunner

from kerasrnn import recipes
from kerasrnn.cli import main
from kerasrnn.errors import UserError

SHIPPED = ["csv-sentiment", "imdb-sentiment", "polarity-sentiment", "python-char", "shakespeare-char",
           "sine-forecast", "text-char"]


def test_every_shipped_recipe_is_listed_parses_and_validates():
    assert set(SHIPPED) <= set(recipes.list_recipes())
    for name in recipes.list_recipes():
        resolved = recipes.load_recipe(name)
        assert resolved["run"]["task"] in recipes.TASKS
        assert resolved["run"]["name"] == name  # default run name = file stem
        schema = recipes.task_schema(resolved["run"]["task"])
        for section, cls in schema.items():  # every schema key is filled in
            assert set(resolved[section]) == {f for f in cls.__dataclass_fields__}
        # the resolved recipe survives a TOML round trip unchanged
        assert tomllib.loads(recipes.to_toml(resolved)) == resolved


def test_set_overrides_are_coerced_to_the_field_type():
    r = recipes.load_recipe("sine-forecast", [
        "train.epochs=3", "train.learning_rate=1e-2", "train.clipnorm=2", "data.header=false",
        "data.fractions=0.6,0.2,0.2", "run.name=123", "data.column=\"value\"", "eval.horizon=7"])
    assert r["train"]["epochs"] == 3 and isinstance(r["train"]["epochs"], int)
    assert r["train"]["learning_rate"] == 0.01
    assert r["train"]["clipnorm"] == 2.0 and isinstance(r["train"]["clipnorm"], float)
    assert r["data"]["header"] is False
    assert r["data"]["fractions"] == [0.6, 0.2, 0.2]
    assert r["run"]["name"] == "123"  # str field keeps the text
    assert r["data"]["column"] == "value"
    assert r["eval"]["horizon"] == 7
    r = recipes.load_recipe("text-char", ['data.paths=["a.txt", "b.txt"]'])
    assert r["data"]["paths"] == ["a.txt", "b.txt"]
    r = recipes.load_recipe("text-char", ["data.paths=a.txt,b.txt"])
    assert r["data"]["paths"] == ["a.txt", "b.txt"]


def test_unknown_key_error_names_the_valid_keys():
    with pytest.raises(UserError) as e:
        recipes.load_recipe("sine-forecast", ["train.epoch=3"])
    assert "'epoch'" in e.value.message and "[train]" in e.value.message
    assert "epochs" in e.value.message and "batch_size" in e.value.message
    with pytest.raises(UserError, match=r"unknown recipe section \[trian\].*valid sections: run, data"):
        recipes.load_recipe("sine-forecast", ["trian.epochs=3"])


def test_bad_values_and_override_syntax():
    with pytest.raises(UserError, match=r"train.epochs.*expected int.*'three'"):
        recipes.load_recipe("sine-forecast", ["train.epochs=three"])
    with pytest.raises(UserError, match="expected section.key=value"):
        recipes.load_recipe("sine-forecast", ["epochs=3"])
    with pytest.raises(UserError, match="expected bool"):
        recipes.load_recipe("sine-forecast", ["data.header=maybe"])


def test_recipe_file_errors(tmp_path):
    bad_type = tmp_path / "bad.toml"
    bad_type.write_text('[run]\ntask = "forecasting"\n[train]\nepochs = "ten"\n')
    with pytest.raises(UserError, match=r"train.epochs must be int, got 'ten'"):
        recipes.load_recipe(str(bad_type))
    typo = tmp_path / "typo.toml"
    typo.write_text('[run]\ntask = "forecasting"\n[model]\nunits = 8\nlayers = 2\n')
    with pytest.raises(UserError, match=r"unknown key 'layers' in \[model\]; valid keys: cell, units, num_layers"):
        recipes.load_recipe(str(typo))
    no_task = tmp_path / "notask.toml"
    no_task.write_text("[run]\nseed = 1\n")
    with pytest.raises(UserError, match="no run.task.*classification, forecasting, generation"):
        recipes.load_recipe(str(no_task))
    wrong_task = tmp_path / "wrongtask.toml"
    wrong_task.write_text('[run]\ntask = "translation"\n')
    with pytest.raises(UserError, match="unknown run.task 'translation'"):
        recipes.load_recipe(str(wrong_task))
    broken = tmp_path / "broken.toml"
    broken.write_text("[run\n")
    with pytest.raises(UserError, match="not valid TOML"):
        recipes.load_recipe(str(broken))
    with pytest.raises(UserError, match="unknown recipe 'no-such-recipe'; shipped recipes: .*sine-forecast"):
        recipes.load_recipe("no-such-recipe")
    with pytest.raises(UserError, match="does not exist"):
        recipes.load_recipe(str(tmp_path / "missing.toml"))


def test_recipes_dir_from_environment(tmp_path, monkeypatch):
    (tmp_path / "mine.toml").write_text('[run]\ntask = "forecasting"\n[train]\nepochs = 2\n')
    monkeypatch.setenv("KERASRNN_RECIPES", str(tmp_path))
    assert recipes.list_recipes() == ["mine"]
    r = recipes.load_recipe("mine")
    assert r["train"]["epochs"] == 2 and r["train"]["batch_size"] == 64 and r["run"]["name"] == "mine"


def test_task_specific_sections_use_the_task_modules_schema(monkeypatch):
    @dataclass
    class Special:
        depth: int = 1

    module = types.ModuleType("fake_task_module")
    module.SCHEMA = {"special": Special}
    selfcheck = types.ModuleType("fake_selfcheck_module")  # no SCHEMA: validates its sections itself
    monkeypatch.setitem(sys.modules, "fake_task_module", module)
    monkeypatch.setitem(sys.modules, "fake_selfcheck_module", selfcheck)
    monkeypatch.setitem(recipes.TASKS, "fake", "fake_task_module:run")
    monkeypatch.setitem(recipes.TASKS, "selfcheck", "fake_selfcheck_module:run")
    r = recipes.resolve({"run": {"task": "fake"}}, ["special.depth=4"])
    assert r == {"run": {"task": "fake", "name": "fake", "seed": 0, "description": ""}, "special": {"depth": 4}}
    with pytest.raises(UserError, match=r"unknown key 'width' in \[special\]; valid keys: depth"):
        recipes.resolve({"run": {"task": "fake"}, "special": {"width": 2}})
    r = recipes.resolve({"run": {"task": "selfcheck"}, "anything": {"x": 1}}, ["anything.y=[1, 2]"])
    assert r["anything"] == {"x": 1, "y": [1, 2]}


def test_recipe_cli_list_show_and_errors():
    runner = CliRunner()
    out = runner.invoke(main, ["recipe", "list"])
    assert out.exit_code == 0
    for name in SHIPPED:
        assert name in out.output
    out = runner.invoke(main, ["recipe", "show", "sine-forecast", "--set", "train.epochs=4"])
    assert out.exit_code == 0
    shown = tomllib.loads(out.output)
    assert shown["train"]["epochs"] == 4 and shown["run"]["task"] == "forecasting"
    out = runner.invoke(main, ["recipe", "run", "sine-forecast", "--set", "train.epoch=4"])
    assert out.exit_code == 1
    assert out.output.startswith("Error: unknown key 'epoch' in [train]; valid keys: epochs")
    assert "Traceback" not in out.output
