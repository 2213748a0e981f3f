"""Long-memory generators, closed-form parameter counts, the long_memory recipe and `bench claims`."""

import json
import math

import keras
import numpy as np
import pytest
from click.testing import CliRunner

import kerasrnn.layers as L
from kerasrnn.claims import long_memory, measure, params, report
from kerasrnn.data.long_memory import (
    adding_baseline_mse, adding_problem, batches, copy_input_size, copy_task, dataset)
from kerasrnn.errors import UserError

# ----------------------------------------------------------------------------- generators


@pytest.mark.parametrize("T", [2, 3, 10, 51])
def test_adding_problem_is_correct_by_construction(T):
    x, y = adding_problem(300, T, seed=3)
    assert x.shape == (300, T, 2) and x.dtype == np.float32
    assert y.shape == (300, 1) and y.dtype == np.float32
    values, marker = x[..., 0], x[..., 1]
    assert ((values >= 0) & (values < 1)).all()
    assert set(np.unique(marker)) <= {0.0, 1.0}
    assert (marker.sum(axis=1) == 2).all()
    half = (T + 1) // 2
    assert (marker[:, :half].sum(axis=1) == 1).all()  # one mark in each half
    assert (marker[:, half:].sum(axis=1) == 1).all()
    np.testing.assert_allclose(y[:, 0], (values * marker).sum(axis=1), rtol=1e-6)


def test_adding_problem_is_deterministic_and_baseline_is_one_sixth():
    a, b, c = adding_problem(50, 20, seed=1), adding_problem(50, 20, seed=1), adding_problem(50, 20, seed=2)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert not np.array_equal(a[0], c[0])
    _, y = adding_problem(20000, 8, seed=0)
    assert abs(adding_baseline_mse(y) - 1 / 6) < 0.01
    assert abs(float(y.mean()) - 1.0) < 0.02


@pytest.mark.parametrize("T,K,vocab", [(1, 1, 2), (5, 1, 8), (6, 3, 4), (40, 2, 10)])
def test_copy_task_is_correct_by_construction(T, K, vocab):
    x, y = copy_task(64, T, num_tokens=K, vocab=vocab, seed=5)
    assert x.shape == (64, K + T) and x.dtype == np.int32
    assert y.shape == (64, K) and y.dtype == np.int32
    assert ((x[:, :K] >= 1) & (x[:, :K] <= vocab)).all()
    assert (x[:, K:T] == 0).all()  # blanks between tokens and cues
    assert (x[:, T:] == vocab + 1).all()  # the last K positions are recall cues
    for j in range(K):  # the answer at cue T+j is the token seen T steps earlier
        np.testing.assert_array_equal(y[:, j], x[:, T + j - T] - 1)
    assert ((y >= 0) & (y < vocab)).all()
    assert x.max() < copy_input_size(vocab)
    np.testing.assert_array_equal(x, copy_task(64, T, num_tokens=K, vocab=vocab, seed=5)[0])


def test_generators_reject_bad_sizes():
    with pytest.raises(ValueError, match="T must be"):
        adding_problem(4, 1)
    with pytest.raises(ValueError, match="T must be"):
        copy_task(4, 2, num_tokens=3)
    with pytest.raises(ValueError, match="vocab"):
        copy_task(4, 5, vocab=1)


def test_batches_and_dataset_are_reproducible_streams():
    s1, s2 = batches("adding", 7, 4, seed=9), batches("adding", 7, 4, seed=9)
    first = [next(s1) for _ in range(3)]
    second = [next(s2) for _ in range(3)]
    for (xa, ya), (xb, yb) in zip(first, second):
        np.testing.assert_array_equal(xa, xb)
    assert not np.array_equal(first[0][0], first[1][0])  # fresh data every batch
    xb, yb = next(iter(dataset("copy", 6, 5, seed=9, num_tokens=2, vocab=3)))
    assert tuple(xb.shape) == (5, 8) and tuple(yb.shape) == (5, 2)
    np.testing.assert_array_equal(xb.numpy(), next(batches("copy", 6, 5, seed=9, num_tokens=2, vocab=3))[0])


# ----------------------------------------------------------------------------- parameter counts


OPTIONS = [
    ("simple_rnn", {}), ("simple_rnn", {"use_bias": False}),
    ("lstm", {}), ("lstm", {"use_bias": False}), ("lstm", {"proj_size": 3}),
    ("lstm", {"proj_size": 5, "use_bias": False}),
    ("gru", {}), ("gru", {"reset_after": False}), ("gru", {"use_bias": False}),
    ("gru", {"use_bias": False, "reset_after": False}),
]


@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("cell,options", OPTIONS)
def test_closed_form_matches_count_params(cell, options, bidirectional):
    d, u = 7, 6
    layer = L.get_layer_class(cell)(u, **options)
    if bidirectional:
        layer = keras.layers.Bidirectional(layer)
    layer.build((None, None, d))
    assert params.count_params(cell, d, u, bidirectional=bidirectional, **options) == layer.count_params()


@pytest.mark.parametrize("cell,options", [o for o in OPTIONS if "proj_size" not in o[1]])
def test_closed_form_matches_keras_builtins(cell, options):
    cls = {"simple_rnn": keras.layers.SimpleRNN, "lstm": keras.layers.LSTM, "gru": keras.layers.GRU}[cell]
    layer = cls(5, **options)
    layer.build((None, None, 3))
    assert params.count_params(cell, 3, 5, **options) == layer.count_params()


def test_parameter_ratios_and_bad_options():
    assert params.count_params("rnn", 10, 20) == 20 * (10 + 20 + 1)
    assert params.param_ratios(64, 64) == {"simple_rnn": 1.0, "gru": pytest.approx(3.0, abs=0.05), "lstm": 4.0}
    with pytest.raises(ValueError, match="proj_size"):
        params.count_params("gru", 3, 4, proj_size=2)
    with pytest.raises(ValueError, match="Unknown cell='transformer'"):
        params.count_params("transformer", 3, 4)


# ----------------------------------------------------------------------------- recipe section


def test_parse_config_validates_keys_and_values():
    cfg = long_memory.parse_config({"lengths": [5, 9], "cells": ["rnn", "GRU"]}, run_seed=4)
    assert cfg.cells == ["simple_rnn", "gru"] and cfg.lengths == [5, 9] and cfg.seed == 4
    with pytest.raises(UserError, match="unknown key 'bogus'.*valid keys: task, lengths"):
        long_memory.parse_config({"bogus": 1})
    with pytest.raises(UserError, match="long_memory.task"):
        long_memory.parse_config({"task": "sorting"})
    with pytest.raises(UserError, match="cells"):
        long_memory.parse_config({"cells": ["transformer"]})
    with pytest.raises(UserError, match="lengths"):
        long_memory.parse_config({"lengths": [1]})
    with pytest.raises(UserError, match="lengths must be a non-empty list of int"):
        long_memory.parse_config({"lengths": 10})
    with pytest.raises(UserError, match="units must be int"):
        long_memory.parse_config({"units": "big"})


def test_recipe_loader_uses_the_schema():
    from kerasrnn import recipes

    resolved = recipes.resolve({"run": {"task": "long_memory"}, "long_memory": {"lengths": [5]}},
                               ["long_memory.steps=7"])
    assert resolved["long_memory"]["steps"] == 7 and resolved["long_memory"]["units"] == 32
    with pytest.raises(UserError, match="valid keys"):
        recipes.resolve({"run": {"task": "long_memory"}, "long_memory": {"lenghts": [5]}})
    shipped = recipes.load_recipe("long-memory")
    assert shipped["run"]["task"] == "long_memory"
    long_memory.parse_config(shipped["long_memory"])


def _tiny(task="adding", **kw):
    section = {"task": task, "lengths": [3, 5], "cells": ["simple_rnn"], "units": 4, "steps": 4,
               "batch_size": 8, "eval_every": 2, "eval_size": 16, "gradient_batch": 4, "vocab": 3, **kw}
    return {"run": {"task": "long_memory", "name": "lm", "seed": 1}, "long_memory": section}


def test_run_recipe_writes_results_and_resumes(tmp_path):
    keras.utils.set_random_seed(0)
    metrics = long_memory.run_recipe(_tiny(cells=["simple_rnn", "gru"], lengths=[3]), tmp_path / "run")
    run = tmp_path / "run"
    for name in ("run.json", "recipe.toml", "metrics.json", "results.md", "long_memory.png",
                 "gradient_norms.png", "checkpoints/simple_rnn_T3.json", "checkpoints/gru_T3.json"):
        assert (run / name).is_file(), name
    assert json.loads((run / "metrics.json").read_text())["summary"].keys() == {"simple_rnn", "gru"}
    info = json.loads((run / "run.json").read_text())
    assert info["task"] == "long_memory" and info["recipe"]["long_memory"]["lengths"] == [3]
    assert not (tmp_path / ".partial-run").exists()
    assert [(r["cell"], r["T"]) for r in metrics["results"]] == [("simple_rnn", 3), ("gru", 3)]
    for r in metrics["results"]:
        assert r["metric_name"] == "mse" and r["metric"] >= 0
        assert math.isclose(r["normalized"], r["metric"] / r["baseline"])
        assert len(r["grad_norm_init"]) == r["T"] == len(r["grad_norm_trained"])
        assert [c["step"] for c in r["curve"]] == [2, 4]
    table = (run / "results.md").read_text()
    assert "| simple_rnn |" in table and "| gru |" in table and "T=3" in table

    # resume reuses finished (cell, T) results instead of retraining them
    marked = json.loads((run / "checkpoints/simple_rnn_T3.json").read_text())
    marked["metric"] = 123.0
    (run / "checkpoints/simple_rnn_T3.json").write_text(json.dumps(marked))
    again = long_memory.run_recipe(_tiny(lengths=[3, 5]), run, resume=True)  # T=5 is new: trained now
    assert [(r["cell"], r["T"]) for r in again["results"]] == [("simple_rnn", 3), ("simple_rnn", 5)]
    assert again["results"][0]["metric"] == 123.0
    assert again["summary"]["simple_rnn"]["metric_by_T"]["3"] == 123.0
    assert (run / "checkpoints/simple_rnn_T5.json").is_file()


def test_run_recipe_copy_task(tmp_path):
    metrics = long_memory.run_recipe(_tiny("copy", num_tokens=2), tmp_path / "copy")
    assert len(metrics["results"]) == 2
    for r in metrics["results"]:
        assert r["metric_name"] == "accuracy" and 0.0 <= r["metric"] <= 1.0
        assert r["baseline"] == pytest.approx(1 / 3)


def test_gradient_profile_is_indexed_by_distance():
    # With a zero recurrent kernel, h_T depends on x_{T-1} only: distance 0 > 0, all others exactly 0.
    keras.utils.set_random_seed(0)
    layer = L.SimpleRNN(4, recurrent_initializer="zeros")
    x = np.random.default_rng(0).standard_normal((6, 5, 3)).astype("float32")
    layer(x)
    prof = measure.gradient_norm_profile(layer, x)
    assert prof.shape == (5,) and prof[0] > 0
    np.testing.assert_array_equal(prof[1:], 0.0)
    # a fresh LSTM's sensitivity decays with distance
    lstm = L.LSTM(8)
    lstm(x)
    prof = measure.gradient_norm_profile(lstm, x)
    assert prof[0] > prof[-1] > 0


# ----------------------------------------------------------------------------- verdicts and the bench


def test_order_verdict():
    asc = ["simple_rnn", "gru", "lstm"]
    assert report.order_verdict({"simple_rnn": 1, "gru": 2, "lstm": 3}, asc) == "confirmed"
    assert report.order_verdict({"simple_rnn": 3, "gru": 2, "lstm": 4}, asc) == "refuted"
    assert report.order_verdict({"simple_rnn": 1, "gru": 2, "lstm": 2.05}, asc) == "depends"
    assert report.order_verdict({"simple_rnn": 1, "gru": 2, "lstm": math.inf}, asc) == "confirmed"
    assert report.order_verdict({"simple_rnn": math.inf, "gru": 2, "lstm": 3}, asc) == "refuted"


def _fake_measurements(train_ms, solved_T, decay_trained):
    """A measurement dict with chosen numbers, to test the verdict rules."""
    cells = report.CELLS
    results = []
    for cell in cells:
        for T in (10, 100):
            ok = T <= solved_T[cell]
            results.append({"cell": cell, "T": T, "metric": 0.001 if ok else 0.17, "baseline": 0.17,
                            "normalized": 0.001 / 0.17 if ok else 1.0, "solved": ok,
                            "steps_to_solve": (200 if cell == "gru" else 600) if ok else None,
                            "seconds_to_solve": 5.0 if ok else None,
                            "grad_norm_init": [1.0, 0.1], "grad_norm_trained": [1.0, decay_trained[cell]]})
    return {
        "config": {"grad_T": 2, "quick": False},
        "params": {c: {"formula": params.count_params(c, 4, 8), "keras": params.count_params(c, 4, 8),
                       "flops_per_step": params.flops_per_step(c, 4, 8),
                       "activation_floats_per_step": params.activation_floats_per_step(c, 8)} for c in cells},
        "timing": {c: {"forward_ms": train_ms[c] / 3, "train_ms": train_ms[c], "jit_compile": True} for c in cells},
        "memory": {c: {"peak_delta_mb": {"simple_rnn": 10, "gru": 30, "lstm": 40}[c]} for c in cells},
        "grad_init": {"simple_rnn": [1.0, 1e-6], "lstm": [1.0, 1e-2], "gru": [1.0, 1e-3]},
        "long_memory": {"task": "adding", "results": results},
    }


def test_verdict_rules():
    meas = _fake_measurements(train_ms={"simple_rnn": 10, "gru": 20, "lstm": 30},
                              solved_T={"simple_rnn": 10, "lstm": 100, "gru": 100},
                              decay_trained={"simple_rnn": 1e-8, "lstm": 1e-2, "gru": 1e-2})
    v = {c["id"]: c["verdict"] for c in report.verdicts(meas)}
    assert v["params"] == "confirmed"
    assert v["compute"] == "confirmed"
    assert v["memory"] == "confirmed"
    assert v["long_sequences_001"] == "confirmed"
    assert v["long_dependency"] == "depends"  # GRU as good as LSTM: "excellent vs good" not shown
    assert v["vanishing_gradient"] == "confirmed"
    assert v["train_speed_001"] == "depends"  # per step refuted, steps-to-solve confirmed
    assert v["gru_vs_lstm_003"] == "confirmed"
    assert {c["verdict"] for c in report.verdicts(meas)} <= {"confirmed", "refuted", "depends"}

    meas = _fake_measurements(train_ms={"simple_rnn": 10, "gru": 20, "lstm": 30},
                              solved_T={"simple_rnn": 100, "lstm": 10, "gru": 0},
                              decay_trained={"simple_rnn": 1e-2, "lstm": 1e-8, "gru": 1e-2})
    v = {c["id"]: c["verdict"] for c in report.verdicts(meas)}
    assert v["long_sequences_001"] == "refuted" and v["long_dependency"] == "refuted"
    assert v["gru_vs_lstm_003"] == "refuted"
    assert v["vanishing_gradient"] == "depends"  # at init yes, after training no


def test_bench_claims_quick_smoke(tmp_path, monkeypatch):
    from kerasrnn.bench import claims as bench
    from kerasrnn.cli import main

    tiny = bench.BenchConfig(input_dim=3, units=4, T=6, batch_size=4, reps=2, memory_batch=16,
                             memory_small_batch=2, grad_T=6, grad_batch=4, quick=True,
                             long_memory={"lengths": [4], "units": 4, "steps": 4, "batch_size": 8,
                                          "eval_every": 2, "eval_size": 16, "gradient_batch": 4})
    monkeypatch.setattr(bench.BenchConfig, "quick_config", classmethod(lambda cls: tiny))
    out = tmp_path / "claims"
    result = CliRunner().invoke(main, ["bench", "claims", "--quick", "--json", "--out", str(out)])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert set(data) >= {"config", "params", "timing", "timing_keras_loop", "memory", "grad_init",
                         "long_memory", "claims"}
    for cell in report.CELLS:
        assert data["params"][cell]["keras"] == data["params"][cell]["formula"]
        assert data["timing"][cell]["train_ms"] > 0 and data["timing"][cell]["forward_ms"] > 0
        # every cell timed in the same setting, both settings: XLA + fused, and Keras' loop
        assert (data["timing"][cell]["jit_compile"], data["timing"][cell]["path"]) == (True, "fused")
        assert (data["timing_keras_loop"][cell]["jit_compile"], data["timing_keras_loop"][cell]["path"]) == (
            False, "loop")
        assert len(data["grad_init"][cell]) == 6
    assert {r["path"] for r in data["long_memory"]["results"]} == {"fused"}
    ids = [c["id"] for c in data["claims"]]
    assert ids == ["params", "compute", "train_speed_000", "train_speed_001", "memory", "long_dependency",
                   "long_sequences_001", "vanishing_gradient", "gru_vs_lstm_003"]
    assert all(c["verdict"] in {"confirmed", "refuted", "depends"} and c["quote"] and c["seed"]
               for c in data["claims"])

    md = (out / "claims.md").read_text()
    rows = [l for l in md.splitlines() if l.startswith("| ")]
    header = rows[0]
    for col in ("params (Keras)", "params (formula)", "forward ms", "train-step ms", "peak mem Δ MB",
                "grad decay init", "adding MSE T=4", "longest T solved"):
        assert col in header
    assert [r.split("|")[1].strip() for r in rows[1:4]] == ["simple_rnn", "lstm", "gru"]
    assert all(r.count("|") == header.count("|") for r in rows[1:5])
    assert "训练速度：GRU > LSTM > 简单RNN" in md and "内存占用：简单RNN < GRU < LSTM" in md
    for name in ("claims.json", "grad_norm_init.png", "speed_memory.png", "long_memory/metrics.json",
                 "long_memory/run.json",
                 "long_memory/long_memory.png"):
        assert (out / name).is_file(), name
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".tmp-")]


def test_recipe_run_command_trains_long_memory(tmp_path):
    from kerasrnn.cli import main

    sets = ["long_memory.lengths=[3]", 'long_memory.cells=["simple_rnn"]', "long_memory.units=4",
            "long_memory.steps=2", "long_memory.eval_every=1", "long_memory.eval_size=8",
            "long_memory.gradient_batch=2"]
    args = ["recipe", "run", "long-memory", "--runs-dir", str(tmp_path)]
    for s in sets:
        args += ["--set", s]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    metrics = json.loads((tmp_path / "long-memory" / "metrics.json").read_text())
    assert [(r["cell"], r["T"]) for r in metrics["results"]] == [("simple_rnn", 3)]
    assert [c["step"] for c in metrics["results"][0]["curve"]] == [1, 2]
    bad = CliRunner().invoke(main, ["recipe", "run", "long-memory", "--runs-dir", str(tmp_path),
                                    "--set", "long_memory.lenghts=[3]"])
    assert bad.exit_code == 1 and "valid keys" in bad.output


# ----------------------------------------------------------------------------- fairness (issue 12)


def test_long_dependency_is_refuted_when_gru_beats_lstm():
    meas = _fake_measurements(train_ms={"simple_rnn": 10, "gru": 20, "lstm": 30},
                              solved_T={"simple_rnn": 0, "lstm": 10, "gru": 100},
                              decay_trained={"simple_rnn": 1e-8, "lstm": 1e-2, "gru": 1e-2})
    claim = next(c for c in report.verdicts(meas) if c["id"] == "long_dependency")
    assert claim["verdict"] == "refuted" and "GRU did better than LSTM" in claim["numbers"]


def test_timing_claims_use_both_settings_and_disagreement_is_depends():
    meas = _fake_measurements(train_ms={"simple_rnn": 10, "gru": 20, "lstm": 30},
                              solved_T={"simple_rnn": 10, "lstm": 100, "gru": 100},
                              decay_trained={"simple_rnn": 1e-8, "lstm": 1e-2, "gru": 1e-2})
    v = {c["id"]: c for c in report.verdicts(meas)}
    assert v["compute"]["verdict"] == "confirmed"
    # the Keras-loop setting reverses the forward-time order: the claim no longer holds in both
    meas["timing_keras_loop"] = {c: {"forward_ms": {"simple_rnn": 9, "gru": 3, "lstm": 1}[c], "train_ms": 5}
                                 for c in report.CELLS}
    v = {c["id"]: c for c in report.verdicts(meas)}
    assert v["compute"]["verdict"] == "depends"
    assert "XLA+fused confirmed" in v["compute"]["numbers"] and "Keras loop refuted" in v["compute"]["numbers"]


def test_seeds_are_aggregated_as_mean_std_and_majority(tmp_path):
    # keras_loop (no XLA compile) keeps this test fast; the bench smoke test runs xla_fused.
    metrics = long_memory.run_recipe(_tiny(cells=["gru"], lengths=[3], seeds=2, execution="keras_loop"),
                                     tmp_path / "run")
    runs = metrics["results"]
    assert [(r["cell"], r["T"], r["seed"]) for r in runs] == [("gru", 3, 1), ("gru", 3, 2)]
    assert all(r["execution"] == "keras_loop" and not r["jit_compile"] and r["path"] == "loop" for r in runs)
    for name in ("gru_T3.json", "gru_T3_seed1.json"):
        assert (tmp_path / "run" / "checkpoints" / name).is_file()
    summary = metrics["summary"]["gru"]
    assert summary["metric_by_T"]["3"] == pytest.approx(np.mean([r["metric"] for r in runs]))
    assert summary["metric_std_by_T"]["3"] == pytest.approx(np.std([r["metric"] for r in runs]))
    assert summary["solved_runs_by_T"]["3"] == f"{sum(r['solved'] for r in runs)}/2"
    assert " ± " in (tmp_path / "run" / "results.md").read_text()
    rows = long_memory.aggregate([dict(runs[0], solved=True), dict(runs[1], solved=False)])
    assert rows["gru", 3]["solved"] is False  # one of two runs is not a majority
    with pytest.raises(UserError, match="long_memory.execution"):
        long_memory.parse_config({"execution": "fast"})
