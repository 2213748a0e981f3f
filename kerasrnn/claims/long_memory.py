"""The ``long_memory`` recipe task: SimpleRNN vs LSTM vs GRU on the adding / copy problems.

Every cell gets the same hidden size, optimizer, step budget, training stream and
evaluation set at every sequence length T; the result is the final metric next
to the trivial baseline:

- ``adding``: test MSE vs the MSE of always predicting the mean (≈ 1/6);
  *solved* when MSE ≤ ``solved_fraction`` × baseline (default 0.1, i.e. 90% of
  the variance explained).
- ``copy``: per-token recall accuracy vs chance ``1/vocab``; *solved* when
  accuracy ≥ 1 - ``solved_fraction`` (default 0.9).

Recipe section (all keys optional; see `LongMemoryConfig`)::

    [run]
    task = "long_memory"
    [long_memory]
    task = "adding"
    lengths = [10, 50, 100, 200]
    cells = ["simple_rnn", "lstm", "gru"]
    units = 32
    steps = 1200

`run_recipe` writes ``run_dir`` (atomically, via `kerasrnn.rundir`): ``run.json``,
``recipe.toml``, ``checkpoints/<cell>_T<T>.json`` (one result per trained model,
reused by ``resume``), ``metrics.json``, ``results.md``, ``long_memory.png`` and
``gradient_norms.png``. No ``model.keras``: the run holds one small model per
(cell, T) and only their results are kept. It also works standalone
(``kerasrnn bench claims`` calls it).

>>> metrics = run_recipe({"long_memory": {"lengths": [5], "steps": 20}}, Path("out"))  # doctest: +SKIP
>>> sorted(metrics["results"][0])[:3]  # doctest: +SKIP
['baseline', 'cell', 'curve']
"""

from __future__ import annotations

import dataclasses
import json
import math
import sys
import time
import typing
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from kerasrnn.claims.params import canonical_cell
from kerasrnn.errors import UserError
from kerasrnn.recipes import setting

TASKS = ("adding", "copy")
#: ``execution`` -> (jit_compile, fused) used for every cell.
EXECUTIONS = {"xla_fused": (True, True), "keras_loop": (False, False)}


@dataclass
class LongMemoryConfig:
    """The ``[long_memory]`` recipe section.

    Attributes:
        task: ``"adding"`` (regression, MSE) or ``"copy"`` (recall, accuracy). Default "adding".
        lengths: sequence lengths / recall distances T. Default [10, 50, 100, 200].
        cells: cell types, all trained with the same settings. Default all three.
        units: hidden size of every cell (default 32).
        steps: training steps (batches) per (cell, T) (default 1200).
        batch_size: default 64.
        learning_rate: Adam learning rate (default 0.01).
        clipnorm: gradient-norm clipping (default 1.0; 0 = off).
        eval_every: steps between evaluations on the held-out set (default 100).
        eval_size: held-out sequences (default 1000).
        num_tokens: copy task: tokens to recall (default 1).
        vocab: copy task: distinct tokens (default 8).
        embedding_dim: copy task: embedding size of the input symbols (default 16).
        solved_fraction: "solved" threshold, see module docstring (default 0.1).
        gradient_batch: sequences used for the gradient-vs-distance profile (default 32).
        seed: seed of weights and data; 0 inherits ``[run] seed`` (default 0).
        seeds: independent runs per (cell, T), with seeds ``seed, seed+1, ...``; results are
            reported as mean ± std and a length counts as solved when most runs solve it
            (default 1).
        execution: how every cell is trained, the same for all cells: ``"xla_fused"`` (XLA
            and the fused BPTT path) or ``"keras_loop"`` (Keras' loop without XLA). The
            math is the same; only speed differs (default "xla_fused").
    """

    task: str = "adding"
    lengths: list[int] = setting(default_factory=lambda: [10, 50, 100, 200], ge=2)
    cells: list[str] = field(default_factory=lambda: ["simple_rnn", "lstm", "gru"])
    units: int = setting(32, ge=1)
    steps: int = setting(1200, ge=1)
    batch_size: int = setting(64, ge=1)
    learning_rate: float = setting(0.01, gt=0)
    clipnorm: float = setting(1.0, ge=0)
    eval_every: int = setting(100, ge=1)
    eval_size: int = setting(1000, ge=1)
    num_tokens: int = setting(1, ge=1)
    vocab: int = setting(8, ge=2)
    embedding_dim: int = setting(16, ge=1)
    solved_fraction: float = setting(0.1, gt=0, lt=1)
    gradient_batch: int = setting(32, ge=1)
    seed: int = setting(0, ge=0, le=2**32 - 1)
    seeds: int = setting(1, ge=1)
    execution: str = setting("xla_fused", choices=tuple(EXECUTIONS))


#: Recipe schema for `kerasrnn.recipes`: section name -> dataclass.
SCHEMA = {"long_memory": LongMemoryConfig}


def _valid_keys() -> str:
    return ", ".join(f.name for f in dataclasses.fields(LongMemoryConfig))


def parse_config(section: dict | None, run_seed: int = 0) -> LongMemoryConfig:
    """Validate a ``[long_memory]`` dict into a `LongMemoryConfig` (UserError on bad input).

    >>> parse_config({"lengths": [10, 20], "cells": ["rnn"]}).cells
    ['simple_rnn']
    """
    section = dict(section or {})
    hints = typing.get_type_hints(LongMemoryConfig)
    for key, value in section.items():
        if key not in hints:
            raise UserError(f"unknown key {key!r} in [long_memory]; valid keys: {_valid_keys()}")
        tp = hints[key]
        if typing.get_origin(tp) is list:
            (elem,) = typing.get_args(tp)
            ok = isinstance(value, list) and value and all(isinstance(v, elem) and not isinstance(v, bool) for v in value)
            if not ok:
                raise UserError(f"long_memory.{key} must be a non-empty list of {elem.__name__}, got {value!r}")
        elif tp is float and isinstance(value, int) and not isinstance(value, bool):
            section[key] = float(value)
        elif not isinstance(value, tp) or isinstance(value, bool):
            raise UserError(f"long_memory.{key} must be {tp.__name__}, got {value!r}")
    cfg = LongMemoryConfig(**section)
    if cfg.task not in TASKS:
        raise UserError(f"long_memory.task must be one of {', '.join(TASKS)}, got {cfg.task!r}")
    if cfg.execution not in EXECUTIONS:
        raise UserError(f"long_memory.execution must be one of {', '.join(EXECUTIONS)}, got {cfg.execution!r}")
    try:
        cfg.cells = [canonical_cell(c) for c in cfg.cells]
    except ValueError as e:
        raise UserError(f"long_memory.cells: {e}") from None
    minimum_T = cfg.num_tokens if cfg.task == "copy" else 2
    for key in ("units", "steps", "batch_size", "eval_every", "eval_size", "num_tokens",
                "embedding_dim", "gradient_batch", "seeds"):
        if getattr(cfg, key) < 1:
            raise UserError(f"long_memory.{key} must be >= 1, got {getattr(cfg, key)}")
    if cfg.vocab < 2:
        raise UserError(f"long_memory.vocab must be >= 2, got {cfg.vocab}")
    if any(T < minimum_T for T in cfg.lengths):
        raise UserError(f"long_memory.lengths must all be >= {minimum_T} for task {cfg.task!r}, got {cfg.lengths}")
    if not 0 < cfg.solved_fraction < 1 or cfg.learning_rate <= 0 or cfg.clipnorm < 0:
        raise UserError("long_memory: need 0 < solved_fraction < 1, learning_rate > 0 and clipnorm >= 0, "
                        f"got {cfg.solved_fraction}, {cfg.learning_rate}, {cfg.clipnorm}")
    if cfg.seed == 0:
        cfg.seed = int(run_seed)
    return cfg


# ----------------------------------------------------------------------------- one model


def _data_kwargs(cfg: LongMemoryConfig) -> dict:
    return {"num_tokens": cfg.num_tokens, "vocab": cfg.vocab} if cfg.task == "copy" else {}


def build_model(cfg: LongMemoryConfig, cell: str, T: int):
    """The model for one (cell, T): the recurrent layer is named ``rnn_0``.

    adding: ``Input((T, 2)) -> rnn_0 -> Dense(1)``.
    copy: ``Input((K+T,) int32) -> Embedding(vocab+2) -> rnn_0 (sequences) ->
    Cropping1D(keep last K) -> Dense(vocab)`` (logits).
    """
    import keras  # lazy: Keras/TensorFlow load in seconds; imported only when measuring

    from kerasrnn.data.long_memory import copy_input_size  # lazy: with TensorFlow
    from kerasrnn.layers import get_layer_class  # lazy: imports Keras

    layer_cls = get_layer_class(cell)
    fused = EXECUTIONS[cfg.execution][1]
    if cfg.task == "adding":
        inputs = keras.Input((T, 2), name="x")
        h = layer_cls(cfg.units, name="rnn_0", fused=fused)(inputs)
        outputs = keras.layers.Dense(1, name="y")(h)
    else:
        inputs = keras.Input((cfg.num_tokens + T,), dtype="int32", name="tokens")
        e = keras.layers.Embedding(copy_input_size(cfg.vocab), cfg.embedding_dim, name="embedding")(inputs)
        h = layer_cls(cfg.units, return_sequences=True, name="rnn_0", fused=fused)(e)
        h = keras.layers.Cropping1D((T, 0), name="recall_steps")(h)
        outputs = keras.layers.Dense(cfg.vocab, name="logits")(h)
    return keras.Model(inputs, outputs, name=f"{cell}_T{T}")


def _rnn_inputs(model, x: np.ndarray, task: str) -> np.ndarray:
    """What the recurrent layer sees (embedded tokens for copy)."""
    if task == "adding":
        return x
    return np.asarray(model.get_layer("embedding")(x))


def train_one(cfg: LongMemoryConfig, cell: str, T: int, seed_index: int = 0) -> dict:
    """Train one cell at one length with seed ``cfg.seed + seed_index``; returns its result dict."""
    import keras  # lazy: Keras/TensorFlow load in seconds; imported only when measuring
    import tensorflow as tf  # lazy: TensorFlow loads in seconds; imported only when measuring

    from kerasrnn.claims.measure import gradient_norm_profile  # lazy: with TensorFlow
    from kerasrnn.data.long_memory import adding_baseline_mse, batches, generate  # lazy: with TensorFlow

    cfg = dataclasses.replace(cfg, seed=cfg.seed + seed_index)
    keras.utils.set_random_seed(cfg.seed)
    model = build_model(cfg, cell, T)
    jit = EXECUTIONS[cfg.execution][0]
    kwargs = _data_kwargs(cfg)
    x_val, y_val = generate(cfg.task, cfg.eval_size, T, seed=(cfg.seed, T, 1), **kwargs)
    optimizer = keras.optimizers.Adam(cfg.learning_rate, clipnorm=cfg.clipnorm or None)
    optimizer.build(model.trainable_variables)
    if cfg.task == "adding":
        loss_fn = keras.losses.MeanSquaredError()
        baseline = adding_baseline_mse(y_val)
    else:
        loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
        baseline = 1.0 / cfg.vocab

    @tf.function(jit_compile=jit)
    def train_step(x, y):
        with tf.GradientTape() as tape:
            loss = loss_fn(y, model(x, training=True))
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply(grads, model.trainable_variables)
        return loss

    @tf.function(jit_compile=jit)
    def predict(x):
        return model(x, training=False)

    def evaluate() -> float:
        preds = np.concatenate([np.asarray(predict(x_val[i:i + 500])) for i in range(0, len(x_val), 500)])
        if cfg.task == "adding":
            return float(np.mean((preds.astype(np.float64) - y_val) ** 2))
        return float(np.mean(preds.argmax(-1) == y_val))

    def solved(metric: float) -> bool:
        if cfg.task == "adding":
            return metric <= cfg.solved_fraction * baseline
        return metric >= 1.0 - cfg.solved_fraction

    gx = _rnn_inputs(model, x_val[: cfg.gradient_batch], cfg.task)
    grad_init = gradient_norm_profile(model.get_layer("rnn_0"), gx, seed=cfg.seed)
    stream = batches(cfg.task, T, cfg.batch_size, seed=(cfg.seed, T, 0), **kwargs)
    curve, steps_to_solve, seconds_to_solve = [], None, None
    start = time.perf_counter()
    for step in range(1, cfg.steps + 1):
        xb, yb = next(stream)
        loss = float(train_step(xb, yb))
        if step == 1:  # the first call traces/compiles: keep it out of the per-step time
            compile_seconds = time.perf_counter() - start
            path = model.get_layer("rnn_0").path_record.last  # the loop the training step runs
        if step % cfg.eval_every == 0 or step == cfg.steps:
            metric = evaluate()
            curve.append({"step": step, "train_loss": loss, "metric": metric,
                          "seconds": time.perf_counter() - start})
            if steps_to_solve is None and solved(metric):
                steps_to_solve, seconds_to_solve = step, time.perf_counter() - start
            if not math.isfinite(loss):
                break
    train_seconds = time.perf_counter() - start
    metric = curve[-1]["metric"]
    gx = _rnn_inputs(model, x_val[: cfg.gradient_batch], cfg.task)
    grad_trained = gradient_norm_profile(model.get_layer("rnn_0"), gx, seed=cfg.seed)
    return {
        "cell": cell, "T": T, "task": cfg.task, "seed": cfg.seed,
        "metric_name": "mse" if cfg.task == "adding" else "accuracy",
        "metric": metric, "baseline": baseline,
        "normalized": metric / baseline if cfg.task == "adding" else metric,
        "solved": solved(metric), "steps_to_solve": steps_to_solve,
        "seconds_to_solve": seconds_to_solve, "train_seconds": train_seconds,
        "compile_seconds": compile_seconds,
        "seconds_per_step": (train_seconds - compile_seconds) / max(1, curve[-1]["step"] - 1),
        "jit_compile": jit, "execution": cfg.execution,
        "path": path,
        "params": int(model.get_layer("rnn_0").count_params()),
        "curve": curve,
        "grad_norm_init": grad_init.tolist(), "grad_norm_trained": grad_trained.tolist(),
    }


# ----------------------------------------------------------------------------- the recipe


def aggregate(results: list[dict]) -> dict:
    """Seeds of one (cell, T) combined: ``{(cell, T): row}``.

    A row has ``metric`` and ``normalized`` as the mean over seeds with ``metric_std`` and
    ``normalized_std`` (population std, 0 for one seed), ``seeds`` (runs), ``solved_runs``,
    ``solved`` (more than half of the runs solved), ``steps_to_solve`` and
    ``seconds_to_solve`` (median over the runs that solved; None unless ``solved``), the
    element-wise mean gradient profiles, ``baseline`` and ``T``/``cell``.

    >>> rows = aggregate([{"cell": "gru", "T": 5, "metric": m, "normalized": m, "baseline": 1.0,
    ...     "solved": m < 0.1, "steps_to_solve": 10, "seconds_to_solve": 1.0,
    ...     "grad_norm_init": [1.0], "grad_norm_trained": [1.0]} for m in (0.0, 0.05, 0.4)])
    >>> rows["gru", 5]["solved"], rows["gru", 5]["solved_runs"], round(rows["gru", 5]["metric"], 2)
    (True, 2, 0.15)
    """
    groups: dict[tuple, list[dict]] = {}
    for r in results:
        groups.setdefault((r["cell"], r["T"]), []).append(r)
    out = {}
    for key, runs in groups.items():
        won = [r for r in runs if r["solved"]]
        solved = 2 * len(won) > len(runs)
        steps = [r["steps_to_solve"] for r in won if r.get("steps_to_solve") is not None]
        seconds = [r["seconds_to_solve"] for r in won if r.get("seconds_to_solve") is not None]
        out[key] = {
            "cell": key[0], "T": key[1], "seeds": len(runs), "solved_runs": len(won), "solved": solved,
            "metric": float(np.mean([r["metric"] for r in runs])),
            "metric_std": float(np.std([r["metric"] for r in runs])),
            "normalized": float(np.mean([r["normalized"] for r in runs])),
            "normalized_std": float(np.std([r["normalized"] for r in runs])),
            "baseline": float(np.mean([r["baseline"] for r in runs])),
            "steps_to_solve": float(np.median(steps)) if solved and steps else None,
            "seconds_to_solve": float(np.median(seconds)) if solved and seconds else None,
            "grad_norm_init": np.mean([r["grad_norm_init"] for r in runs], axis=0).tolist(),
            "grad_norm_trained": np.mean([r["grad_norm_trained"] for r in runs], axis=0).tolist(),
        }
    return out


def summarize(results: list[dict], cfg: LongMemoryConfig) -> dict:
    """Per-cell summary over seeds: longest solved T (by majority), mean normalized metric,
    metric mean ± std by T, solved runs by T."""
    rows_by_key = aggregate(results)
    by_cell: dict[str, dict] = {}
    for cell in cfg.cells:
        rows = sorted((r for r in rows_by_key.values() if r["cell"] == cell), key=lambda r: r["T"])
        runs = [r for r in results if r["cell"] == cell]
        solved = [r["T"] for r in rows if r["solved"]]
        by_cell[cell] = {
            "longest_solved_T": max(solved) if solved else 0,
            "mean_normalized": float(np.mean([r["normalized"] for r in rows])) if rows else None,
            "metric_by_T": {str(r["T"]): r["metric"] for r in rows},
            "metric_std_by_T": {str(r["T"]): r["metric_std"] for r in rows},
            "solved_runs_by_T": {str(r["T"]): f"{r['solved_runs']}/{r['seeds']}" for r in rows},
            "steps_to_solve_by_T": {str(r["T"]): r["steps_to_solve"] for r in rows},
            "seconds_per_step": float(np.median([r["seconds_per_step"] for r in runs])) if runs else None,
        }
    return by_cell


def format_metric(row: dict) -> str:
    """``0.012`` / ``0.012 ✓`` for one run; ``0.012 ± 0.003 (2/3 ✓)`` over seeds."""
    if row.get("seeds", 1) == 1:
        return f"{row['metric']:.3f}{' ✓' if row['solved'] else ''}"
    return (f"{row['metric']:.3f} ± {row['metric_std']:.3f} ({row['solved_runs']}/{row['seeds']}"
            f"{' ✓' if row['solved'] else ''})")


def results_markdown(results: list[dict], cfg: LongMemoryConfig) -> str:
    """Markdown table: one row per cell, one column per T (metric, ✓ when solved)."""
    lengths = sorted({r["T"] for r in results})
    name = "MSE (baseline = predict the mean)" if cfg.task == "adding" else f"accuracy (chance {1 / cfg.vocab:.3f})"
    lines = [f"Long-memory task `{cfg.task}`, {name}; units={cfg.units}, steps={cfg.steps}, "
             f"batch={cfg.batch_size}, lr={cfg.learning_rate}, {cfg.seeds} seed(s) (mean ± std; "
             f"solved runs / seeds), every cell trained as `{cfg.execution}`. ✓ = solved by most runs "
             f"({'MSE ≤ %.2f × baseline' % cfg.solved_fraction if cfg.task == 'adding' else 'accuracy ≥ %.2f' % (1 - cfg.solved_fraction)}).",
             "", "| cell | " + " | ".join(f"T={T}" for T in lengths) + " |",
             "|---|" + "---|" * len(lengths)]
    if cfg.task == "adding" and results:
        lines.append("| *baseline* | " + " | ".join(
            f"{np.mean([r['baseline'] for r in results if r['T'] == T]):.3f}" for T in lengths) + " |")
    rows = aggregate(results)
    for cell in cfg.cells:
        cells = []
        for T in lengths:
            r = rows.get((cell, T))
            cells.append("–" if r is None else format_metric(r))
        lines.append(f"| {cell} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def plot_results(results: list[dict], cfg: LongMemoryConfig, run_dir: Path) -> list[str]:
    """``long_memory.png`` (metric vs T) and ``gradient_norms.png`` (longest T); returns file names."""
    from kerasrnn.plots import pyplot, save_png  # lazy: matplotlib

    plt = pyplot()
    written = []
    fig, ax = plt.subplots(figsize=(6, 4))
    rows_by_key = aggregate(results)
    for cell in cfg.cells:
        rows = sorted((r for r in rows_by_key.values() if r["cell"] == cell), key=lambda r: r["T"])
        ax.errorbar([r["T"] for r in rows], [r["normalized"] for r in rows],
                    yerr=[r["normalized_std"] for r in rows], fmt="o-", capsize=3, label=cell)
    if cfg.task == "adding":
        ax.axhline(1.0, color="gray", ls="--", label="predict the mean")
        ax.axhline(cfg.solved_fraction, color="gray", ls=":", label="solved")
        ax.set_ylabel("test MSE / baseline MSE")
        ax.set_yscale("log")
    else:
        ax.axhline(1.0 / cfg.vocab, color="gray", ls="--", label="chance")
        ax.set_ylabel("recall accuracy")
    ax.set_xlabel("sequence length T")
    ax.set_title(f"{cfg.task}: {cfg.units} units, {cfg.steps} steps")
    ax.legend()
    save_png(fig, run_dir / "long_memory.png")
    written.append("long_memory.png")

    T = max(r["T"] for r in results)
    fig, ax = plt.subplots(figsize=(6, 4))
    for i, cell in enumerate(cfg.cells):
        r = rows_by_key.get((cell, T))
        if r is None:
            continue
        for key, style in (("grad_norm_init", "--"), ("grad_norm_trained", "-")):
            ax.semilogy(np.maximum(r[key], 1e-30), style, color=f"C{i}",
                        label=f"{cell} ({'init' if key.endswith('init') else 'trained'})")
    ax.set_xlabel("distance T-1-t (steps back from the end)")
    ax.set_ylabel("‖∂h_T/∂x_t‖")
    ax.set_title(f"Gradient vs distance ({cfg.task}, T={T})")
    ax.legend(fontsize=8)
    save_png(fig, run_dir / "gradient_norms.png")
    written.append("gradient_norms.png")
    return written


def run_recipe(recipe: dict, run_dir: Path, resume: bool = False, **lifecycle) -> dict:
    """Train every cell at every length and write the results into `run_dir`.

    Like the other recipe tasks, the run is built in the sibling work directory
    ``.partial-<name>/`` and renamed onto `run_dir` when complete (`kerasrnn.rundir`).

    Args:
        recipe: the resolved recipe (``{"run": {...}, "long_memory": {...}}``); a bare
            ``[long_memory]`` dict is accepted too (standalone use).
        run_dir: the run directory to create.
        resume: reuse ``checkpoints/<cell>_T<T>.json`` of an interrupted (or finished)
            run instead of retraining those models.
        **lifecycle: ``restart``, ``overwrite``, ``origin`` of `kerasrnn.rundir.lifecycle`
            (e.g. ``overwrite=True`` replaces a finished run).

    Returns:
        The ``metrics.json`` dict: ``{"task", "config", "summary", "results"}``.

    >>> run_recipe({"long_memory": {"lengths": [5], "steps": 10, "cells": ["gru"]}}, Path("/tmp/lm"))  # doctest: +SKIP
    """
    from kerasrnn import atomic, rundir

    if "run" not in recipe and "long_memory" not in recipe:
        recipe = {"long_memory": recipe}
    run_section = {"task": "long_memory", "name": Path(run_dir).name, "seed": 0, "description": "",
                   **recipe.get("run", {})}
    cfg = parse_config(recipe.get("long_memory"), run_seed=run_section["seed"])
    recipe = {"run": run_section, "long_memory": dataclasses.asdict(cfg)}
    with rundir.lifecycle(recipe, Path(run_dir), resume=resume, **lifecycle) as work:
        (work / "checkpoints").mkdir(exist_ok=True)
        rundir.write_info(work, recipe, cells=cfg.cells, lengths=cfg.lengths, units=cfg.units,
                          long_memory_task=cfg.task)
        results = []
        for T in cfg.lengths:
            for cell in cfg.cells:  # cells interleaved within each length
                for k in range(cfg.seeds):
                    suffix = f"_seed{k}" if k else ""
                    path = work / "checkpoints" / f"{cell}_T{T}{suffix}.json"
                    if resume and path.is_file():
                        results.append(json.loads(path.read_text(encoding="utf-8")))
                        continue
                    r = train_one(cfg, cell, T, seed_index=k)
                    print(f"long_memory {cfg.task} T={T:<4d} {cell:<10s} seed {r['seed']} "
                          f"{r['metric_name']}={r['metric']:.4f} (baseline {r['baseline']:.4f})"
                          f"{' solved' if r['solved'] else ''} [{r['train_seconds']:.1f}s]", file=sys.stderr, flush=True)
                    atomic.write_text(path, json.dumps(r) + "\n")
                    results.append(r)
        metrics = {"task": cfg.task, "config": dataclasses.asdict(cfg),
                   "summary": summarize(results, cfg), "results": results}
        atomic.write_text(work / "metrics.json", json.dumps(metrics, indent=1) + "\n")
        atomic.write_text(work / "results.md", results_markdown(results, cfg))
        plot_results(results, cfg, work)
    return metrics
