"""`kerasrnn bench layers`: structure of the report (never timings), and the fused BPTT path."""

import json

import keras
import numpy as np
import pytest
import tensorflow as tf
from click.testing import CliRunner

import kerasrnn.layers as krl
from kerasrnn.bench.layers import GATES, BenchConfig, forward_flops, parse_cells
from kerasrnn.bench.layers import format_table as bench_format_table
from kerasrnn.commands.bench import bench_layers
from kerasrnn.cli import main
from kerasrnn.errors import UserError

TINY = ["--quick", "--batch", "2", "--length", "3", "--input", "4", "--units", "4", "--reps", "2", "--warmup", "0"]


def invoke(*args):
    result = CliRunner().invoke(bench_layers, list(args), catch_exceptions=False)
    return result


def test_json_report_has_every_contender_with_positive_medians_and_consistent_ratios():
    result = invoke(*TINY, "--cells", "lstm", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["config"]["cells"] == ["lstm"]
    assert report["config"]["batch"] == 2 and report["config"]["reps"] == 2
    rows = report["results"]
    labels = [r["label"] for r in rows]
    assert labels == [
        "kerasrnn xla=off", "keras xla=off", "kerasrnn xla=on", "keras xla=on", "torch",
    ]
    for r in rows:
        assert r["train_ms"] > 0 and r["infer_ms"] > 0
        assert len(r["train_samples_ms"]) == 2 and len(r["infer_samples_ms"]) == 2
        assert r["train_ms"] == pytest.approx(float(np.median(r["train_samples_ms"])))
        flops = forward_flops(BenchConfig(batch=2, length=3, input=4, units=4), "lstm")
        assert r["train_gflops"] == pytest.approx(3 * flops / r["train_ms"] / 1e6)
        assert r["train_pct_peak"] == pytest.approx(100 * r["train_gflops"] / report["matmul_peak_gflops"]["lstm"])
    # The reference for "x keras" is the faster built-in setting: it scores exactly 1.
    builtin = [r for r in rows if r["contender"] == "keras"]
    assert max(r["train_vs_keras_best"] for r in builtin) == pytest.approx(1.0)
    assert max(r["infer_vs_keras_best"] for r in builtin) == pytest.approx(1.0)
    torch_row = rows[-1]
    assert torch_row["train_vs_torch"] == pytest.approx(1.0)
    assert "torch" in report["versions"]


def test_table_lists_each_cell_with_its_peak_and_no_torch_rows_when_disabled():
    result = invoke(*TINY, "--cells", "gru,rnn", "--no-torch")
    assert result.exit_code == 0, result.output
    out = result.output
    assert "B=2 T=3 4->4" in out
    assert "gru: matmul peak" in out and "simple_rnn: matmul peak" in out
    assert out.count("kerasrnn xla=on") == 2 and out.count("keras xla=off") == 2
    rows = [line for line in out.splitlines() if line.startswith(("gru ", "simple_rnn "))]
    assert len(rows) == 8 and not any(line.split()[1] == "torch" for line in rows)


def test_cpu_time_and_threads_are_recorded_and_torch_reports_its_own_cpu_time():
    result = invoke(*TINY, "--cells", "rnn", "--threads", "1", "--cpu-time", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.output[result.output.index("{"):])
    assert report["config"]["cpu_time"] is True and report["config"]["threads"] == 1 and report["threads"] == 1
    assert all(r["train_ms"] > 0 and r["infer_ms"] > 0 for r in report["results"])
    assert "torch" in [r["label"] for r in report["results"]]
    table = invoke(*TINY, "--cells", "rnn", "--no-torch", "--cpu-time").output
    assert "process CPU time" in table and "wall time" not in table
    result = invoke(*TINY, "--cells", "rnn", "--no-torch", "--tf-intra-threads", "1", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.output[result.output.index("{"):])
    assert report["config"]["tf_intra_threads"] == 1 and report["config"]["threads"] is None
    assert "TensorFlow intra-op pool 1," in bench_format_table(report)


def test_bad_cells_and_sizes_are_one_line_user_errors():
    result = CliRunner().invoke(main, ["bench", "layers", "--cells", "lstm,transformer"])
    assert result.exit_code == 1
    assert "'transformer'" in result.output and "--cells" in result.output and "lstm" in result.output
    result = CliRunner().invoke(main, ["bench", "layers", "--reps", "0"])
    assert result.exit_code == 1 and "--reps must be >= 1, got 0" in result.output
    result = CliRunner().invoke(main, ["bench", "layers", "--threads", "0"])
    assert result.exit_code == 1 and "--threads must be >= 1, got 0" in result.output
    result = CliRunner().invoke(main, ["bench", "layers", "--tf-intra-threads", "0"])
    assert result.exit_code == 1 and "--tf-intra-threads must be >= 1, got 0" in result.output
    with pytest.raises(UserError):
        parse_cells(" , ")
    assert parse_cells("LSTM,rnn,lstm") == ("lstm", "simple_rnn")


def test_flop_count_matches_the_formula():
    cfg = BenchConfig(batch=3, length=5, input=7, units=11)
    for cell, gates in GATES.items():
        assert forward_flops(cfg, cell) == 2 * 3 * 5 * (7 + 11) * gates * 11


@pytest.mark.parametrize(
    "name, kwargs",
    [("LSTM", {"go_backwards": True}), ("GRU", {}), ("GRU", {"reset_after": False}),
     ("SimpleRNN", {"activation": "relu"})],
)
def test_fused_training_path_matches_builtin_outputs_and_gradients(name, kwargs):
    """The hand-written BPTT (default for LSTM, opt-in for GRU/SimpleRNN) is exact."""
    keras.utils.set_random_seed(0)
    ours_cls = getattr(krl, name)
    x = tf.constant(np.random.default_rng(0).normal(size=(3, 6, 5)).astype("float32"))
    ref = getattr(keras.layers, name)(4, return_sequences=True, return_state=True, **kwargs)
    ours = ours_cls(4, return_sequences=True, return_state=True, fused=True, **kwargs)
    ref(x), ours(x)
    ours.set_weights(ref.get_weights())

    def outputs_and_grads(layer):
        with tf.GradientTape() as tape:
            tape.watch(x)
            seq, *states = layer(x, training=True)
            loss = tf.reduce_sum(seq * tf.range(1.0, 5.0)) + sum(tf.reduce_sum(s * s) for s in states)
        return [seq, *states, *tape.gradient(loss, [x, *layer.trainable_variables])]

    expected, got = outputs_and_grads(ref), outputs_and_grads(ours)
    assert ours.path_record.last == "fused", ours.path_record
    for e, g in zip(expected, got):
        np.testing.assert_allclose(np.asarray(g), np.asarray(e), atol=1e-5)


def test_user_path_times_sequential_compile_and_train_on_batch():
    result = invoke(*TINY, "--cells", "simple_rnn", "--no-torch", "--user-path", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["config"]["user_path"] is True
    assert "train_on_batch" in report["training_step"] and "predict_on_batch" in report["inference"]
    labels = [r["label"] for r in report["results"]]
    # Keras' defaults (jit_compile="auto") for ours and the built-in, ours with the documented
    # fast setting (recommended_jit_compile), and both with XLA on.
    assert labels == ["kerasrnn xla=auto", "keras xla=auto", "kerasrnn xla=rec", "kerasrnn xla=on", "keras xla=on"]
    assert all(r["train_ms"] > 0 and r["infer_ms"] > 0 for r in report["results"])
