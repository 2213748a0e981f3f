"""`kerasrnn bench claims`: measure the seeds' SimpleRNN vs LSTM vs GRU comparison table.

Runs, for SimpleRNN, LSTM and GRU at equal hidden size: parameter counts (closed
form vs Keras), forward/training-step time, batch-proportional peak memory,
gradient norm vs distance, and the long-memory recipe (adding problem at several
lengths); then writes ``claims.md`` (table + verdict per seed claim), ``claims.json``
and PNG plots into ``--out`` (atomically: the folder appears only when complete).

    kerasrnn bench claims --quick            # ~1-2 min on 2 cores, for CI smoke tests
    kerasrnn bench claims                    # full run, ~10-15 min on 2 cores -> bench_results/claims/

>>> cfg = BenchConfig.quick_config()
>>> cfg.long_memory["lengths"]
[10, 30]
"""

from __future__ import annotations

import dataclasses
import json
import os
import platform
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path


from kerasrnn import atomic, cells
from kerasrnn.claims import long_memory, measure, params, report

CELLS = cells.CANONICAL_CELLS


@dataclass
class BenchConfig:
    """Sizes of one `bench claims` run (defaults = the full run).

    Attributes:
        input_dim: input size for timing/memory/init gradients (default 32).
        units: hidden size of every cell for timing/memory/init gradients (default 128).
        T: sequence length for timing and memory (default 100).
        batch_size: batch for timing (default 64).
        reps: timed repetitions per cell, interleaved (default 10).
        memory_batch: batch whose training-step peak memory is reported (default 256).
        memory_small_batch: reference batch subtracted out (default 4).
        grad_T: sequence length of the at-initialisation gradient profile (default 100).
        grad_batch: sequences averaged in the gradient profiles (default 32).
        long_memory: the ``[long_memory]`` section passed to the recipe (default: adding
            problem, T = 25, 100, 200, u=32, 1200 steps, 3 seeds per cell and length, every
            cell trained with XLA and the fused BPTT path).
        quick: marks a ``--quick`` run in the report (default False).
    """

    input_dim: int = 32
    units: int = 128
    T: int = 100
    batch_size: int = 64
    reps: int = 10
    memory_batch: int = 256
    memory_small_batch: int = 4
    grad_T: int = 100
    grad_batch: int = 32
    long_memory: dict = field(default_factory=lambda: {
        "task": "adding", "lengths": [25, 100, 200], "units": 32, "steps": 1200,
        "batch_size": 64, "learning_rate": 0.01, "eval_every": 100, "eval_size": 1000, "seeds": 3,
        "execution": "xla_fused"})
    quick: bool = False

    @classmethod
    def quick_config(cls) -> "BenchConfig":
        """CI-sized settings: small models, two short lengths, 150 steps."""
        return cls(input_dim=8, units=32, T=30, batch_size=32, reps=5, memory_batch=128,
                   grad_T=30, grad_batch=16, quick=True,
                   long_memory={"task": "adding", "lengths": [10, 30], "units": 16, "steps": 150,
                                "batch_size": 32, "learning_rate": 0.01, "eval_every": 50,
                                "eval_size": 256, "gradient_batch": 16})


def _log(msg: str) -> None:
    print(f"[bench claims] {msg}", file=sys.stderr, flush=True)


def run_claims(cfg: BenchConfig, out_dir: Path) -> dict:
    """Take every measurement, write the report into `out_dir` (must exist); return the data.

    Returns:
        ``{"config", "params", "timing", "memory", "grad_init", "long_memory", "claims"}``.
    """
    import keras  # lazy: TensorFlow loads only when the bench runs

    out_dir = Path(out_dir)
    t0 = time.perf_counter()
    phases: dict[str, float] = {}

    def phase_done(name: str, since: float) -> float:
        now = time.perf_counter()
        phases[name] = round(now - since, 1)
        return now

    meas: dict = {"config": {**dataclasses.asdict(cfg),
                             "machine": f"{platform.machine()}, {os.cpu_count()} CPU cores visible, "
                                        f"TF backend, float32"}}

    _log("parameter counts")
    meas["params"] = {}
    for cell in CELLS:
        layer = cells.get_layer_class(cell)(cfg.units)
        layer.build((None, None, cfg.input_dim))
        meas["params"][cell] = {
            "keras": int(layer.count_params()),
            "formula": params.count_params(cell, cfg.input_dim, cfg.units),
            "flops_per_step": params.flops_per_step(cell, cfg.input_dim, cfg.units),
            "activation_floats_per_step": params.activation_floats_per_step(cell, cfg.units),
        }
    keras.backend.clear_session()
    t = phase_done("params", t0)

    # Every cell in the same setting, both settings reported: "timing" is XLA + fused BPTT
    # for all three, "timing_keras_loop" Keras' loop without XLA for all three.
    for key, setting in (("timing", "xla_fused"), ("timing_keras_loop", "keras_loop")):
        _log(f"timing, {setting} for every cell (T={cfg.T}, u={cfg.units}, batch {cfg.batch_size}, "
             f"{cfg.reps} interleaved reps)")
        meas[key] = measure.time_cells(CELLS, T=cfg.T, input_dim=cfg.input_dim, units=cfg.units,
                                       batch_size=cfg.batch_size, reps=cfg.reps, setting=setting)
        keras.backend.clear_session()
    t = phase_done("timing", t)

    _log(f"peak memory (one subprocess per cell, batch {cfg.memory_small_batch} -> {cfg.memory_batch})")
    meas["memory"] = measure.peak_memory(CELLS, T=cfg.T, input_dim=cfg.input_dim, units=cfg.units,
                                         batch_size=cfg.memory_batch, small_batch=cfg.memory_small_batch)
    t = phase_done("memory", t)

    _log(f"gradient norm vs distance at initialisation (T={cfg.grad_T})")
    meas["grad_init"] = measure.gradient_profiles_at_init(CELLS, T=cfg.grad_T, input_dim=cfg.input_dim,
                                                          units=cfg.units, batch_size=cfg.grad_batch)
    keras.backend.clear_session()
    t = phase_done("grad_init", t)

    _log(f"long-memory recipe: {cfg.long_memory}")
    meas["long_memory"] = long_memory.run_recipe({"long_memory": {**cfg.long_memory, "cells": list(CELLS)}},
                                                 out_dir / "long_memory", resume=False, overwrite=True)
    phase_done("long_memory", t)
    meas["config"]["phase_seconds"] = phases

    meas["claims"] = report.verdicts(meas)
    meas["config"]["seconds"] = round(time.perf_counter() - t0, 1)
    atomic.write_text(out_dir / "claims.md", report.markdown(meas, meas["claims"]))
    atomic.write_text(out_dir / "claims.json", json.dumps(meas, indent=1, default=json_default) + "\n")
    report.plot(meas, out_dir)
    _log(f"done in {meas['config']['seconds']} s")
    return meas


def json_default(value):
    return str(value)
