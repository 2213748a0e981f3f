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
from kerasrnn.tasks import registry

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
        depth: int = recipes.setting(1, ge=1)

    module = types.ModuleType("fake_task_module")
    module.SCHEMA = {"special": Special}
    monkeypatch.setitem(sys.modules, "fake_task_module", module)
    monkeypatch.setitem(recipes.TASKS, "fake", registry.TaskEntry("fake_task_module:run", "fake_task_module:SCHEMA"))
    r = recipes.resolve({"run": {"task": "fake"}}, ["special.depth=4"])
    assert r == {"run": {"task": "fake", "name": "fake", "seed": 0, "description": ""}, "special": {"depth": 4}}
    with pytest.raises(UserError, match=r"unknown key 'width' in \[special\]; valid keys: depth"):
        recipes.resolve({"run": {"task": "fake"}, "special": {"width": 2}})
    with pytest.raises(UserError, match=r"unknown recipe section \[anything\] for task 'fake'"):
        recipes.resolve({"run": {"task": "fake"}, "anything": {"x": 1}})
    with pytest.raises(UserError, match=r"special.depth must be >= 1, got 0"):
        recipes.resolve({"run": {"task": "fake"}}, ["special.depth=0"])


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


def _numeric(tp) -> bool:
    import typing

    args = typing.get_args(tp)
    return tp in (int, float) or (typing.get_origin(tp) is list and args[0] in (int, float))


def test_every_numeric_key_of_every_task_declares_its_limits():
    """New keys cannot slip through: each int/float (or list of them) key is a `recipes.setting`."""
    import dataclasses
    import typing

    missing = []
    for task in recipes.TASKS:
        for section, cls in recipes.task_schema(task).items():
            hints = typing.get_type_hints(cls)
            for f in dataclasses.fields(cls):
                if _numeric(hints[f.name]) and "limits" not in f.metadata:
                    missing.append(f"{task}: {section}.{f.name}")
    assert not missing, f"declare limits with recipes.setting(...) for: {', '.join(missing)}"


@pytest.mark.parametrize("override,message", [
    ("train.epochs=-1", "train.epochs must be >= 1, got -1"),
    ("train.learning_rate=-1", "train.learning_rate must be > 0, got -1.0"),
    ("train.learning_rate=nan", "train.learning_rate must be a finite number, got nan"),
    ("train.learning_rate=inf", "train.learning_rate must be a finite number, got inf"),
    ("train.clipnorm=-0.5", "train.clipnorm must be >= 0"),
    ("train.max_minutes=-1", "train.max_minutes must be >= 0"),
    ("train.backup_every_steps=-1", "train.backup_every_steps must be >= 0"),
    ("train.batch_size=0", "train.batch_size must be >= 1"),
    ("run.seed=-1", "run.seed must be >= 0"),
    ("data.fractions=0.5,0.5,0.5", "data.fractions must sum to 1, got [0.5, 0.5, 0.5]"),
    ("data.fractions=0.9,0.1", "data.fractions must have 3 values"),
    ("data.fractions=0.9,0.1,0", "data.fractions must be > 0"),
])
def test_out_of_range_values_name_the_real_key(override, message):
    with pytest.raises(UserError) as e:
        recipes.load_recipe("sine-forecast", [override])
    assert message in e.value.message


@pytest.mark.parametrize("override,message", [
    ("data.seq_len=1", "data.seq_len must be >= 2"),
    ("model.dropout=1", "model.dropout must be < 1"),
    ("model.units=0", "model.units must be >= 1"),
    ("eval.temperature=-0.1", "eval.temperature must be >= 0"),
    ("eval.top_p=0", "eval.top_p must be > 0"),
    ("eval.top_p=1.5", "eval.top_p must be <= 1"),
    ("data.val_fraction=1", "data.val_fraction must be < 1"),
    ("data.source=ftp", "data.source must be one of 'tfds', 'text', 'python_stdlib'"),
    ("eval.unknown_char_policy=ignore", "eval.unknown_char_policy must be one of 'error', 'skip'"),
])
def test_generation_limits(override, message):
    with pytest.raises(UserError) as e:
        recipes.load_recipe("text-char", [override])
    assert message in e.value.message


def test_cli_fast_paths_do_not_import_tensorflow():
    """`kerasrnn --help`, `recipe list` and `recipe show` of a TF-free schema stay under a second."""
    import subprocess

    code = ("import sys; from kerasrnn.cli import main\n"
            "for args in (['--help'], ['recipe', 'list'], ['recipe', 'show', 'text-char'], ['recipe', 'show', "
            "'long-memory']):\n"
            "    try:\n        main(args, prog_name='kerasrnn')\n    except SystemExit as e:\n        assert not e.code\n"
            "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules, 'TensorFlow was imported'\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "[run]" in result.stdout and "python-char" in result.stdout
