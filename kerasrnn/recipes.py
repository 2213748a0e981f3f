"""Recipes: declarative TOML files that describe one training run.

A recipe has a ``[run]`` section (which task, the run name, the seed) and one
section per stage of its task, e.g. ``[data]``, ``[model]``, ``[train]``,
``[eval]``. Every task (see `kerasrnn.tasks.registry.TASKS`) has a ``SCHEMA``: a
dict ``section -> dataclass`` whose typed fields and defaults are the valid keys
of that section, and whose `setting` metadata declares each key's limits.
``[run]`` (`RunConfig`) and ``[train]`` (`TrainConfig`) are shared by the tasks.

Resolution = TOML file + ``--set section.key=value`` overrides + defaults,
checked against the schema: an unknown section or key, a value of the wrong
type, or a value outside its limits is a `UserError` that names the real key
(and the valid keys). The resolved recipe is a plain dict (TOML/JSON-serialisable)
with every key filled in. Nothing here imports TensorFlow.

>>> recipe = load_recipe("sine-forecast", ["train.epochs=3"])  # doctest: +SKIP
>>> recipe["train"]["epochs"]  # doctest: +SKIP
3
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import tomllib
import typing
from dataclasses import dataclass
from pathlib import Path

import kerasrnn
from kerasrnn.errors import UserError
from kerasrnn.tasks import registry
from kerasrnn.tasks.registry import TASKS  # noqa: F401  (run.task -> TaskEntry; re-exported)


# ----------------------------------------------------------------------------- limits


@dataclass(frozen=True)
class Limits:
    """Allowed values of one recipe key (see `setting`)."""

    ge: float | None = None
    gt: float | None = None
    le: float | None = None
    lt: float | None = None
    choices: tuple | None = None
    finite: bool = True
    length: int | None = None
    total: float | None = None

    def declared(self) -> bool:
        """True if any limit besides finiteness is declared."""
        return any(v is not None for v in (self.ge, self.gt, self.le, self.lt, self.choices, self.length,
                                           self.total))

    def list_problem(self, values: list) -> str | None:
        """Why a list value as a whole is not allowed (its `length` and `total`), or None."""
        if self.length is not None and len(values) != self.length:
            return f"must have {self.length} values"
        if self.total is not None and all(isinstance(v, (int, float)) for v in values) \
                and not math.isclose(sum(values), self.total, rel_tol=0, abs_tol=1e-6):
            return f"must sum to {self.total:g}"
        return None

    def problem(self, value) -> str | None:
        """Why `value` (a scalar) is not allowed, or None if it is."""
        if self.choices is not None and value not in self.choices:
            return f"must be one of {', '.join(repr(c) for c in self.choices)}"
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return None
        if isinstance(value, float) and self.finite and not math.isfinite(value):
            return "must be a finite number"
        for bound, ok, word in ((self.ge, lambda b: value >= b, ">="), (self.gt, lambda b: value > b, ">"),
                                (self.le, lambda b: value <= b, "<="), (self.lt, lambda b: value < b, "<")):
            if bound is not None and not ok(bound):
                return f"must be {word} {bound:g}"
        return None


def setting(default=dataclasses.MISSING, *, default_factory=dataclasses.MISSING, ge=None, gt=None, le=None,
            lt=None, choices=None, finite: bool = True, length: int | None = None, total: float | None = None):
    """A recipe key with limits: a `dataclasses.field` whose metadata `resolve` checks.

    Limits apply to a scalar value, or to every element of a list value. Float
    values must be finite unless ``finite=False``. For a list value, `length`
    fixes its number of elements and `total` its sum (within 1e-6): e.g.
    fractions that must each be > 0 and sum to 1 are
    ``setting(default_factory=..., gt=0, total=1)``.

    Args:
        default: the default value (or give `default_factory` for lists).
        ge, gt, le, lt: inclusive/exclusive lower and upper bounds (None = unbounded).
        choices: the allowed values (None = any).
        finite: floats must be finite (default True).
        length: lists only: the required number of elements (None = any).
        total: lists only: the required sum of the elements (None = any).

    >>> @dataclass
    ... class Train:
    ...     epochs: int = setting(10, ge=1)
    >>> check_limits("train", Train(epochs=0))
    Traceback (most recent call last):
    ...
    kerasrnn.errors.UserError: train.epochs must be >= 1, got 0
    """
    limits = Limits(ge, gt, le, lt, tuple(choices) if choices is not None else None, finite, length, total)
    return dataclasses.field(default=default, default_factory=default_factory, metadata={"limits": limits})


def _cell_problem(value) -> str | None:
    from kerasrnn.cells import CELL_TYPES  # no TensorFlow

    if str(value).strip().lower() not in CELL_TYPES:
        return f"must be a cell type, one of {', '.join(sorted(CELL_TYPES))}"
    return None


#: Checks by key name, for keys of every task whose schema declares no `choices` for them:
#: ``cell`` / ``cells`` name cell types (`kerasrnn.cells.CELL_TYPES`), ``delimiter`` is one
#: character or empty (= guess from the file name).
KEY_CONVENTIONS = {
    "cell": _cell_problem,
    "cells": _cell_problem,
    "delimiter": lambda v: None if len(str(v)) <= 1 else "must be one character (or empty: from the file name)",
}


def check_limits(section_name: str, config) -> None:
    """Check every field of a section dataclass against its `setting` limits.

    Fields declared without `setting` only get the finiteness check for floats,
    and the `KEY_CONVENTIONS` check of their name if there is one.
    Raises `UserError` naming the first bad key, e.g. "train.epochs must be >= 1, got -1".
    """
    for f in dataclasses.fields(config):
        limits = f.metadata.get("limits", Limits())
        value = getattr(config, f.name)
        convention = KEY_CONVENTIONS.get(f.name) if limits.choices is None else None
        for item in ((value if isinstance(value, list) else [value]) if convention else []):
            problem = convention(item)
            if problem:
                raise UserError(f"{section_name}.{f.name} {problem}, got {value!r}")
        problem = limits.list_problem(value) if isinstance(value, list) else None
        if problem:
            raise UserError(f"{section_name}.{f.name} {problem}, got {value!r}")
        for item in (value if isinstance(value, list) else [value]):
            problem = limits.problem(item)
            if problem:
                shown = value if isinstance(value, list) else item
                raise UserError(f"{section_name}.{f.name} {problem}, got {shown!r}")


@dataclass
class RunConfig:
    """The ``[run]`` section, common to every task.

    Attributes:
        task: one of `TASKS` (required).
        name: run name = folder under ``saved_models/`` (default: the recipe's file name).
        seed: seed for Python, NumPy and TensorFlow (default 0).
        description: one line shown by ``kerasrnn recipe list``.
    """

    task: str = ""
    name: str = ""
    seed: int = setting(0, ge=0, le=2**32 - 1)
    description: str = ""


@dataclass
class TrainConfig:
    """The ``[train]`` section, common to every task that trains with `kerasrnn.train.fit`.

    Attributes:
        epochs: maximum number of epochs, >= 1 (default 10).
        batch_size: examples per step, >= 1 (default 64).
        learning_rate: Adam learning rate, finite and > 0 (default 1e-3).
        clipnorm: clip each gradient to this L2 norm, >= 0; 0 turns clipping off (default 1.0).
        patience: early-stopping patience in epochs on val_loss, >= 0; 0 = no early stopping (default 3).
        steps_per_epoch: cap on steps per epoch, >= 0; 0 = one pass over the data (default 0).
        validation_steps: cap on validation steps, >= 0; 0 = whole validation set (default 0).
        max_minutes: wall-clock budget, >= 0; 0 = no budget (default 0). Training stops at
            the epoch boundary where the next epoch would likely end past the budget; an
            epoch longer than the whole budget is cut after the step that crosses it, and
            ``history.csv`` / ``metrics.json`` record it as a partial epoch.
        backup_every_steps: write the resumable training state (weights, optimizer, epoch
            and step) every this many steps and at least once a minute, >= 0; 0 = at epoch
            ends only (default 100: ~18 s of work at the slowest shipped recipe's 0.18 s/step
            on 2 idle cores; the one-minute floor bounds the loss on slower machines; see
            the README's Reliability section).
        jit_compile: "auto" (= `kerasrnn.layers.recommended_jit_compile(cell)`),
            "true" or "false" (default "auto").
        verbose: Keras progress output: 0 silent, 1 progress bar, 2 one line per epoch (default 1).
        optimizer: "adam" or "sgd" (plain SGD, same learning_rate and clipnorm; default "adam").
        strategy: "auto", "one_device", "mirrored" or "multi_worker" (`kerasrnn.distribute`;
            batch_size is then the global batch; default "auto").
        peer_timeout_seconds: multi_worker only: how long to wait for the peers in TF_CONFIG
            at start-up and for a silent peer during training, > 0 (default 120).
    """

    epochs: int = setting(10, ge=1)
    batch_size: int = setting(64, ge=1)
    learning_rate: float = setting(1e-3, gt=0)
    clipnorm: float = setting(1.0, ge=0)
    patience: int = setting(3, ge=0)
    steps_per_epoch: int = setting(0, ge=0)
    validation_steps: int = setting(0, ge=0)
    max_minutes: float = setting(0.0, ge=0)
    backup_every_steps: int = setting(100, ge=0)
    jit_compile: str = setting("auto", choices=("auto", "true", "false"))
    verbose: int = setting(1, choices=(0, 1, 2))
    optimizer: str = setting("adam", choices=("adam", "sgd"))
    strategy: str = setting("auto", choices=("auto", "one_device", "mirrored", "multi_worker"))
    peer_timeout_seconds: float = setting(120.0, gt=0)


# ----------------------------------------------------------------------------- lookup


def recipes_dir() -> Path:
    """The folder of shipped recipes: ``$KERASRNN_RECIPES`` or ``<repo>/recipes``."""
    env = os.environ.get("KERASRNN_RECIPES")
    if env:
        return Path(env)

    return Path(kerasrnn.__file__).resolve().parent.parent / "recipes"


def list_recipes() -> list[str]:
    """Names of the shipped recipes (file stems in `recipes_dir()`), sorted."""
    folder = recipes_dir()
    return sorted(p.stem for p in folder.glob("*.toml")) if folder.is_dir() else []


def find_recipe(name_or_path: str) -> Path:
    """Resolve a recipe name (``recipes/NAME.toml``) or a path to a ``.toml`` file.

    >>> find_recipe("sine-forecast").name  # doctest: +SKIP
    'sine-forecast.toml'
    """
    path = Path(name_or_path)
    if path.suffix == ".toml" or os.sep in name_or_path or "/" in name_or_path:
        if not path.is_file():
            raise UserError(f"recipe file {name_or_path!r} does not exist; give a path to a .toml file "
                            f"or one of the shipped names: {', '.join(list_recipes())}")
        return path
    candidate = recipes_dir() / f"{name_or_path}.toml"
    if not candidate.is_file():
        raise UserError(f"unknown recipe {name_or_path!r}; shipped recipes: {', '.join(list_recipes()) or '(none)'} "
                        f"(see `kerasrnn recipe list`), or give a path to a .toml file")
    return candidate


def read_toml(path: Path) -> dict:
    """Parse a TOML file; a syntax error becomes a one-line `UserError`."""
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except tomllib.TOMLDecodeError as e:
        raise UserError(f"recipe {path} is not valid TOML: {e}") from None
    except UnicodeDecodeError:
        raise UserError(f"recipe {path} is not UTF-8 text; save it as UTF-8") from None


# ----------------------------------------------------------------------------- schema


def task_schema(task: str) -> dict[str, type]:
    """``SCHEMA`` of `task` (section name -> dataclass), from `kerasrnn.tasks.registry`."""
    return registry.schema(task)


def _field_types(cls) -> dict[str, typing.Any]:
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)}


def _type_name(tp) -> str:
    return getattr(tp, "__name__", None) if typing.get_origin(tp) is None else str(tp).replace("typing.", "")


def _check_value(where: str, tp, value):
    """Check a TOML value against a field type (int is accepted for float)."""
    origin = typing.get_origin(tp)
    if origin is list:
        (elem,) = typing.get_args(tp)
        if not isinstance(value, list):
            raise UserError(f"{where} must be a list of {_type_name(elem)}, got {value!r}")
        return [_check_value(f"{where}[{i}]", elem, v) for i, v in enumerate(value)]
    if tp is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if tp is int and isinstance(value, bool) or not isinstance(value, tp):
        raise UserError(f"{where} must be {_type_name(tp)}, got {value!r}")
    return value


def _coerce_string(where: str, tp, text: str):
    """Convert a ``--set`` value (a string) to the type of the field."""
    origin = typing.get_origin(tp)
    try:
        if origin is list:
            (elem,) = typing.get_args(tp)
            if text.strip().startswith("["):
                return _check_value(where, tp, tomllib.loads(f"v = {text}")["v"])
            items = [t.strip() for t in text.split(",") if t.strip()]
            return [_coerce_string(where, elem, t) for t in items]
        if tp is bool:
            low = text.strip().lower()
            if low in ("true", "1", "yes", "on"):
                return True
            if low in ("false", "0", "no", "off"):
                return False
            raise ValueError(text)
        if tp is int:
            return int(text)
        if tp is float:
            return float(text)
        if tp is str:
            t = text
            if len(t) >= 2 and t[0] == t[-1] and t[0] in "\"'":
                t = t[1:-1]
            return t
    except UserError:
        raise
    except (ValueError, tomllib.TOMLDecodeError):
        raise UserError(f"{where}={text}: expected {_type_name(tp)}, got {text!r}") from None
    raise UserError(f"{where}: unsupported type {_type_name(tp)}")


def parse_override(item: str) -> tuple[str, str, str]:
    """Split ``section.key=value`` into its three parts.

    >>> parse_override("train.epochs=3")
    ('train', 'epochs', '3')
    """
    if "=" not in item or "." not in item.split("=", 1)[0]:
        raise UserError(f"override {item!r}: expected section.key=value, e.g. train.epochs=3")
    lhs, value = item.split("=", 1)
    section, key = lhs.strip().split(".", 1)
    return section, key, value


def _valid_keys(cls) -> str:
    return ", ".join(f.name for f in dataclasses.fields(cls))


def resolve(raw: dict, overrides: list[str] | tuple[str, ...] = (), default_name: str = "") -> dict:
    """Validate a parsed recipe, apply ``--set`` overrides and fill in defaults.

    Args:
        raw: the parsed TOML (``{section: {key: value}}``).
        overrides: ``"section.key=value"`` strings, applied in order.
        default_name: run name when ``run.name`` is not given (the file stem).

    Returns:
        The resolved recipe: ``{section: {key: value}}`` with every schema key present.

    >>> resolve({"run": {"task": "forecasting"}}, ["train.epochs=2"])["train"]["epochs"]  # doctest: +SKIP
    2
    """
    raw = {k: (dict(v) if isinstance(v, dict) else v) for k, v in raw.items()}
    parsed = [parse_override(o) for o in overrides]
    run_raw = raw.setdefault("run", {})
    if not isinstance(run_raw, dict):
        raise UserError("recipe key 'run' must be a [run] section")
    for section, key, value in parsed:  # run.task decides the schema: apply run.* first
        if section == "run":
            types = _field_types(RunConfig)
            if key not in types:
                raise UserError(f"unknown key {key!r} in [run]; valid keys: {_valid_keys(RunConfig)}")
            run_raw[key] = _coerce_string(f"run.{key}", types[key], value)
    task = run_raw.get("task", "")
    if not task:
        raise UserError(f"recipe has no run.task; set it to one of: {', '.join(sorted(TASKS))}")
    sections = {"run": RunConfig, **task_schema(task)}

    for section, key, value in parsed:
        if section == "run":
            continue
        if section not in sections:
            raise UserError(f"unknown recipe section [{section}] for task {task!r}; "
                            f"valid sections: {', '.join(sections)}")
        target = raw.setdefault(section, {})
        types = _field_types(sections[section])
        if key not in types:
            raise UserError(f"unknown key {key!r} in [{section}]; valid keys: {_valid_keys(sections[section])}")
        target[key] = _coerce_string(f"{section}.{key}", types[key], value)

    resolved: dict = {}
    for section, values in raw.items():
        if not isinstance(values, dict):
            raise UserError(f"recipe key {section!r} must be a [section] table; valid sections: {', '.join(sections)}")
        if section not in sections:
            raise UserError(f"unknown recipe section [{section}] for task {task!r}; "
                            f"valid sections: {', '.join(sections)}")
        cls = sections[section]
        types = _field_types(cls)
        unknown = sorted(set(values) - set(types))
        if unknown:
            raise UserError(f"unknown key {unknown[0]!r} in [{section}]; valid keys: {_valid_keys(cls)}")
        checked = {k: _check_value(f"{section}.{k}", types[k], v) for k, v in values.items()}
        config = cls(**checked)
        check_limits(section, config)
        resolved[section] = dataclasses.asdict(config)
    for section, cls in sections.items():
        resolved.setdefault(section, dataclasses.asdict(cls()))
    if not resolved["run"]["name"]:
        resolved["run"]["name"] = default_name or task
    name = resolved["run"]["name"]
    if "/" in name or "\\" in name or name.startswith(".") or "\0" in name or len(name) > 200:
        raise UserError(f"run.name {name!r} must be a plain folder name (no '/', not starting with '.')")
    # put [run] first, then the schema's order, then anything else
    ordered = {s: resolved[s] for s in sections if s in resolved}
    ordered.update({s: v for s, v in resolved.items() if s not in ordered})
    return ordered


def load_recipe(name_or_path: str, overrides: list[str] | tuple[str, ...] = ()) -> dict:
    """Find, parse, override and validate a recipe (see `resolve`)."""
    path = find_recipe(name_or_path)
    return resolve(read_toml(path), overrides, default_name=path.stem)


def section(recipe: dict, name: str, cls):
    """The typed dataclass for one section of a resolved recipe.

    >>> section({"train": {"epochs": 2}}, "train", TrainConfig).epochs  # doctest: +SKIP
    2
    """
    return cls(**recipe.get(name, {}))


# ----------------------------------------------------------------------------- TOML out


def _toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {value!r} to TOML")


def to_toml(recipe: dict) -> str:
    """Serialise a resolved recipe (``{section: {key: scalar|list}}``) as TOML.

    >>> print(to_toml({"run": {"task": "forecasting", "seed": 0}}))
    [run]
    task = "forecasting"
    seed = 0
    <BLANKLINE>
    """
    lines = []
    for name, values in recipe.items():
        lines.append(f"[{name}]")
        for key, value in values.items():
            if isinstance(value, dict):
                raise TypeError(f"nested table {name}.{key} is not supported")
            lines.append(f"{key} = {_toml_value(value)}")
        lines.append("")
    return "\n".join(lines)
